"""The paper's four kinds of damage, as pure functions, and their composition.

Every single damage is a function ``f(x, strength, rng)`` of an image tensor ``x`` (``(1, H, W)`` or
``(B, 1, H, W)``, values in ``[-1, 1]``), a strength in ``[0, 1]`` (0 leaves the image untouched) and
a NumPy random generator. :func:`damage` composes them in the paper's order (blur, splotches,
cracks, contrast) from one seed and also returns the mask of pixels that splotches and cracks
covered. Stain sizes and crack lengths scale with the image's side; the blur's sigma (at most
:data:`MAX_BLUR_SIGMA` px) and crack widths (1-2 px) are in pixels, chosen for 256x256 photos, the
paper's size, so on small images they weigh more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from sklearn.datasets import make_blobs
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "DAMAGES", "PAPER_MIX", "PLATE_DAMAGES", "DAGUERREOTYPE_MIX", "MAX_BLUR_SIGMA",
    "gaussian_blur", "splotches", "cracks", "lower_contrast", "splotch_layer", "crack_layer",
    "tarnish", "haze", "scratches", "dust", "tarnish_layer", "haze_layer", "scratch_layer",
    "dust_layer", "polishing_lines", "composite", "damage", "MIXES", "MILD_MIX", "random_mix",
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
MAX_STAINS = 8  # splotches at strength 1
MAX_CRACKS = 5  # crack systems at strength 1
MIN_CONTRAST = 0.25  # contrast factor left at strength 1
ALPHA_FLOOR = 0.02  # coverage below this is set to exactly 0, so the mask is exact


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


def splotch_layer(height: int, width: int, strength: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Soft-edged stains drawn from ``make_blobs`` point clouds: ``(alpha, tone)``, both ``(H, W)``.

    Each stain is a cluster of a few blobs whose point density is smoothed and thresholded with a
    soft edge; ``alpha`` is its opacity in ``[0, 1]`` (exactly 0 outside the stains) and ``tone``
    the value it paints, mostly dark, sometimes bleached.
    """
    alpha = np.zeros((height, width), np.float32)
    tone = np.zeros((height, width), np.float32)
    n_stains = math.ceil(MAX_STAINS * strength)
    if n_stains == 0:
        return alpha, tone
    size = min(height, width)
    radii = size * rng.uniform(0.02, 0.06, n_stains) * (0.6 + strength)
    n_blobs = rng.integers(1, 5, n_stains)
    owner = np.repeat(np.arange(n_stains), n_blobs)  # stain of each blob
    stain_centers = rng.uniform((0, 0), (height, width), size=(n_stains, 2))
    blob_centers = stain_centers[owner] + rng.normal(0, 1, (len(owner), 2)) * radii[owner, None]
    # One make_blobs call for every blob of every stain (its input checks dominate the cost).
    points, label = make_blobs(n_samples=[300] * len(owner), centers=blob_centers,
                               cluster_std=radii[owner] * 0.6, shuffle=False,
                               random_state=int(rng.integers(2**31 - 1)))
    rows, cols = np.round(points).astype(int).T
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    for stain in range(n_stains):
        keep = inside & (owner[label] == stain)
        high, opacity, dark = rng.uniform(0.25, 0.5), rng.uniform(0.55, 0.95), rng.random() < 0.8
        value = rng.uniform(-1.0, -0.3) if dark else rng.uniform(0.5, 1.0)
        if not keep.any():
            continue
        # Smooth the point density inside the stain's own window (zero outside it).
        sigma = max(radii[stain] * 0.35, 1.0)
        pad = int(math.ceil(4 * sigma))
        top, left = max(rows[keep].min() - pad, 0), max(cols[keep].min() - pad, 0)
        bottom = min(rows[keep].max() + pad + 1, height)
        right = min(cols[keep].max() + pad + 1, width)
        density = np.zeros((bottom - top, right - left), np.float32)
        np.add.at(density, (rows[keep] - top, cols[keep] - left), 1.0)
        density = gaussian_filter(density, sigma=sigma, mode="constant")
        edge = np.clip((density / density.max() - 0.08) / (high - 0.08), 0, 1)
        stain_alpha = edge * edge * (3 - 2 * edge) * opacity  # smoothstep: a soft edge
        window = (slice(top, bottom), slice(left, right))
        tone[window] = np.where(stain_alpha > alpha[window], value, tone[window])
        alpha[window] = np.maximum(alpha[window], stain_alpha)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha, tone


