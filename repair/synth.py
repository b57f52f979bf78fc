"""Training pairs that teach restraint: damage drawn afresh for every sample of every step.

A restorer trained on one fixed damage mix learns to *always* change a photo; given a lightly
damaged or clean one it over-corrects. Here, as in SCUNet's and Real-ESRGAN's data pipelines,
every damage is switched on independently with its own probability (:data:`DAMAGE_ODDS`), with a
strength drawn over its whole range, and a share of the pairs (:data:`CLEAN_SHARE`) is left clean
with the identity as its target. Single damages, mixes and no damage at all all occur. A share
of the crops (``decoy_share``) also gets *decoys* painted in before the damage: straight lines,
grids and hard-edged shapes that look like cracks and stains but belong to the photo
(:mod:`repair.decoys`), so the network learns to keep a tripod's legs and a wall's mortar.

:class:`RestraintPairs` is step-indexed: batch ``step`` is a pure function of ``(seed, step)``, so
a run resumed at step ``s`` sees exactly the batches it would have seen (no state to save).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from repair.damage import damage
from repair.decoys import paint_decoys
from repair.data import fit_size, random_rescale

__all__ = ["DAMAGE_ODDS", "CLEAN_SHARE", "STRENGTHS", "LONE_DAMAGES", "restraint_mix",
           "RestraintPairs", "fixed_pairs", "training_photos"]

DAMAGE_ODDS = {"blur": 0.5, "splotches": 0.5, "cracks": 0.5, "contrast": 0.5,
               "scratches": 0.2, "dust": 0.2, "tarnish": 0.1, "haze": 0.1}
"""Probability that each damage is applied to a training pair (independently of the others)."""

OFF = dict.fromkeys(DAMAGE_ODDS, 0.0)  # every damage switched off (missing names are not)

CLEAN_SHARE = 0.15
"""Share of training pairs with no damage at all: the target is the input itself."""

STRENGTHS = (0.05, 1.0)
"""Range of the strength of a damage that is on (uniform): its whole range, from faint to worst."""

LONE_DAMAGES = ("blur", "splotches", "cracks", "contrast")
"""The damages a *lone-damage* pair (``single_share``) draws from, uniformly: the paper's four.
Independent odds of 0.5 make a photo with blur and nothing else rare (about 3% of pairs); a
restorer that seldom sees one damage alone learns to change more than that damage."""


def restraint_mix(rng: np.random.Generator, odds: dict[str, float] | None = None,
                  clean_share: float = CLEAN_SHARE,
                  strengths: tuple[float, float] = STRENGTHS,
                  single_share: float = 0.0) -> dict[str, float]:
    """Strengths for one pair: each damage on with its probability, or all off (clean pair),
    or (with probability ``single_share``, among the pairs that are not clean) one damage alone.

    Args:
        rng: the random generator of this pair.
        odds: probability per damage name (default :data:`DAMAGE_ODDS`).
        clean_share: probability of a clean pair (every strength 0).
        strengths: ``(low, high)`` range of the strength of a damage that is on.
        single_share: probability that a damaged pair has exactly one of :data:`LONE_DAMAGES`,
            chosen uniformly (0: every pair follows ``odds``; the draws then match earlier
            versions, so old runs replay exactly).
    """
    odds = DAMAGE_ODDS if odds is None else odds
    low, high = strengths
    if not 0 <= low <= high <= 1:
        raise ValueError(f"strengths must be (low, high) with 0 <= low <= high <= 1, got {strengths}")
    for name, share in (("clean_share", clean_share), ("single_share", single_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {share}")
    clean = rng.random() < clean_share
    draws = {name: (rng.random() < p, float(rng.uniform(low, high))) for name, p in odds.items()}
    if single_share and rng.random() < single_share:  # one damage alone (draws above unused)
        lone = LONE_DAMAGES[int(rng.integers(len(LONE_DAMAGES)))]
        draws = {name: (name == lone, strength) for name, (_, strength) in draws.items()}
    return {name: strength if on and not clean else 0.0 for name, (on, strength) in draws.items()}


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A random flip and a random quarter turn of a ``(1, S, S)`` crop."""
    if rng.random() < 0.5:
        x = x.flip(-1)
    return torch.rot90(x, int(rng.integers(4)), dims=(-2, -1)).contiguous()


