"""The evaluation harness: damage clean photos with fixed seeds, restore them, score every method.

A *method* is any callable ``(x_damaged, mask) -> x_restored`` on ``(B, 1, H, W)`` tensors in
``[-1, 1]`` (``mask``: bool, True where splotches/cracks were painted). Built in: ``"damaged"`` (no
restoration, the floor to beat) and the classical restorers of :mod:`repair.classical`. A trained
generator joins through :func:`wrap_generator`::

    results = evaluate("photos/", {"damaged": None, "unet": wrap_generator(net_G)})

Image ``i`` is damaged with seed ``seed + i`` by :func:`repair.damage.damage`, so every method sees
exactly the same damaged photos and a rerun gives the same numbers (timings aside). The command
``repair evaluate`` (:mod:`repair.evaluate_cli`) compares the built-in methods and every trained
generator that :mod:`repair.zoo` finds (``checkpoints/``); a bad photo or checkpoint is reported in
the results (``failed``) and the evaluation goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from repair import classical, metrics
from repair.damage import DAGUERREOTYPE_MIX, DAMAGES, PAPER_MIX, PLATE_DAMAGES, damage
from repair.images import ImageError, find_images, load_gray
from repair.results import ORACLES, format_table, save_json

__all__ = ["Method", "builtin_methods", "wrap_generator", "resolve_methods", "select_methods",
           "center_square", "load_clean_images", "damage_settings", "evaluate", "summarise",
           "format_table", "save_json"]

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SCORES = ("psnr", "ssim", "edge", "lpips")


def _damaged(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """No restoration at all: the score every method has to beat."""
    return x_damaged


def _blind(method: Method) -> Method:
    def restore(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``method`` without the mask: what a user can run (nobody tells it the damage)."""
        return method(x_damaged, None)
    restore.__doc__ = method.__doc__
    return restore


def builtin_methods() -> dict[str, Method]:
    """The methods that need no checkpoint, by name: ``damaged`` (no restoration), the classical
    restorers as a user runs them (blind: ``inpaint-sharpen`` guesses its mask), and the oracle
    ``inpaint-sharpen-oracle``, given the true mask (:data:`ORACLES`)."""
    blind = {name: _blind(method) for name, method in classical.CLASSICAL.items()}
    return {"damaged": _damaged, **blind, "inpaint-sharpen-oracle": classical.inpaint_sharpen}


