"""The paper's four kinds of damage, as pure functions, and their composition.

Every single damage is a function ``f(x, strength, rng)`` of an image tensor ``x`` (``(1, H, W)`` or
``(B, 1, H, W)``, values in ``[-1, 1]``), a strength in ``[0, 1]`` (0 leaves the image untouched) and
a NumPy random generator. :func:`damage` composes them in the paper's order (blur, splotches,
cracks, contrast) from one seed and also returns the mask of pixels that splotches and cracks
covered. Stain sizes and crack lengths scale with the image's side; the blur's sigma (at most
:data:`MAX_BLUR_SIGMA` px) and crack widths (1-2 px) are in pixels, chosen for 256x256 photos, the
paper's size, so on small images they weigh more. Where stains, cracks and the daguerreotype's
plate damage fall is drawn by :mod:`repair.layers` as NumPy maps; this module paints them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torchvision.transforms.v2 import functional as TF

from repair.layers import (crack_layer, dust_layer, haze_layer, scratch_layer, splotch_layer,
                           tarnish_layer)

__all__ = [
    "DAMAGES", "PAPER_MIX", "PLATE_DAMAGES", "DAGUERREOTYPE_MIX", "MAX_BLUR_SIGMA",
    "gaussian_blur", "splotches", "cracks", "lower_contrast", "tarnish", "haze", "scratches",
    "dust", "polishing_lines", "composite", "damage", "MIXES", "MILD_MIX", "random_mix",
    "check_strength",
]

DAMAGES = ("blur", "splotches", "cracks", "contrast")
PAPER_MIX = {"blur": 0.4, "splotches": 0.5, "cracks": 0.5, "contrast": 0.5}
"""The mix used for training and evaluation. The paper names the four damages but not their
strengths; these are ours, chosen to look like its Fig. 1."""

PLATE_DAMAGES = ("tarnish", "haze", "scratches", "dust")
DAGUERREOTYPE_MIX = {**PAPER_MIX, "tarnish": 0.5, "haze": 0.4, "scratches": 0.4, "dust": 0.4}
"""The paper's mix plus what real daguerreotypes show (chapter 06): tarnish creeping in from the
edges, haze and spots from decaying cover glass, wipe scratches and dust."""

MIXES = {"paper": PAPER_MIX, "daguerreotype": DAGUERREOTYPE_MIX}
"""The named mixes (``repair train --mix NAME``)."""

MILD_MIX = {"blur": 0.2, "splotches": 0.3, "cracks": 0.25, "contrast": 0.4}
"""A milder mix for small images (chapter 05's 64 px faces): the paper's mix hides too much of a
64x64 face for any restorer to have something left to work from."""

MAX_BLUR_SIGMA = 3.0  # Gaussian sigma in pixels at strength 1
MIN_CONTRAST = 0.25  # contrast factor left at strength 1


def check_strength(value: float | str, name: str = "") -> float:
    """``value`` as a float damage strength in [0, 1] (a number or its text, as typed).

    Raises:
        ValueError: not a number, or outside [0, 1]; the message names the damage (``name``).
    """
    label = f"{name} strength" if name else "strength"
    try:
        strength = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: {value!r} is not a number") from None
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"{label} must be between 0 and 1, got {value}")
    return strength


def _check(x: torch.Tensor, strength: float, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [-1, 1], got {type(x).__name__}"
                        f"{'' if not isinstance(x, torch.Tensor) else ' of ' + str(x.dtype)}")
    if x.dim() not in (3, 4) or x.shape[-3] != 1:
        raise ValueError(f"{name}: expected a grayscale image (1, H, W) or batch (B, 1, H, W), "
                         f"got shape {tuple(x.shape)}")
    check_strength(strength, name)


def _per_image(x: torch.Tensor):
    """Iterate over the (H, W) planes of a (1, H, W) or (B, 1, H, W) tensor."""
    return [x[0]] if x.dim() == 3 else [img[0] for img in x]


def gaussian_blur(x: torch.Tensor, strength: float, rng: np.random.Generator | None = None
                  ) -> torch.Tensor:
    """Gaussian blur with torchvision's ``gaussian_blur``, sigma ``3 * strength`` pixels.

    Args:
        x: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        strength: 0 (identity) to 1 (sigma 3 px).
        rng: unused (blur is deterministic); accepted so every damage has one signature.
    """
    _check(x, strength, "blur")
    sigma = MAX_BLUR_SIGMA * float(strength)
    if sigma <= 0:
        return x.clone()
    kernel = 2 * math.ceil(3 * sigma) + 1
    side = min(x.shape[-2:])
    kernel = min(kernel, side if side % 2 else side - 1)
    return TF.gaussian_blur(x, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def composite(x: torch.Tensor, alpha: np.ndarray, tone: np.ndarray) -> torch.Tensor:
    """Paint ``tone`` over the ``(H, W)`` plane ``x`` with opacity ``alpha``."""
    a = torch.from_numpy(alpha).to(x)
    return x * (1 - a) + torch.from_numpy(tone).to(x) * a


def _layered(x: torch.Tensor, strength: float, rng, layer, name: str) -> torch.Tensor:
    _check(x, strength, name)
    if strength <= 0:
        return x.clone()
    planes = [composite(p, *layer(*p.shape, strength, rng)) for p in _per_image(x)]
    return torch.stack(planes).unsqueeze(-3).reshape(x.shape)


def splotches(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Soft-edged stains of varying darkness (see :func:`splotch_layer`); up to 8 at strength 1."""
    return _layered(x, strength, rng, splotch_layer, "splotches")


def cracks(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Random branching cracks (see :func:`crack_layer`); up to 5 systems at strength 1."""
    return _layered(x, strength, rng, crack_layer, "cracks")


def lower_contrast(x: torch.Tensor, strength: float, rng: np.random.Generator | None = None
                   ) -> torch.Tensor:
    """Pull every pixel towards the image mean: contrast factor ``1 - 0.75 * strength``.

    Args:
        x: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``; each image uses its own mean.
        strength: 0 (identity) to 1 (a quarter of the contrast left).
        rng: unused; accepted so every damage has one signature.
    """
    _check(x, strength, "contrast")
    if strength <= 0:
        return x.clone()
    factor = 1.0 - (1.0 - MIN_CONTRAST) * float(strength)
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return mean + (x - mean) * factor


# ---------------------------------------------------------------- daguerreotype plate damage


def tarnish(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Tarnish halos creeping in from the edges (see :func:`tarnish_layer`)."""
    return _layered(x, strength, rng, tarnish_layer, "tarnish")


def haze(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """A patchy milky veil from decaying cover glass (see :func:`haze_layer`)."""
    return _layered(x, strength, rng, haze_layer, "haze")


def scratches(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Wipe scratches: bundles of fine curved strokes (see :func:`scratch_layer`)."""
    return _layered(x, strength, rng, scratch_layer, "scratches")


def dust(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Dust specks and fine spots (see :func:`dust_layer`)."""
    return _layered(x, strength, rng, dust_layer, "dust")


def polishing_lines(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Fine horizontal polishing lines of a daguerreotype plate.

    They are part of the plate, **not damage**: training pairs add them to the clean photo and the
    damaged one alike, so a restorer learns to keep them.
    """
    _check(x, strength, "polishing lines")
    if strength <= 0:
        return x.clone()
    planes = []
    for plane in _per_image(x):
        height, width = plane.shape
        rows = rng.standard_normal((height, 1)).astype(np.float32)
        lines = gaussian_filter(rows + 0.3 * rng.standard_normal((height, width)).astype(np.float32),
                                sigma=(0.5, width / 8), mode="wrap")
        lines /= max(float(lines.std()), 1e-8)
        planes.append(plane + 0.04 * float(strength) * torch.from_numpy(lines).to(plane))
    return torch.stack(planes).unsqueeze(-3).reshape(x.shape).clamp(-1, 1)


def random_mix(mix: dict[str, float], rng: np.random.Generator, p_off: float = 0.25,
               spread: tuple[float, float] = (0.5, 1.5)) -> dict[str, float]:
    """A random variation of a mix, for training restorers that do not assume one fixed damage.

    Each damage of ``mix`` with a positive strength is switched off with probability ``p_off``,
    else its strength is multiplied by a factor drawn uniformly from ``spread`` (capped at 1). A
    restorer trained on such pairs has seen every damage alone, mixed, weaker and stronger, and
    photos with no damage at all, so it learns to leave clean regions alone.

    Args:
        mix: strengths by damage name, e.g. :data:`PAPER_MIX`.
        rng: the random generator (seed it for reproducible pairs).
        p_off: probability that a damage is left out.
        spread: range of the factor applied to each strength that is kept.
    """
    if not 0 <= p_off <= 1:
        raise ValueError(f"p_off must be a probability in [0, 1], got {p_off}")
    low, high = spread
    if not 0 <= low <= high:
        raise ValueError(f"spread must be (low, high) with 0 <= low <= high, got {spread}")
    out = {}
    for name, strength in mix.items():
        off = strength <= 0 or rng.random() < p_off
        out[name] = 0.0 if off else float(min(1.0, strength * rng.uniform(low, high)))
    return out


def _rngs(seed: int | Sequence, n: int) -> list[np.random.Generator]:
    if isinstance(seed, (int, np.integer)):
        return [np.random.default_rng([int(seed), i]) for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} images; give one seed per image or an int")
    return [np.random.default_rng(s) for s in seeds]


def damage(x: torch.Tensor, seed: int | Sequence = 0, blur: float = PAPER_MIX["blur"],
           splotches: float = PAPER_MIX["splotches"], cracks: float = PAPER_MIX["cracks"],
           contrast: float = PAPER_MIX["contrast"], tarnish: float = 0.0, haze: float = 0.0,
           scratches: float = 0.0, dust: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Damage a photo (or a batch) the paper's way: blur, splotches, cracks, lowered contrast;
    optionally also the plate damages of daguerreotypes (chapter 06), off by default.

    Order: blur, splotches, cracks, scratches, dust, contrast, tarnish, haze.

    Args:
        x: clean image ``(1, H, W)`` or batch ``(B, 1, H, W)``, float, values in ``[-1, 1]``.
        seed: an int (image ``i`` of a batch uses the stream ``[seed, i]``), or one seed per image.
        blur, splotches, cracks, contrast: the paper's damages, strengths in ``[0, 1]``; 0 is off.
        tarnish, haze, scratches, dust: plate damages, strengths in ``[0, 1]``; 0 (default) is off.

    Returns:
        ``(x_damaged, mask)``: the damaged image(s), same shape and dtype as ``x``, clamped to
        ``[-1, 1]``; and a bool tensor of the same shape, True where splotches, cracks, scratches
        or dust painted (blur, contrast, tarnish and haze touch every pixel and are not in it).
    """
    strengths = {"blur": blur, "splotches": splotches, "cracks": cracks, "contrast": contrast,
                 "tarnish": tarnish, "haze": haze, "scratches": scratches, "dust": dust}
    for name, value in strengths.items():
        _check(x, value, name)
    batch = x if x.dim() == 4 else x.unsqueeze(0)
    rngs = _rngs(seed, batch.shape[0])
    blurred = gaussian_blur(batch, blur)
    out, masks = [], []
    for plane, rng in zip(blurred[:, 0], rngs):
        coverage = torch.zeros(plane.shape, dtype=torch.bool)
        for strength, layer in ((splotches, splotch_layer), (cracks, crack_layer),
                                (scratches, scratch_layer), (dust, dust_layer)):
            if strength > 0:
                alpha, tone = layer(*plane.shape, strength, rng)
                plane = composite(plane, alpha, tone)
                coverage |= torch.from_numpy(alpha > 0)
        plane = lower_contrast(plane[None], contrast)[0]
        for strength, layer in ((tarnish, tarnish_layer), (haze, haze_layer)):
            if strength > 0:
                plane = composite(plane, *layer(*plane.shape, strength, rng))
        out.append(plane)
        masks.append(coverage)
    damaged = torch.stack(out)[:, None].clamp(-1, 1)
    mask = torch.stack(masks)[:, None].to(x.device)
    if x.dim() == 3:
        return damaged[0], mask[0]
    return damaged, mask