class RestraintPairs:
    """An endless source of ``(x_clean, x_damaged, mask)`` batches, each ``(B, 1, S, S)``.

    Args:
        photos: image files, or ``(1, H, W)`` tensors in ``[-1, 1]``.
        seed: base seed; batch ``step`` uses the generator ``[seed, step]``.
        scale: shrink each photo by a random factor in this range before cropping (never below
            the crop), so the network sees detail at the scales of photos resized for it.
        odds, clean_share, strengths, single_share: see :func:`restraint_mix`.
        decoy_share: share of crops that get a set of decoys painted in before damage (content
            that looks like damage and must be kept; see :mod:`repair.decoys`). 0 draws exactly
            what earlier versions drew.
    """

    def __init__(self, photos: Sequence[Path | torch.Tensor], seed: int = 0,
                 scale: tuple[float, float] = (0.4, 1.0), odds: dict[str, float] | None = None,
                 clean_share: float = CLEAN_SHARE, strengths: tuple[float, float] = STRENGTHS,
                 single_share: float = 0.0, decoy_share: float = 0.0):
        from repair.images import load_gray

        if len(photos) == 0:
            raise ValueError("no photos given")
        if not 0 <= decoy_share <= 1:
            raise ValueError(f"decoy_share must be a probability in [0, 1], got {decoy_share}")
        self.photos = [p if isinstance(p, torch.Tensor) else load_gray(p) for p in photos]
        self.seed, self.scale = seed, scale
        self.odds, self.clean_share, self.strengths = odds, clean_share, strengths
        self.single_share, self.decoy_share = single_share, decoy_share

    def sample(self, rng: np.random.Generator, size: int, damage_seed: list[int]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One ``(1, S, S)`` triple: a random photo, crop, flip, turn and damage."""
        photo = self.photos[int(rng.integers(len(self.photos)))]
        photo = random_rescale(photo, size, self.scale, rng)
        x_clean = _augment(fit_size(photo, size, rng), rng)
        if self.decoy_share and rng.random() < self.decoy_share:
            x_clean = paint_decoys(x_clean, rng)
        mix = restraint_mix(rng, self.odds, self.clean_share, self.strengths, self.single_share)
        x_damaged, mask = damage(x_clean, seed=[damage_seed], **mix)
        return x_clean, x_damaged, mask

    def batch(self, step: int, batch_size: int, size: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batch number ``step`` (the same for the same seed and step, on any machine)."""
        rng = np.random.default_rng([self.seed, step])
        triples = [self.sample(rng, size, [self.seed, step, i]) for i in range(batch_size)]
        return tuple(torch.stack(t) for t in zip(*triples))


def fixed_pairs(photos: Sequence[Path | torch.Tensor], size: int = 256, seed: int = 0,
                mix: dict[str, float] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed validation pairs: centre crops, each damaged by its own seeded draw.

    Args:
        photos: image files or ``(1, H, W)`` tensors.
        size: side of the centre crops.
        seed: photo ``i`` uses the generator ``[seed, i]``.
        mix: one set of strengths for every photo (damages it does not name are off);
            default: :func:`restraint_mix` per photo.
    """
    from repair.images import load_gray

    clean, damaged, masks = [], [], []
    for i, item in enumerate(photos):
        x = item if isinstance(item, torch.Tensor) else load_gray(item)
        x_clean = fit_size(x, size)
        rng = np.random.default_rng([seed, i])
        strengths = restraint_mix(rng) if mix is None else {**OFF, **mix}
        x_damaged, mask = damage(x_clean, seed=[[seed, i, 1]], **strengths)
        clean.append(x_clean)
        damaged.append(x_damaged)
        masks.append(mask)
    return torch.stack(clean), torch.stack(damaged), torch.stack(masks)


def training_photos(folder: str | os.PathLike | None = None, val_fraction: float = 0.1,
                    seed: int = 0, min_side: int = 0) -> tuple[list[Path], list[Path]]:
    """``(train, validation)`` photo files of a folder (default ``../shared/data/train``), split
    the way :func:`repair.data.make_datasets` splits them, so validation never sees ``eval/``.

    ``min_side`` keeps only photos whose shorter side has at least that many pixels, after the
    split (which therefore never moves): a photo enlarged to fill a crop is soft, and a soft
    "clean" target teaches a restorer that blur needs no undoing."""
    from repair.config import data_root
    from repair.data import check_images, split_files
    from repair.images import find_images

    folder = Path(folder) if folder is not None else data_root() / "train"
    files, _ = check_images(find_images(folder))
    if not files:
        raise FileNotFoundError(f"{folder}: no readable photos to train on")
    train, val = split_files(files, val_fraction, seed)
    if min_side:
        train, val = large_enough(train, min_side), large_enough(val, min_side)
        if not train:
            raise FileNotFoundError(f"{folder}: no photo has a shorter side of {min_side} px or "
                                    "more: lower --min-side (0 keeps every photo)")
    return train, val


def large_enough(photos: Sequence[Path | torch.Tensor], min_side: int) -> list:
    """The photos (files or ``(1, H, W)`` tensors) whose shorter side is at least ``min_side``
    pixels; files are measured from their headers, without decoding the pixels."""
    from PIL import Image

    def side(photo: Path | torch.Tensor) -> int:
        if isinstance(photo, torch.Tensor):
            return min(photo.shape[-2:])
        with Image.open(photo) as im:
            return min(im.size)

    return [p for p in photos if side(p) >= min_side]
