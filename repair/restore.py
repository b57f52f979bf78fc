"""Restoring real photo files of any size and mode: the engine behind ``repair restore``.

The networks work on one grayscale channel in ``[-1, 1]``. A photo file may be 8-bit or 16-bit
gray, RGB, RGBA, palette or CMYK, and of any size:

* gray (8 or 16 bit): the gray values are restored; the output keeps the bit depth;
* colour (RGB, CMYK, palette): the **luminance** (Y of YCbCr) is restored and the original
  chroma (Cb, Cr) is put back, so colour casts and tints of the original survive, and so do colour
  stains: only their brightness is repaired. The output is RGB;
* transparency (RGBA, LA, palette with transparency): the alpha channel is kept unchanged;
* 32-bit float (mode F, from scientific TIFFs): PNG holds no floats, so the output is 16-bit gray,
  0 to the photo's maximum (or to 1, for values in ``[0, 1]``) mapped to 0-65535;
* several frames (a multi-page TIFF, an animated GIF): every frame is restored, one output each
  (``<name>_frame1.png`` ...);
* any size: large scans go through :func:`repair.tiling.restore_tiled` in overlapping tiles, so
  memory stays bounded; the output has the input's exact size.

Outputs are PNG (lossless), written completely or not at all.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repair.images import atomic_write_bytes, from_unit, read_image, to_unit
from repair.methods import Restorer

__all__ = ["DEFAULT_MODEL", "NetworkRestorer", "as_restorer", "restore_plane",
           "restore_pil", "RestorePlan", "plan_restore", "restore_files", "resolve_restorer",
           "check_tiles"]

DEFAULT_MODEL = "restorer-book"
"""The shipped restorer used when no model is named: the mask-guided NAFNet of
:mod:`repair.nafnet` (recipe ``restorer``), trained for hours on damage drawn afresh every step,
single damages and clean photos included, so that it leaves undamaged photos alone."""



class _RestoredAndMask(torch.nn.Module):
    """A network with a damage head as one 2-channel map (restored, damage probability), so the
    tiled engine blends both the same way."""

    def __init__(self, net_G: torch.nn.Module):
        super().__init__()
        self.net_G = net_G

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The restored photo and the damage probability, stacked as two channels."""
        x_restored, logits = self.net_G(x, with_mask=True)
        return torch.cat([x_restored, torch.sigmoid(logits)], dim=1)    # (B, 2, H, W)


