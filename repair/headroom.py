"""What is left to gain: where a mask-guided restorer's remaining error lies (chapter 04).

A restorer that finds the damage itself (:class:`repair.nafnet.MaskedNAFRestorer`) can fall short
in three places: it may not *find* the damage, it may misjudge the photo's *contrast and
brightness* (a faded photo and a naturally flat one look alike), or it may *fill and sharpen*
badly. :func:`headroom` restores the same damaged photos four ways, each removing one excuse:

* ``own mask``: as a user runs it;
* ``true mask``: the synthesis' damage mask replaces the network's guess (perfect finding);
* ``no mask``: an empty mask instead (what its finding is worth at all);
* ``best gain/offset``: the own-mask output after the global gain and offset that bring it closest
  to the clean photo (:func:`best_affine`; an oracle for contrast and brightness).

It also reports which share of the squared error lies under the true mask (the 5-10% of pixels that
splotches and cracks covered) and the rest (blur and contrast, over the whole photo).
"""

from __future__ import annotations

import torch

from repair.metrics import psnr

__all__ = ["WAYS", "best_affine", "headroom"]

WAYS = ("own mask", "true mask", "no mask", "best gain/offset")


def best_affine(y: torch.Tensor, x_clean: torch.Tensor) -> torch.Tensor:
    """``a * y + b`` per image, with the ``a`` and ``b`` of least squared error to ``x_clean``.

    Args:
        y, x_clean: ``(B, 1, H, W)`` of the same shape. A flat ``y`` gets ``a = 0`` (the clean
            photo's mean).
    """
    if y.shape != x_clean.shape or y.ndim != 4:
        raise ValueError(f"best_affine needs two (B, 1, H, W) batches of one shape, got "
                         f"{tuple(y.shape)} and {tuple(x_clean.shape)}")
    y64, x64 = y.flatten(1).double(), x_clean.flatten(1).double()
    dy = y64 - y64.mean(1, keepdim=True)
    dx = x64 - x64.mean(1, keepdim=True)
    a = (dy * dx).sum(1, keepdim=True) / dy.square().sum(1, keepdim=True).clamp_min(1e-12)
    return (x64.mean(1, keepdim=True) + a * dy).view_as(y).to(y.dtype)


def headroom(net_G: torch.nn.Module, x_clean: torch.Tensor, x_damaged: torch.Tensor,
             mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-photo PSNR (dB) of the :data:`WAYS` to restore, and ``"error in mask"``: the share
    of each photo's squared error (own mask) that lies under the true mask.

    Args:
        net_G: a restorer with a damage branch (``net_G(x, mask=...)``), in eval mode.
        x_clean, x_damaged: ``(B, 1, H, W)`` in ``[-1, 1]``.
        mask: the true damage mask of ``x_damaged`` (bool, same shape), as
            :func:`repair.damage.damage` returns it.

    Returns:
        ``{way: (B,) tensor}`` for every way of :data:`WAYS`, and ``"error in mask"``.
    """
    if not getattr(net_G, "hparams", {}).get("mask_width"):
        raise ValueError(f"{type(net_G).__name__} has no damage branch to hand a mask to: "
                         "headroom needs a mask-guided restorer (arch nafnet, mask_width > 0)")
    if not x_clean.shape == x_damaged.shape == mask.shape:
        raise ValueError(f"x_clean, x_damaged and mask must share one shape, got "
                         f"{tuple(x_clean.shape)}, {tuple(x_damaged.shape)}, {tuple(mask.shape)}")
    with torch.no_grad():
        own = net_G(x_damaged)
        true = net_G(x_damaged, mask=mask)
        empty = net_G(x_damaged, mask=torch.zeros_like(mask))
    error = (own - x_clean).double().square().flatten(1)
    inside = (error * mask.flatten(1)).sum(1) / error.sum(1).clamp_min(1e-12)
    scores = [psnr(own, x_clean), psnr(true, x_clean), psnr(empty, x_clean),
              psnr(best_affine(own, x_clean), x_clean)]
    return {**dict(zip(WAYS, scores)), "error in mask": inside}
