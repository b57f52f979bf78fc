"""Decoys: photo content that looks like damage but is not, painted into clean training photos.

A restorer trained only on real photos plus synthetic damage learns "a thin extreme line is a
crack, a small dark patch is a stain": on a clean photo it then erases a tripod's legs, the mortar
of a brick wall or the pupils of an eye. Decoys are painted into the *clean* photo before any
damage is applied, so they are in the input and in the target alike, and the damage mask stays
false on them: the network is taught to keep them. Each kind differs from the damage it resembles
in a way a small network can see:

* ``lines``: straight strokes 2-5 px wide of any tone (cracks are 1-2 px random walks that
  turn at every step, in a bright or dark extreme);
* ``grid``: a periodic pattern of thin lines, brick bond or plain stripes (no damage repeats);
* ``shapes``: hard-edged filled ellipses and polygons of any tone (stains have soft edges).

:func:`paint_decoys` paints one random set into a ``(1, S, S)`` crop; the training pairs of
:class:`repair.synth.RestraintPairs` call it on a share (``decoy_share``) of their crops.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from repair.damage import composite

__all__ = ["DECOY_KINDS", "paint_decoys", "decoy_layer"]

DECOY_KINDS = ("lines", "grid", "shapes")
SHIFT = 4  # fractional bits of the anti-aliased cv2 drawing


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * 2 ** SHIFT).astype(np.int32)


def _lines(canvas: np.ndarray, rng: np.random.Generator) -> None:
    size = min(canvas.shape)
    for _ in range(int(rng.integers(1, 5))):
        center = rng.uniform(0, size, 2)
        angle, length = rng.uniform(0, np.pi), size * rng.uniform(0.2, 1.2)
        step = 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(canvas, tuple(_fixed(center - step)), tuple(_fixed(center + step)), 255,
                 thickness=int(rng.integers(2, 6)), lineType=cv2.LINE_AA, shift=SHIFT)


def _grid(canvas: np.ndarray, rng: np.random.Generator) -> None:
    size = min(canvas.shape)
    period, width = rng.uniform(8, 32), int(rng.integers(2, 5))
    reach = int(math.ceil(1.5 * size / period)) + 1
    angle = rng.uniform(0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    middle = np.full(2, size / 2) + rng.uniform(-period, period, 2)
    for k in range(-reach, reach + 1):  # the long lines
        base = middle + k * period * across
        cv2.line(canvas, tuple(_fixed(base - 1.5 * size * along)),
                 tuple(_fixed(base + 1.5 * size * along)), 255, width, cv2.LINE_AA, SHIFT)
    if rng.random() < 0.6:  # brick bond: short joints, staggered row by row
        brick = period * rng.uniform(1.5, 3.5)
        for k in range(-reach, reach):
            stagger = brick / 2 * (k % 2)
            for j in range(-int(1.5 * size / brick) - 1, int(1.5 * size / brick) + 2):
                foot = middle + k * period * across + (j * brick + stagger) * along
                cv2.line(canvas, tuple(_fixed(foot)), tuple(_fixed(foot + period * across)), 255,
                         width, cv2.LINE_AA, SHIFT)


def _shapes(canvas: np.ndarray, rng: np.random.Generator) -> None:
    size = min(canvas.shape)
    for _ in range(int(rng.integers(1, 7))):
        center = rng.uniform(0, size, 2)
        radius = size * rng.uniform(0.015, 0.12)
        if rng.random() < 0.5:
            axes = (radius, radius * rng.uniform(0.3, 1.0))
            cv2.ellipse(canvas, tuple(_fixed(center)), tuple(int(a * 2 ** SHIFT) for a in axes),
                        rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
        else:
            corners = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
            points = center + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
            cv2.fillPoly(canvas, [_fixed(points)], 255, cv2.LINE_AA, SHIFT)


_PAINTERS = {"lines": _lines, "grid": _grid, "shapes": _shapes}


def decoy_layer(height: int, width: int, rng: np.random.Generator, kind: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """One decoy set as a layer of :mod:`repair.layers`: ``(alpha, tone)``, both float32
    ``(H, W)``: its opacity in ``[0, 1]`` and the one tone it paints.

    Args:
        kind: one of :data:`DECOY_KINDS`, or ``None`` for a random one.
    """
    if kind is None:
        kind = DECOY_KINDS[int(rng.integers(len(DECOY_KINDS)))]
    if kind not in _PAINTERS:
        raise ValueError(f"unknown decoy kind {kind!r}; choose from {', '.join(DECOY_KINDS)}")
    canvas = np.zeros((height, width), np.uint8)
    _PAINTERS[kind](canvas, rng)
    alpha = canvas.astype(np.float32) / 255.0 * rng.uniform(0.5, 1.0)
    return alpha, np.full((height, width), rng.uniform(-1.0, 1.0), np.float32)


def paint_decoys(x: torch.Tensor, rng: np.random.Generator, kind: str | None = None
                 ) -> torch.Tensor:
    """Paint one random decoy set into a ``(1, H, W)`` photo in ``[-1, 1]``; returns a new one.

    The decoy becomes part of the photo: use the result as the *clean* target and damage it.
    """
    if x.ndim != 3 or x.shape[0] != 1:
        raise ValueError(f"x must be one grayscale photo (1, H, W), got {tuple(x.shape)}")
    return composite(x[0], *decoy_layer(*x.shape[-2:], rng, kind))[None]