class NetworkRestorer:
    """A generator run in overlapping tiles without gradients, as a :data:`Restorer`.

    ``strength`` blends the change: 0 returns the input, 1 the network's output. For a network
    with a damage head, the damage probability of the last photo restored is kept in
    :attr:`last_mask` (``(1, 1, H, W)`` in ``[0, 1]``; ``None`` for other networks).
    """

    def __init__(self, net_G: torch.nn.Module, tile: int = 256, overlap: int = 32,
                 multiple: int = 16, device: str | torch.device = "cpu", progress: bool = False,
                 strength: float = 1.0):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be between 0 (the input) and 1 (full), got {strength}")
        self.net_G = net_G.to(device).eval()
        self.has_mask = bool(getattr(net_G, "hparams", {}).get("mask_width"))
        self.engine = _RestoredAndMask(self.net_G) if self.has_mask else self.net_G
        self.tile, self.overlap, self.multiple = tile, overlap, multiple
        self.device, self.progress, self.strength = device, progress, strength
        self.last_mask: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Restore ``x`` (``(B, 1, H, W)`` in ``[-1, 1]``); ``mask`` is ignored: the network finds
        the damage itself (the contract of :mod:`repair.methods`)."""
        from repair.tiling import restore_tiled

        out = restore_tiled(self.engine, x, tile=self.tile, overlap=self.overlap,
                            multiple=self.multiple, progress=self.progress,
                            device=self.device).cpu()
        x_restored = out[:, :1]
        self.last_mask = out[:, 1:2].clamp(0, 1) if self.has_mask else None
        if self.strength != 1.0:
            x_restored = x + self.strength * (x_restored - x.to(x_restored))
        return x_restored


def as_restorer(net_G: torch.nn.Module | Restorer, tile: int = 256, overlap: int = 32,
                multiple: int = 16, device: str | torch.device = "cpu",
                progress: bool = False, strength: float = 1.0) -> Restorer:
    """Wrap a generator (:class:`NetworkRestorer`) or return a plain restorer function as it is.

    Args:
        net_G: an ``nn.Module`` with the generator interface, or any restorer function.
        tile, overlap: tile side and overlap in pixels for networks.
        multiple: the size divisibility the network needs (16 for a U-Net of depth 4).
        device: where the network runs.
        strength: 0 (return the input) to 1 (the network's full change).
    """
    if not isinstance(net_G, torch.nn.Module):
        return net_G
    return NetworkRestorer(net_G, tile, overlap, multiple, device, progress, strength)


def restore_plane(plane: np.ndarray, restorer: Restorer) -> np.ndarray:
    """Restore one ``(H, W)`` float plane with values in ``[0, 1]``; returns the same shape."""
    x = from_unit(torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32)))[None, None]
    with torch.no_grad():
        y = restorer(x)
    if y.shape != x.shape:
        raise ValueError(f"the restorer changed the image shape from {tuple(x.shape)} to "
                         f"{tuple(y.shape)}")
    return to_unit(y[0, 0]).clamp(0, 1).numpy()


def _quantise(plane: np.ndarray, top: int, dtype) -> np.ndarray:
    return np.round(np.clip(plane, 0, 1) * top).astype(dtype)


def restore_pil(img: Image.Image, restorer: Restorer) -> Image.Image:
    """Restore a Pillow image of any mode (see the module's notes); returns a new image."""
    alpha = None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        alpha = img.getchannel("A")
        img = img.convert("RGB" if img.mode != "LA" else "L")
    if img.mode in ("1", "L"):
        out = Image.fromarray(_quantise(restore_plane(np.asarray(img.convert("L"), np.float32) / 255,
                                                      restorer), 255, np.uint8), "L")
    elif img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535 if img.mode.startswith("I;16") or array.max() > 255 else 255
        restored = _quantise(restore_plane(np.clip(array / top, 0, 1), restorer), top, np.uint16)
        out = Image.fromarray(restored.astype(np.uint16) if top == 65535 else
                              restored.astype(np.uint8))
    elif img.mode == "F":   # PNG holds no floats: written as 16-bit, 0..max (or 0..1) -> 0..65535
        array = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = max(float(array.max()), 1.0 if array.max() <= 1 else 1e-8)
        out = Image.fromarray(_quantise(restore_plane(np.clip(array / top, 0, 1), restorer),
                                        65535, np.uint16))
    else:  # RGB, CMYK, YCbCr, LAB, HSV...: restore the luminance, keep the chroma
        y, cb, cr = img.convert("RGB").convert("YCbCr").split()
        y_restored = _quantise(restore_plane(np.asarray(y, np.float32) / 255, restorer), 255,
                               np.uint8)
        out = Image.merge("YCbCr", (Image.fromarray(y_restored, "L"), cb, cr)).convert("RGB")
    if alpha is not None:
        out = out.convert("RGBA" if out.mode == "RGB" else "LA")
        out.putalpha(alpha)
    return out


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class RestorePlan:
    """Every output of a ``repair restore`` run, checked before any model loads."""

    pairs: list[tuple[Path, Path]]
    frames: list[int | None]
    outputs: list[Path]
    masks: dict[Path, Path]


def plan_restore(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                 masks: bool = False, overwrite: bool = False) -> RestorePlan:
    """Expand ``inputs`` (one entry per frame), plan photos and masks together and check the
    output folder; raises ValueError / FileNotFoundError before anything is written."""
    from repair.batch import check_out_dir, expand_frames, expand_inputs, plan_all

    check_out_dir(out_dir)
    pairs, frames = expand_frames(expand_inputs(inputs))
    plans = plan_all(pairs, Path(out_dir), ("", "_mask") if masks else ("",), overwrite=overwrite)
    return RestorePlan(pairs, frames, plans[0], dict(zip(plans[0], plans[1])) if masks else {})


def restore_files(inputs: Sequence[str | os.PathLike] | RestorePlan,
                  out_dir: str | os.PathLike | None, restorer: Restorer, progress: bool = True,
                  max_pixels: int | None = None, masks: bool = False,
                  overwrite: bool = False) -> int:
    """Restore every photo under ``inputs`` into ``out_dir`` as PNG (same relative names).

    With ``masks``, also ``<name>_mask.png``: the damage the restorer found (8-bit gray, white =
    surely damaged), for restorers with a damage head. Photos and masks are planned together, so
    no output can land on another. Inputs are never overwritten, nor files already in ``out_dir``
    unless ``overwrite``; each output is complete or absent; a bad file is reported and the batch
    goes on. ``inputs`` may be a :func:`plan_restore` made before the restorer was loaded (then
    ``out_dir``, ``masks`` and ``overwrite`` are the plan's). Returns the exit status (0 all
    done, 1 some failed).
    """
    from repair.batch import run_batch
    from repair.images import MAX_PIXELS, clean_stale_temporaries

    plan = inputs if isinstance(inputs, RestorePlan) else None
    if (masks or (plan and plan.masks)) and not getattr(restorer, "has_mask", False):
        raise ValueError("--masks needs a restorer that finds the damage (the default model, "
                         f"{DEFAULT_MODEL}); this one predicts no mask")
    plan = plan or plan_restore(inputs, out_dir, masks, overwrite)
    clean_stale_temporaries(plan.masks.values())
    frame_of = dict(zip(plan.outputs, plan.frames))

    def job(path: Path, out: Path) -> None:
        """Restore one photo (one frame) and write it, with its mask if asked."""
        img = read_image(path, max_pixels=max_pixels or MAX_PIXELS, frame=frame_of[out])
        restored = _png_bytes(restore_pil(img, restorer))
        if out in plan.masks:
            mask = _quantise(restorer.last_mask[0, 0].numpy(), 255, np.uint8)   # (H, W)
            atomic_write_bytes(plan.masks[out], _png_bytes(Image.fromarray(mask, "L")))
        atomic_write_bytes(out, restored)

    return run_batch(plan.pairs, job, plan.outputs, desc="restore", progress=progress)


def check_tiles(tile: int, overlap: int, multiple: int = 16) -> None:
    """``--tile`` and ``--overlap`` checked before any model loads (the networks halve the size
    four times, so a tile is a multiple of 16)."""
    if tile < 32 or tile % multiple:
        raise ValueError(f"--tile {tile}: must be a multiple of {multiple} and at least 32 "
                         "(e.g. 256, the default)")
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"--overlap {overlap}: must be from 0 to less than half of --tile "
                         f"({tile // 2}); e.g. 32, the default")


def resolve_restorer(model: str | None = None, checkpoint: str | os.PathLike | None = None,
                     tile: int = 256, overlap: int = 32, device: str | torch.device = "cpu",
                     progress: bool = False, strength: float = 1.0) -> Restorer:
    """The restorer named on the command line.

    Args:
        model: a classical method (``median-clahe``, ``inpaint-sharpen``: no weights needed) or
            the name of shipped weights (``repair.zoo.available_models()``; default
            :data:`DEFAULT_MODEL`).
        checkpoint: a ``.pt`` file written by ``repair train`` (wins over ``model``).
        tile, overlap: tile side and overlap for networks (large scans stay in bounded memory).
        strength: 0 (return the input) to 1 (the full change).
    """
    from repair.classical import CLASSICAL

    if checkpoint is not None:
        from repair.checkpoint import load_generator
        net_G = load_generator(checkpoint, device=device)
    elif model in CLASSICAL:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be between 0 (the input) and 1 (full), got {strength}")
        method = CLASSICAL[model]
        return lambda x: x + strength * (method(x) - x)
    else:
        from repair import zoo
        names = list(zoo.available_models())
        if model is None:
            model = DEFAULT_MODEL if DEFAULT_MODEL in names else (names[0] if names else None)
        if model not in names:
            choices = ", ".join([*CLASSICAL, *names])
            raise ValueError(f"unknown model {model!r}: choose one of {choices}, or give "
                             "--checkpoint PATH")
        net_G = zoo.load_models([model], device=device)[model]
    multiple = 2 ** getattr(net_G, "hparams", {}).get("depth", 4)
    if tile % multiple:
        raise ValueError(f"--tile {tile}: this network needs a multiple of {multiple}")
    return as_restorer(net_G, tile=tile, overlap=overlap, multiple=multiple, device=device,
                       progress=progress, strength=strength)
