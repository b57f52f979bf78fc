"""Restore an image of any size in bounded memory: overlapping tiles, blended without seams.

A generator trained on 64x64 or 256x256 crops is fully convolutional, so it can run on a whole
scan; but a 4000x3000 plate does not fit in memory at once, and many generators need sizes that are
multiples of ``2**k``. :func:`restore_tiled` cuts the image into overlapping tiles of one fixed
size, runs them through the network a few at a time, and adds each result into an output buffer
with a smooth weight that is zero on a thin band along every inner tile edge (where the network
only saw padding) and rises with a raised cosine across the rest of the overlap. Dividing by the
summed weights gives the blended image; memory for the network is bounded by ``batch_size`` tiles.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["restore_tiled", "tile_starts", "blend_window"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    Tiles step by ``tile - overlap``; the last one is aligned with the end, so it may overlap its
    neighbour by more. ``length <= tile`` gives the single start ``[0]``.
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def blend_window(size: int, ramp_start: bool, ramp_end: bool, overlap: int,
                 margin: int) -> torch.Tensor:
    """1-D blending weights for one tile side: 0 on ``margin`` px, raised cosine, then 1.

    Args:
        size: tile length in pixels.
        ramp_start, ramp_end: whether that end has a neighbouring tile (image borders keep 1).
        overlap: nominal overlap between neighbouring tiles.
        margin: pixels at an inner edge that get weight 0 (there the network saw only padding).

    Returns:
        float32 tensor of shape ``(size,)`` with values in [0, 1]. For a pixel at distance ``d``
        from one tile's inner edge and ``overlap - 1 - d`` from its neighbour's, the two weights
        add up to exactly 1.
    """
    w = torch.ones(size, dtype=torch.float64)
    width = overlap - 2 * margin  # length of the raised-cosine part
    if width > 0:
        d = torch.arange(overlap, dtype=torch.float64)
        ramp = 0.5 - 0.5 * torch.cos(math.pi * ((d - margin + 0.5) / width).clamp(0, 1))
        ramp[:margin] = 0.0
        ramp = ramp[: min(overlap, size)]
        if ramp_start:
            w[: ramp.numel()] = torch.minimum(w[: ramp.numel()], ramp)
        if ramp_end:
            w[size - ramp.numel():] = torch.minimum(w[size - ramp.numel():], ramp.flip(0))
    return w.float()


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pad_reflect(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Mirror-pad the bottom/right of ``x`` (N, C, H, W); repeats the mirror for tiny images."""
    while pad_h > 0 or pad_w > 0:
        h, w = x.shape[-2:]
        step_h = min(pad_h, h - 1)
        step_w = min(pad_w, w - 1)
        if step_h == 0 and step_w == 0:  # a 1-pixel side: nothing to mirror, repeat the edge
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            break
        x = nn.functional.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h -= step_h
        pad_w -= step_w
    return x


def restore_tiled(
    net_G: nn.Module,
    x: torch.Tensor,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    multiple: int = 1,
    margin: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Run a same-size image-to-image network over ``x`` tile by tile and blend the tiles.

    Call ``net_G.eval()`` first (batch-norm statistics would otherwise differ between tiles).

    Args:
        net_G: network mapping (N, C, h, w) to (N, C_out, h, w) for any h, w divisible by
            ``multiple``; it runs under ``torch.no_grad()`` on ``device``.
        x: image(s), shape (B, C, H, W) or (C, H, W), typically (1, 1, H, W) in [-1, 1]; any size.
        tile: tile side in pixels; must be a multiple of ``multiple``.
        overlap: pixels shared by neighbouring tiles (0 <= overlap < tile).
        batch_size: tiles per forward pass; bounds the network's memory.
        multiple: the size divisibility the network needs (e.g. ``2**4`` for four down-samplings).
            Sides smaller than ``tile`` are mirror-padded up to a multiple of it and cropped after.
        margin: pixels at each inner tile edge given weight 0; default ``overlap // 4``. Results
            match a whole-image run exactly when the network's receptive-field radius <= margin.
        progress: show a progress bar over the batches.
        device: where the network runs; the output is accumulated on ``x``'s device.

    Returns:
        float32 tensor with the shape of ``x`` (channel count of ``net_G``'s output).
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"x must have shape (B, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    if multiple < 1 or tile < 1 or tile % multiple:
        raise ValueError(f"tile={tile} must be a positive multiple of multiple={multiple}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap={overlap} must satisfy 0 <= overlap < tile={tile}")
    margin = overlap // 4 if margin is None else margin
    if margin < 0 or (overlap > 0 and 2 * margin >= overlap) or (overlap == 0 and margin):
        raise ValueError(f"margin={margin} must satisfy 0 <= 2 * margin < overlap={overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")

    squeeze = x.dim() == 3
    x4 = x.unsqueeze(0) if squeeze else x  # (B, C, H, W)
    restored = [_restore_one(net_G, x4[i : i + 1], tile, overlap, batch_size, multiple, margin,
                             progress, device) for i in range(x4.shape[0])]
    out = torch.cat(restored, dim=0)  # (B, C_out, H, W)
    return out[0] if squeeze else out


def _restore_one(net_G, x, tile, overlap, batch_size, multiple, margin, progress, device):
    """:func:`restore_tiled` for one image ``x`` of shape (1, C, H, W)."""
    from tqdm.auto import tqdm

    H, W = x.shape[-2:]
    th = tile if H >= tile else _round_up(H, multiple)  # tile height actually used
    tw = tile if W >= tile else _round_up(W, multiple)
    x_pad = _pad_reflect(x.float(), th - H if H < th else 0, tw - W if W < tw else 0)
    Hp, Wp = x_pad.shape[-2:]  # (1, C, Hp, Wp), Hp = max(H, th)

    ys, xs = tile_starts(Hp, th, overlap), tile_starts(Wp, tw, overlap)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]
    win_y = {y0: blend_window(th, y0 > 0, y0 + th < Hp, overlap, margin) for y0 in ys}
    win_x = {x0: blend_window(tw, x0 > 0, x0 + tw < Wp, overlap, margin) for x0 in xs}

    out = None
    weight = torch.zeros(1, 1, Hp, Wp, device=x.device)  # (1, 1, Hp, Wp)
    batches = [boxes[i : i + batch_size] for i in range(0, len(boxes), batch_size)]
    for batch in tqdm(batches, desc="tiles", disable=not progress, leave=False):
        crops = torch.cat([x_pad[..., y0 : y0 + th, x0 : x0 + tw] for y0, x0 in batch])
        # crops: (n, C, th, tw), n <= batch_size
        with torch.no_grad():
            y = net_G(crops.to(device)).float().to(x.device)  # (n, C_out, th, tw)
        if y.shape[-2:] != (th, tw) or y.shape[0] != len(batch):
            raise ValueError(f"net_G turned tiles of shape {tuple(crops.shape)} into "
                             f"{tuple(y.shape)}; tiling needs a network whose output has the "
                             "input's size")
        if out is None:
            out = torch.zeros(1, y.shape[1], Hp, Wp, device=x.device)  # (1, C_out, Hp, Wp)
        for k, (y0, x0) in enumerate(batch):
            w = (win_y[y0][:, None] * win_x[x0][None, :]).to(x.device)  # (th, tw)
            out[..., y0 : y0 + th, x0 : x0 + tw] += y[k] * w
            weight[..., y0 : y0 + th, x0 : x0 + tw] += w
    return (out / weight)[..., :H, :W]  # (1, C_out, H, W)
