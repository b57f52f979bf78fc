"""Image-quality numbers for restored photographs: PSNR, SSIM, an edge (sharpness) ratio, LPIPS.

All functions take ``x_restored`` and ``x_clean`` as grayscale tensors in ``[-1, 1]``, shaped
``(1, H, W)`` for one image or ``(B, 1, H, W)`` for a batch, and score each image separately on the
``[0, 1]`` scale (``data_range = 1``). PSNR and SSIM come from scikit-image; the edge ratio is ours:

* **PSNR** (dB, higher is better), capped at :data:`PSNR_MAX` so identical images give a finite,
  JSON-safe number instead of infinity.
* **SSIM** (1 = identical) with the settings of Wang et al. (2004): Gaussian window, sigma 1.5.
* **edge** = total Sobel gradient magnitude of the restored image / that of the clean image.
  1 means as sharp as the clean photo, below 1 blurrier (or lower contrast), above 1 noisier or
  over-sharpened. It rewards nothing by itself: read it next to PSNR/SSIM.
* **LPIPS** needs pretrained network weights that cannot be downloaded offline. :func:`lpips`
  only runs when the ``lpips`` package and its backbone weights are already on disk; otherwise it
  raises :class:`LPIPSUnavailable`, whose message starts with ``"skipped:"``, for callers to record.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from repair.images import to_unit

__all__ = [
    "PSNR_MAX", "LPIPSUnavailable", "psnr", "masked_psnr", "ssim", "edge_ratio", "image_scores",
    "lpips_status", "lpips_available", "lpips",
]

PSNR_MAX = 100.0  # dB; what identical images score (the exact value would be infinite)
_EPS = 1e-8


class LPIPSUnavailable(RuntimeError):
    """LPIPS cannot be computed here: its package or pretrained weights are not on disk."""


def _as_unit_batch(x: torch.Tensor, name: str) -> np.ndarray:
    """A ``(1, H, W)`` or ``(B, 1, H, W)`` tensor in ``[-1, 1]`` as float64 ``(B, H, W)`` in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must be grayscale (1, H, W) or (B, 1, H, W), got shape "
                         f"{tuple(x.shape)}; convert colour images to gray first")
    array = to_unit(x.detach().to("cpu", torch.float64)).clamp(0, 1)[:, 0].numpy()
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _pair(x_restored: torch.Tensor, x_clean: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    restored = _as_unit_batch(x_restored, "x_restored")
    clean = _as_unit_batch(x_clean, "x_clean")
    if restored.shape != clean.shape:
        raise ValueError(f"x_restored {tuple(x_restored.shape)} and x_clean "
                         f"{tuple(x_clean.shape)} must have the same shape")
    return restored, clean


def _per_image(values: list[float], x: torch.Tensor) -> float | torch.Tensor:
    """A float for one ``(1, H, W)`` image, a float64 tensor ``(B,)`` for a batch."""
    return float(values[0]) if x.dim() == 3 else torch.tensor(values, dtype=torch.float64)


def _psnr_one(restored: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((restored - clean) ** 2))
    if mse <= 10 ** (-PSNR_MAX / 10):
        return PSNR_MAX
    from skimage.metrics import peak_signal_noise_ratio

    return min(float(peak_signal_noise_ratio(clean, restored, data_range=1.0)), PSNR_MAX)


def _ssim_one(restored: np.ndarray, clean: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    if min(clean.shape) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {clean.shape}")
    return float(structural_similarity(clean, restored, data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def _edge_energy(image: np.ndarray) -> float:
    from skimage.filters import sobel

    return float(sobel(image).sum())


def _edge_one(restored: np.ndarray, clean: np.ndarray) -> float:
    return (_edge_energy(restored) + _EPS) / (_edge_energy(clean) + _EPS)


def psnr(x_restored: torch.Tensor, x_clean: torch.Tensor) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB on ``[0, 1]``, per image, capped at :data:`PSNR_MAX`.

    Args:
        x_restored: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]`` (clamped to it).
        x_clean: the ground truth, same shape and range.

    Returns:
        a float for one image, a float64 tensor ``(B,)`` for a batch.
    """
    restored, clean = _pair(x_restored, x_clean)
    return _per_image([_psnr_one(r, c) for r, c in zip(restored, clean)], x_restored)


def masked_psnr(x_restored: torch.Tensor, x_clean: torch.Tensor, mask: torch.Tensor
                ) -> torch.Tensor:
    """PSNR in dB on ``[0, 1]`` over only the pixels where ``mask`` is True, per image.

    Inside a damage mask it measures what a restorer invented; outside it, what it kept.

    Args:
        x_restored, x_clean: ``(B, 1, H, W)`` in ``[-1, 1]``.
        mask: bool ``(B, 1, H, W)`` (or broadcastable to it).

    Returns:
        a tensor ``(B,)``; an image whose mask is empty, or whose masked pixels are exact, gets a
        large finite value (the squared error is floored at 1e-10).
    """
    error = ((to_unit(x_restored) - to_unit(x_clean)) ** 2 * mask).sum(dim=[1, 2, 3])
    count = mask.expand_as(x_clean).sum(dim=[1, 2, 3]).clamp(min=1)
    return 10 * torch.log10(count / error.clamp(min=1e-10))


def ssim(x_restored: torch.Tensor, x_clean: torch.Tensor) -> float | torch.Tensor:
    """Structural similarity on ``[0, 1]`` (Gaussian window, sigma 1.5), per image.

    Args:
        x_restored: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``; sides of at least 11 pixels.
        x_clean: the ground truth, same shape and range.
    """
    restored, clean = _pair(x_restored, x_clean)
    return _per_image([_ssim_one(r, c) for r, c in zip(restored, clean)], x_restored)


def edge_ratio(x_restored: torch.Tensor, x_clean: torch.Tensor) -> float | torch.Tensor:
    """Sobel gradient energy of ``x_restored`` over that of ``x_clean``, per image.

    1 = as sharp as the clean photo; below 1 blurrier (or flatter); above 1 noisier/over-sharpened.

    Args:
        x_restored: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        x_clean: the ground truth, same shape and range.
    """
    restored, clean = _pair(x_restored, x_clean)
    return _per_image([_edge_one(r, c) for r, c in zip(restored, clean)], x_restored)


def image_scores(x_restored: torch.Tensor, x_clean: torch.Tensor) -> list[dict[str, float]]:
    """``{"psnr", "ssim", "edge"}`` for every image of the batch (a one-element list for one image).

    Args:
        x_restored: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        x_clean: the ground truth, same shape and range.
    """
    restored, clean = _pair(x_restored, x_clean)
    return [{"psnr": _psnr_one(r, c), "ssim": _ssim_one(r, c), "edge": _edge_one(r, c)}
            for r, c in zip(restored, clean)]


# ---------------------------------------------------------------- LPIPS (only with local weights)

_LPIPS_MODELS: dict[tuple[str, str], torch.nn.Module] = {}
_BACKBONE_WEIGHTS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights",
                     "squeeze": "SqueezeNet1_1_Weights"}


def lpips_status(net: str = "alex") -> str | None:
    """``None`` if LPIPS with backbone ``net`` can run offline, else the reason it is skipped.

    Looks for the ``lpips`` package, its linear-layer weights and the torchvision backbone
    weights in the torch hub cache; downloads nothing.
    """
    if net not in _BACKBONE_WEIGHTS:
        raise ValueError(f"unknown LPIPS backbone {net!r}: choose one of {', '.join(_BACKBONE_WEIGHTS)}")
    skipped = "skipped: LPIPS weights not available offline"
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return f"{skipped} (the 'lpips' package is not installed)"
    package_dir = Path(list(spec.submodule_search_locations)[0])
    linear = package_dir / "weights" / "v0.1" / f"{net}.pth"
    if not linear.is_file():
        return f"{skipped} (missing {linear})"
    import torchvision

    url = getattr(torchvision.models, _BACKBONE_WEIGHTS[net]).IMAGENET1K_V1.url
    backbone = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not backbone.is_file():
        return f"{skipped} (missing {backbone}; copy it there from a machine with internet)"
    return None


def lpips_available(net: str = "alex") -> bool:
    """Whether :func:`lpips` can run here without downloading anything."""
    return lpips_status(net) is None


def lpips(x_restored: torch.Tensor, x_clean: torch.Tensor, net: str = "alex",
          device: str | torch.device = "cpu") -> float | torch.Tensor:
    """LPIPS distance (0 = identical, lower is better) per image, gray repeated to 3 channels.

    Args:
        x_restored: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        x_clean: the ground truth, same shape and range.
        net: the backbone, ``"alex"`` (the usual choice), ``"vgg"`` or ``"squeeze"``.
        device: where to run the network.

    Raises:
        LPIPSUnavailable: the package or weights are missing (message starts with ``"skipped:"``).
    """
    reason = lpips_status(net)
    if reason is not None:
        raise LPIPSUnavailable(reason)
    _pair(x_restored, x_clean)  # validates shapes and values
    key = (net, str(device))
    if key not in _LPIPS_MODELS:
        import lpips as lpips_package

        _LPIPS_MODELS[key] = lpips_package.LPIPS(net=net, verbose=False).to(device).eval()
    restored = x_restored if x_restored.dim() == 4 else x_restored[None]
    clean = x_clean if x_clean.dim() == 4 else x_clean[None]
    with torch.no_grad():
        distance = _LPIPS_MODELS[key](restored.float().clamp(-1, 1).repeat(1, 3, 1, 1).to(device),
                                      clean.float().clamp(-1, 1).repeat(1, 3, 1, 1).to(device))
    values = distance.flatten().double().cpu().tolist()
    return _per_image(values, x_restored)
