"""Damage layers as NumPy maps: where a stain, crack or scratch covers a photo, and with what tone.

Every ``*_layer(height, width, strength, rng)`` returns ``(alpha, tone)``, two float32 ``(H, W)``
arrays: ``alpha`` in ``[0, 1]`` is the opacity (exactly 0 where the photo is untouched, so it
doubles as the damage mask) and ``tone`` in ``[-1, 1]`` the value painted there.
:func:`repair.damage.composite` paints a layer over a photo; the functions of :mod:`repair.damage`
(``splotches``, ``cracks``, ``tarnish`` ...) do that per image of a batch.

The paper's two (:func:`splotch_layer`, :func:`crack_layer`) come first, then the daguerreotype
plate's (tarnish, haze, wipe scratches, dust). Sizes scale with the image's side.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import make_blobs

__all__ = ["splotch_layer", "crack_layer", "tarnish_layer", "haze_layer", "scratch_layer",
           "dust_layer", "MAX_STAINS", "MAX_CRACKS", "ALPHA_FLOOR"]

MAX_STAINS = 8  # splotches at strength 1
MAX_CRACKS = 5  # crack systems at strength 1
ALPHA_FLOOR = 0.02  # coverage below this is set to exactly 0, so the mask is exact


# ---------------------------------------------------------------- the paper's splotches and cracks


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