def crack_layer(height: int, width: int, strength: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Random branching cracks: ``(alpha, tone)``, both ``(H, W)``.

    Each crack is a random walk with a slowly turning heading that sometimes branches; it is drawn
    anti-aliased, 1-2 px wide, bright (the paper base showing through) or, less often, dark.
    """
    canvas = np.zeros((height, width), np.uint8)
    n_cracks = math.ceil(MAX_CRACKS * strength)
    size = min(height, width)
    bright = rng.random() < 0.75
    for _ in range(n_cracks):
        start = rng.uniform((0, 0), (width, height))
        stack = [(start, rng.uniform(0, 2 * np.pi), size * rng.uniform(0.3, 0.9) * (0.5 + strength))]
        while stack:
            point, heading, length = stack.pop()
            path = [point.copy()]
            for _ in range(int(length / 3)):
                heading += rng.normal(0, 0.35)
                point = point + 3 * np.array([np.cos(heading), np.sin(heading)])
                path.append(point.copy())
                if rng.random() < 0.04 and length > size * 0.1:
                    stack.append((point.copy(), heading + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2),
                                  length * rng.uniform(0.2, 0.5)))
            polyline = np.round(np.array(path) * 16).astype(np.int32)  # 4 fractional bits
            cv2.polylines(canvas, [polyline], False, 255, thickness=int(rng.integers(1, 3)),
                          lineType=cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    alpha[alpha < ALPHA_FLOOR] = 0.0
    value = rng.uniform(0.7, 1.0) if bright else rng.uniform(-1.0, -0.7)
    return alpha, np.full((height, width), value, np.float32)


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


def _smooth_noise(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field with unit standard deviation and features of about ``scale`` px."""
    field = gaussian_filter(rng.standard_normal((height, width)).astype(np.float32),
                            sigma=max(scale, 1.0), mode="wrap")
    return field / max(float(field.std()), 1e-8)


def tarnish_layer(height: int, width: int, strength: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Tarnish creeping in from the plate's edges along the mat opening: ``(alpha, tone)``.

    The distance to an oval or rounded-rectangle mat edge, roughened by smooth noise, sets how
    far the tarnish has crept; its tone bands between dark and grey, like the iridescent rings of
    silver sulphide seen in gray.
    """
    if strength <= 0:
        return np.zeros((height, width), np.float32), np.zeros((height, width), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    v, u = (yy + 0.5) / height * 2 - 1, (xx + 0.5) / width * 2 - 1  # -1..1 across the plate
    power = rng.choice([2.0, 4.0, 8.0])  # oval, cushion or rounded-rectangle mat opening
    inside = 1 - (np.abs(u) ** power + np.abs(v) ** power) ** (1 / power)  # 0 at the mat edge
    reach = 0.08 + 0.35 * strength  # how far in the tarnish has crept, as a fraction
    front = inside + 0.04 * _smooth_noise(height, width, min(height, width) / 12, rng)
    edge = np.clip(1 - front / reach, 0, 1)
    alpha = (edge ** 1.5 * rng.uniform(0.6, 0.95)).astype(np.float32)
    bands = 0.5 + 0.5 * np.sin(front / reach * rng.uniform(2, 4) * np.pi)
    tone = (-0.9 + 0.3 * bands).astype(np.float32)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha, tone


def haze_layer(height: int, width: int, strength: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """A milky veil from decaying cover glass, thicker in patches: ``(alpha, tone)``."""
    if strength <= 0:
        return np.zeros((height, width), np.float32), np.zeros((height, width), np.float32)
    field = _smooth_noise(height, width, min(height, width) / 6, rng)
    alpha = np.clip(0.35 * strength * (1 + 0.6 * field), 0, 0.6).astype(np.float32)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha, np.full((height, width), rng.uniform(0.3, 0.7), np.float32)


def scratch_layer(height: int, width: int, strength: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Wipe marks: bundles of fine, nearly parallel arcs left by cleaning: ``(alpha, tone)``."""
    canvas = np.zeros((height, width), np.uint8)
    size = min(height, width)
    for _ in range(math.ceil(6 * strength)):
        center = rng.uniform((0, 0), (width, height))
        radius = size * rng.uniform(0.5, 2.0)  # large radius: gently curved strokes
        start, sweep = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6) * size / radius
        for _ in range(int(rng.integers(4, 12))):
            r = radius + rng.normal(0, size * 0.03)
            angles = np.linspace(start, start + sweep * rng.uniform(0.6, 1.0), 48)
            points = center + r * np.stack([np.cos(angles), np.sin(angles)], 1)
            points += rng.normal(0, size * 0.02, size=2)
            cv2.polylines(canvas, [np.round(points * 16).astype(np.int32)], False,
                          int(rng.integers(150, 256)), thickness=1, lineType=cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha, np.full((height, width), rng.uniform(0.6, 1.0), np.float32)


def dust_layer(height: int, width: int, strength: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """Dust and fine spots of 1-3 px, dark or bright: ``(alpha, tone)``."""
    alpha = np.zeros((height, width), np.float32)
    tone = np.zeros((height, width), np.float32)
    count = int(strength * height * width / 400)
    if count == 0:
        return alpha, tone
    rows = rng.integers(0, height, count)
    cols = rng.integers(0, width, count)
    radii = rng.choice([0.6, 1.0, 1.5], count, p=[0.6, 0.3, 0.1])
    values = np.where(rng.random(count) < 0.5, rng.uniform(-1, -0.6, count), rng.uniform(0.6, 1, count))
    for r, c, radius, value in zip(rows, cols, radii, values):
        spot = np.zeros((height, width), np.uint8)
        cv2.circle(spot, (int(c) * 16, int(r) * 16), int(radius * 16), 255, -1, cv2.LINE_AA, 4)
        a = spot.astype(np.float32) / 255.0
        tone = np.where(a > alpha, value, tone)
        alpha = np.maximum(alpha, a)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha, tone.astype(np.float32)


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
