"""The validation photos that training carved out, and PSNR on them: choosing between trained
models without looking at the test sets (chapter 04).

Moved out of :mod:`repair.zoo` so that zoo (names -> weights) does not import
:mod:`repair.evaluate`, which imports zoo."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["validation_photos", "validation_psnr"]


def validation_photos(folder: str | os.PathLike | None = None, size: int = 256, limit: int = 24,
                      seed: int = 0, val_fraction: float = 0.1, min_side: int = 0
                      ) -> torch.Tensor:
    """The validation split that training carved out of ``folder``, as evaluation sees photos.

    The same split as :func:`repair.data.make_datasets` (``val_fraction`` of the photos, fixed by
    ``seed``), the first ``limit`` of it in sorted order, each cut to its centre square and resized
    to ``size x size`` like the test photos of :func:`repair.evaluate.evaluate`. Use it to choose
    between trained models at the evaluation size without looking at the test sets.

    Args:
        folder: the training photos (default ``<data root>/train``).
        min_side: keep only photos whose shorter side has at least this many pixels (256: none
            enlarged to reach ``size``), as ``repair train --min-side`` trains.

    Returns:
        ``(N, 1, size, size)`` in ``[-1, 1]``.
    """
    from repair import images
    from repair.config import data_root
    from repair.data import split_files

    folder = Path(folder) if folder is not None else data_root() / "train"
    _, val = split_files(images.find_images(folder), val_fraction, seed)
    if min_side:
        from repair.synth import large_enough

        val = large_enough(val, min_side)
    if not val:
        raise FileNotFoundError(f"{folder}: too few photos for a validation split")
    return torch.stack([images.center_square(images.load_gray(p), size) for p in val[:limit]])


def validation_psnr(methods: dict, x_clean: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Mean PSNR of each method on ``x_clean`` damaged with the paper's mix (photo ``i``: seed
    ``seed + i``), e.g. on :func:`validation_photos`: ``{name: dB}``."""
    from repair.evaluate import evaluate

    results = evaluate(x_clean, methods, seed=seed, lpips=False, progress=False)["methods"]
    return {name: results[name]["psnr"] for name in methods}