def wrap_generator(net_G: torch.nn.Module, device: str | torch.device = "cpu") -> Method:
    """A trained generator as a method: ``net_G(x_damaged)`` in eval mode without gradients.

    Args:
        net_G: maps ``(B, 1, H, W)`` in ``[-1, 1]`` to the same shape and range; the mask is unused.
        device: where to run it; inputs are moved there and results back to the input's device.
    """
    net_G = net_G.to(device).eval()
    def restore(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``net_G(x_damaged)`` on ``device``, back on the input's device."""
        with torch.no_grad():
            return net_G(x_damaged.to(device)).to(x_damaged.device)

    return restore


def resolve_methods(methods: str | list | tuple | Mapping | None = None,
                    extra: Mapping[str, Method] | None = None) -> dict[str, Method]:
    """Turn names and/or callables into ``{name: method}``.

    Args:
        methods: ``None`` (every built-in and every ``extra``), a comma-separated string or list of
            names, or a dict ``{name: callable | nn.Module | None}`` (``None``: look the name up).
        extra: more named methods (e.g. wrapped checkpoints) that names may refer to.

    Raises:
        ValueError: an unknown name, or a method that is not callable.
    """
    available = {**builtin_methods(), **(extra or {})}
    if methods is None:
        return available
    if isinstance(methods, str):
        methods = [name.strip() for name in methods.split(",") if name.strip()]
    items = methods.items() if isinstance(methods, Mapping) else [(name, None) for name in methods]
    resolved: dict[str, Method] = {}
    for name, method in items:
        if method is None:
            if name not in available:
                raise ValueError(f"unknown method {name!r}: choose from {', '.join(available)} "
                                 f"(or pass a callable (x_damaged, mask) -> x_restored)")
            method = available[name]
        elif isinstance(method, torch.nn.Module):
            method = wrap_generator(method)
        if not callable(method):
            raise ValueError(f"method {name!r} is not callable: give a function "
                             f"(x_damaged, mask) -> x_restored or a generator nn.Module")
        resolved[str(name)] = method
    if not resolved:
        raise ValueError("no methods to evaluate: name at least one, e.g. 'damaged'")
    return resolved


def center_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize (antialiased bilinear) to ``size x size``.

    Args:
        x: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        size: output side in pixels.
    """
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = x[..., top:top + side, left:left + side]
    if side == size:
        return square.clone()
    batch = square if square.dim() == 4 else square[None]
    out = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False).clamp(-1, 1)
    return out if square.dim() == 4 else out[0]


def load_clean_images(folder: str | Path, size: int = 256, limit: int | None = None,
                      failed: dict[str, str] | None = None) -> tuple[list[str], torch.Tensor]:
    """Every image under ``folder`` (recursive, sorted) as gray ``size x size`` centre squares:
    ``(names relative to folder, x_clean (N, 1, size, size))``. With a ``failed`` dict, an
    unreadable photo is recorded there (``{name: message}``) and skipped instead of raising.

    Raises:
        FileNotFoundError: no folder, or no images in it. ImageError: an unreadable photo
        (without ``failed``), or none readable at all.
    """
    folder = Path(folder)
    files = find_images(folder)[:limit]
    names, squares = [], []
    for path in files:
        name = str(path.relative_to(folder)) if path != folder else path.name
        try:
            squares.append(center_square(load_gray(path), size))
        except (ImageError, OSError) as err:
            if failed is None:
                raise
            failed[name] = str(err)
            continue
        names.append(name)
    if not squares:
        raise ImageError(f"{folder}: none of its {len(files)} photos could be read; see above")
    return names, torch.stack(squares)


ALL_DAMAGES = (*DAMAGES, *PLATE_DAMAGES)


def damage_settings(per_damage: bool = False, mix: Mapping[str, float] | None = None
                    ) -> dict[str, dict[str, float]]:
    """Named damage strengths: ``"mix"`` (the paper's four by default); with ``per_damage`` also
    each of the four alone, ``"clean"`` (no damage: a restorer should return the photo) and
    ``"daguerreotype"`` (:data:`repair.damage.DAGUERREOTYPE_MIX`).

    A damage alone keeps its strength in the mix (or the paper's, if the mix switches it off).
    """
    mix = {**PAPER_MIX, **(mix or {})}
    unknown = set(mix) - set(ALL_DAMAGES)
    if unknown:
        raise ValueError(f"unknown damage {sorted(unknown)}: choose from {', '.join(ALL_DAMAGES)}")
    off = dict.fromkeys(ALL_DAMAGES, 0.0)
    settings = {"mix": {**off, **{name: float(value) for name, value in mix.items()}}}
    if per_damage:
        for name in DAMAGES:
            strength = float(mix[name]) or float(PAPER_MIX[name])
            settings[name] = {**off, name: strength}
        settings["clean"] = dict(off)
        settings["daguerreotype"] = {**off, **DAGUERREOTYPE_MIX}
    return settings


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict], damage_name: str, method_names: list[str]) -> dict[str, dict]:
    """Mean scores per method over the ``rows`` of one damage setting (rows as :func:`evaluate`
    returns them; rows pooled from several sets need an ``index`` unique per photo). With
    ``damaged`` among the methods also ``gain`` (mean PSNR over the damaged input's) and ``worse``
    (photos whose PSNR fell below the damaged input's)."""
    here = [r for r in rows if r["damage"] == damage_name]
    floor = {r["index"]: r["psnr"] for r in here if r["method"] == "damaged"}
    summary = {}
    for name in method_names:
        mine = [r for r in here if r["method"] == name]
        summary[name] = {**{key: _mean([r.get(key) for r in mine]) for key in SCORES},
                         "ms_per_image": _mean([r["ms"] for r in mine]), "images": len(mine)}
        if floor:
            summary[name]["gain"] = _mean([r["psnr"] - floor[r["index"]] for r in mine])
            summary[name]["worse"] = sum(r["psnr"] < floor[r["index"]] for r in mine)
    return summary


def _restore(method: Method, name: str, x_damaged: torch.Tensor, mask: torch.Tensor
             ) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    x_restored = method(x_damaged, mask)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if not isinstance(x_restored, torch.Tensor) or tuple(x_restored.shape) != tuple(x_damaged.shape):
        got = tuple(x_restored.shape) if isinstance(x_restored, torch.Tensor) else type(x_restored)
        raise ValueError(f"method {name!r} returned {got}, expected a tensor of shape "
                         f"{tuple(x_damaged.shape)} like its input")
    return x_restored.detach().float().cpu(), elapsed_ms


def _clean_input(clean_images: str | Path | torch.Tensor, size: int, limit: int | None,
                 failed: dict[str, str]) -> tuple[list[str], torch.Tensor, str]:
    """``(names, x_all (N, 1, size, size), source)`` from a folder or a tensor."""
    if size < 16 or (limit is not None and limit < 1):
        raise ValueError(f"size must be at least 16 pixels and limit a positive number of "
                         f"images; got size {size}, limit {limit}")
    if not isinstance(clean_images, torch.Tensor):
        names, x_all = load_clean_images(clean_images, size=size, limit=limit, failed=failed)
        return names, x_all, str(clean_images)
    if clean_images.dim() != 4 or clean_images.shape[1] != 1 or len(clean_images) == 0:
        raise ValueError(f"clean_images must be a non-empty (N, 1, H, W) tensor, got "
                         f"{tuple(clean_images.shape)}")
    x_all = center_square(clean_images[:limit].detach().float().cpu(), size)
    return [f"image-{i:03d}" for i in range(len(x_all))], x_all, "tensor"


def _score_all(names: list[str], x_all: torch.Tensor, settings: dict, resolved: dict,
               seed: int, use_lpips: bool, progress: bool) -> list[dict]:
    """One row per photo, damage setting and method (see :func:`evaluate`)."""
    from tqdm.auto import tqdm

    rows: list[dict] = []
    warmed: set[str] = set()
    steps = tqdm(total=len(names) * len(settings), desc="evaluate", disable=not progress)
    for i, (name, x_clean) in enumerate(zip(names, x_all)):
        x_clean = x_clean[None]  # (1, 1, size, size)
        for damage_name, strengths in settings.items():
            x_damaged, mask = damage(x_clean, seed=seed + i, **strengths)
            for method_name, method in resolved.items():
                if method_name not in warmed:  # first call pays one-off set-up costs: not timed
                    _restore(method, method_name, x_damaged, mask)
                    warmed.add(method_name)
                x_restored, ms = _restore(method, method_name, x_damaged, mask)
                row = {"image": name, "index": i, "seed": seed + i, "damage": damage_name,
                       "method": method_name, **metrics.image_scores(x_restored, x_clean)[0],
                       "lpips": None, "ms": ms}
                if use_lpips:
                    row["lpips"] = float(metrics.lpips(x_restored[0], x_clean[0]))
                rows.append(row)
            steps.update()
    steps.close()
    return rows


def evaluate(clean_images: str | Path | torch.Tensor, methods=None, seed: int = 0,
             damages: Mapping[str, float] | None = None, per_damage: bool = False,
             limit: int | None = None, size: int = 256, lpips: bool | str = "auto",
             progress: bool = True) -> dict:
    """Damage every clean photo (seed ``seed + i``), restore it with every method and score it.

    Args:
        clean_images: a folder (searched recursively) or a tensor ``(N, 1, H, W)`` in ``[-1, 1]``;
            images are centre-cropped and resized to ``size x size``.
        methods: see :func:`resolve_methods` (``None``: every built-in method).
        seed: image ``i`` gets damage seed ``seed + i`` (0 or more).
        damages: strengths of the damage mix (default :data:`repair.damage.PAPER_MIX`).
        per_damage: also score each damage alone (blur, splotches, cracks, contrast), clean
            input and the daguerreotype mix (:func:`damage_settings`).
        limit: use at most this many images (the first in sorted order).
        size: side of the square images, in pixels (at least 16).
        lpips: ``"auto"`` scores LPIPS when its weights are on disk, ``False`` never.
        progress: show a progress bar.

    Returns:
        a JSON-serialisable dict: ``settings``; ``methods`` = ``{method: {psnr, ssim, edge, lpips,
        ms_per_image, images}}`` on the mix; ``per_damage`` = ``{damage: {method: ...}}`` (only
        with ``per_damage``); ``rows``, one per image, damage and method; ``skipped``, metrics not
        computed and why; ``failed``, photos that could not be read and why (they are left
        out, the others scored). ``lpips`` is ``None`` when skipped.
    """
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    failed: dict[str, str] = {}
    names, x_all, source = _clean_input(clean_images, size, limit, failed)
    resolved = resolve_methods(methods)
    settings = damage_settings(per_damage, damages)
    use_lpips = lpips is True or lpips == "auto"
    reason = metrics.lpips_status() if use_lpips else "skipped: switched off by the caller"
    skipped = {"lpips": reason} if reason is not None else {}
    use_lpips = use_lpips and reason is None
    rows = _score_all(names, x_all, settings, resolved, seed, use_lpips, progress)
    method_names = list(resolved)
    results = {
        "settings": {"source": source, "images": len(names), "size": size, "seed": seed,
                     "methods": method_names, "damages": settings, "psnr_max": metrics.PSNR_MAX},
        "methods": summarise(rows, "mix", method_names),
        "rows": rows, "skipped": skipped, "failed": failed,
    }
    if per_damage:
        results["per_damage"] = {d: summarise(rows, d, method_names) for d in settings if d != "mix"}
    return results


def select_methods(names: list[str] | None = None, checkpoints: str | Path | None = None,
                   device: str = "cpu", extra: Mapping[str, Method] | None = None,
                   failed: dict[str, str] | None = None) -> dict[str, Method]:
    """The methods ``names`` asks for (``None``: every built-in, extra and trained one): built-in
    methods, ``extra`` and the trained generators :mod:`repair.zoo` finds in ``checkpoints``
    (default: ``checkpoints/``, else ``$REPAIR_CHECKPOINTS``), only those asked for loaded onto
    ``device``. With a ``failed`` dict, a generator that cannot be loaded is recorded there
    (``{name: message}``) and left out; otherwise its error is raised.

    Raises:
        ValueError: a name that is none of these.
    """
    from repair import zoo

    found = zoo.available_models(checkpoints)
    known = {**builtin_methods(), **(extra or {})}
    if names is None:
        wanted = [n for n in found if n not in known]
    else:
        unknown = [n for n in names if n not in known and n not in found]
        if unknown:
            raise ValueError(
                f"unknown method {', '.join(map(repr, unknown))}: choose from "
                f"{', '.join([*known, *found])} (trained generators come from "
                f"{checkpoints or 'checkpoints/ or $' + zoo.ENV_FALLBACK}; see --checkpoints)")
        wanted = [n for n in dict.fromkeys(names) if n in found and n not in known]
    learned: dict[str, Method] = {}
    for name in wanted:
        try:
            learned.update(zoo.learned_methods([name], device=device, root=checkpoints))
        except (ValueError, OSError, RuntimeError, KeyError, TypeError) as err:
            if failed is None:
                raise
            failed[name] = str(err)
    if names is not None:
        names = [n for n in names if n not in (failed or {})]
    return resolve_methods(names, extra={**learned, **(extra or {})})
