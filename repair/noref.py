"""No-reference measures: numbers for a restored photo when there is no clean original to compare to.

Real old photographs have no ground truth, so PSNR and SSIM cannot be computed on them. These
measures look at one image alone; none needs downloaded weights:

* ``sharpness``: variance of the Laplacian (fine detail and edges; also rises with noise and with
  invented texture, so higher is not always better);
* ``gradient``: mean gradient magnitude (Sobel), a steadier sharpness measure;
* ``noise``: the standard deviation of Gaussian noise estimated from the finest diagonal wavelet
  band, Donoho's median-absolute-deviation rule (the method of scikit-image's ``estimate_sigma``,
  written here with a Haar wavelet so that PyWavelets is not needed); grain, dust and fine lines
  all count as "noise";
* ``contrast``: RMS contrast, the standard deviation of the gray values.

BRISQUE is not here: the ``brisque`` package (0.2.0) ships its SVM model, but its scoring fails with
NumPy 2 (``float()`` of 1-element arrays), so the course does without it.

Every value is computed on the ``[0, 1]`` gray values, so images of one size compare directly;
sharpness and noise depend on the image's size (resize photos to one size before comparing).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

__all__ = ["sharpness", "gradient", "noise", "contrast", "highpass_energy", "measure", "MEASURES"]

MEASURES = ("sharpness", "gradient", "noise", "contrast")
"""The measures :func:`measure` returns, in this order."""


def _plane(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """One gray image ``(1, H, W)``, ``(1, 1, H, W)`` or ``(H, W)`` in ``[-1, 1]`` -> float64
    ``(H, W)`` in ``[0, 1]``, with a clear error for anything else."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(x, dtype=np.float64)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"expected one grayscale image (1, H, W), got shape {np.shape(x)}; "
                         "measure a batch one image at a time")
    if array.shape[0] < 8 or array.shape[1] < 8:
        raise ValueError(f"image of {array.shape[0]}x{array.shape[1]} px is too small to measure "
                         "(at least 8x8)")
    if not np.isfinite(array).all():
        raise ValueError("image contains NaN or infinite values")
    return np.clip((array + 1) / 2, 0, 1)


def sharpness(x: torch.Tensor) -> float:
    """Variance of the Laplacian of the ``[0, 1]`` gray values (higher: more fine detail).

    Args:
        x: one image ``(1, H, W)`` in ``[-1, 1]``.
    """
    return float(ndimage.laplace(_plane(x), mode="reflect").var())


def gradient(x: torch.Tensor) -> float:
    """Mean Sobel gradient magnitude of the ``[0, 1]`` gray values (higher: more edges).

    Args:
        x: one image ``(1, H, W)`` in ``[-1, 1]``.
    """
    plane = _plane(x)
    gy = ndimage.sobel(plane, axis=0, mode="reflect") / 8  # Sobel sums 8x the unit step
    gx = ndimage.sobel(plane, axis=1, mode="reflect") / 8
    return float(np.hypot(gx, gy).mean())


def noise(x: torch.Tensor) -> float:
    """Estimated Gaussian noise standard deviation on the ``[0, 1]`` scale.

    The finest diagonal Haar detail of each 2x2 block, ``(a - b - c + d) / 2``, has the noise's
    standard deviation for white noise and is near 0 on smooth image content; its median absolute
    value divided by 0.6745 (Donoho and Johnstone's rule) estimates that deviation robustly.

    Args:
        x: one image ``(1, H, W)`` in ``[-1, 1]``.
    """
    plane = _plane(x)
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    a, b = plane[0:h:2, 0:w:2], plane[0:h:2, 1:w:2]
    c, d = plane[1:h:2, 0:w:2], plane[1:h:2, 1:w:2]
    detail = (a - b - c + d) / 2  # (H/2, W/2)
    return float(np.median(np.abs(detail)) / 0.6745)


def contrast(x: torch.Tensor) -> float:
    """RMS contrast: the standard deviation of the ``[0, 1]`` gray values.

    Args:
        x: one image ``(1, H, W)`` in ``[-1, 1]``.
    """
    return float(_plane(x).std())


def highpass_energy(x: torch.Tensor, where: torch.Tensor | np.ndarray | None = None,
                    sigma: float = 1.0) -> float:
    """Mean squared high-pass (the image minus its Gaussian blur, ``sigma`` px) of the ``[0, 1]``
    gray values over the pixels ``where`` is True (all of them by default).

    Grain, noise and invented texture live in this band: comparing a restored photo with its input
    over the regions a restorer should leave alone (outside its damage mask) shows whether it made
    them noisier (ratio above 1) or smoother (below 1).

    Args:
        x: one image ``(1, H, W)`` in ``[-1, 1]``.
        where: bool ``(H, W)`` (or ``(1, H, W)``) of the pixels to measure.
        sigma: the Gaussian's sigma in pixels.
    """
    plane = _plane(x)
    band = plane - ndimage.gaussian_filter(plane, sigma, mode="reflect")
    if where is None:
        return float(np.mean(band ** 2))
    keep = np.asarray(where.cpu() if isinstance(where, torch.Tensor) else where, bool)
    keep = keep.reshape(keep.shape[-2:])
    if keep.shape != plane.shape:
        raise ValueError(f"where has shape {keep.shape}, the image {plane.shape}")
    if not keep.any():
        raise ValueError("where selects no pixel: nothing to measure")
    return float(np.mean(band[keep] ** 2))


def measure(x: torch.Tensor) -> dict[str, float]:
    """Every no-reference measure of one image: ``{sharpness, gradient, noise, contrast}``.

    Args:
        x: one image ``(1, H, W)`` (or ``(1, 1, H, W)``) in ``[-1, 1]``.
    """
    _plane(x)  # validate once, with a clear message
    return {"sharpness": sharpness(x), "gradient": gradient(x), "noise": noise(x),
            "contrast": contrast(x)}
