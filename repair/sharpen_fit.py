"""Fit the restorer's sharpening branch in closed form (ridge regression on training pairs).

Trained by gradient descent with the rest of the network (or alone, ``repair train
--train-only sharpen``), the sharpening branch of :class:`repair.nafnet.MaskedNAFRestorer` hardly
moves: averaged over the training mix, the restored photo is already as sharp as it should be,
and the photos that want more sharpening and those that want less cancel out. Each photo's own
best amount is known exactly, though: for the unsharp mask ``d = y - G_1(y)`` of the restored
photo ``y`` and the clean target ``t``, the amount that minimises the squared error is
``<d, t - y> / <d, d>``. So the branch's linear head is fitted to those amounts by ridge
regression on the features the branch sees (:func:`fit_sharpen_head`), on training pairs only;
the network's other weights are not touched. Its dead zone (``sharpen_deadzone``) then leaves
alone the photos it is unsure about.
"""

from __future__ import annotations

import torch

from repair.nafnet import MaskedNAFRestorer, _gaussian_blur

__all__ = ["best_amounts", "branch_features", "fit_sharpen_head", "with_sharpen_head"]


def with_sharpen_head(net: MaskedNAFRestorer, deadzone: float) -> MaskedNAFRestorer:
    """A copy of ``net`` with a sharpening branch (kept if it has one, else at zero)."""
    hparams = {**net.hparams, "sharpen_branch": True, "sharpen_deadzone": deadzone}
    grown = MaskedNAFRestorer(**hparams)
    missing, unexpected = grown.load_state_dict(net.state_dict(), strict=False)
    if unexpected or any(not k.startswith("sharpen.") for k in missing):
        raise ValueError(f"weights do not fit: {missing + unexpected}")
    return grown.eval()


def branch_features(net: MaskedNAFRestorer, x_damaged: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(restored photo without sharpening, features the sharpening branch sees)``."""
    seen = {}
    hook = net.sharpen.register_forward_hook(lambda m, i, o: seen.setdefault("f", i[0]))
    saved = [p.detach().clone() for p in net.sharpen.parameters()]
    try:
        for p in net.sharpen.parameters():
            p.data.zero_()                 # no sharpening: the branch's input, unchanged output
        with torch.no_grad():
            restored = net(x_damaged)
    finally:
        hook.remove()
        for p, value in zip(net.sharpen.parameters(), saved):
            p.data.copy_(value)
    return restored, seen["f"]


def best_amounts(restored: torch.Tensor, x_clean: torch.Tensor, sigma: float = 1.0
                 ) -> torch.Tensor:
    """Per photo, the unsharp-mask amount (sigma px) that brings ``restored`` closest to
    ``x_clean`` in squared error (negative: blurring helps)."""
    detail = restored - _gaussian_blur(restored, sigma)
    return (detail * (x_clean - restored)).sum((1, 2, 3)) / \
        (detail * detail).sum((1, 2, 3)).clamp_min(1e-8)


def fit_sharpen_head(net: MaskedNAFRestorer, batches, ridge: float = 100.0,
                     clip: tuple[float, float] = (-1.0, 4.0), progress=None
                     ) -> dict[str, float]:
    """Set the sigma-1 row of ``net.sharpen`` to the ridge fit of each pair's best amount.

    Args:
        net: a restorer with a sharpening branch (:func:`with_sharpen_head`).
        batches: iterable of ``(x_clean, x_damaged)`` training batches.
        ridge: penalty on the standardised features' weights (the bias is free).
        clip: best amounts are clipped to this range first (a few photos want huge ones).
        progress: optional callable given each batch's size.

    Returns:
        ``pairs``, ``r2`` (share of the best amounts' variance the fit explains, on the pairs
        it was fitted to) and ``mean_best`` (mean best amount).
    """
    feats, best = [], []
    for x_clean, x_damaged in batches:
        restored, f = branch_features(net, x_damaged)
        feats.append(f.double())
        best.append(best_amounts(restored, x_clean).double().clamp(*clip))
        if progress:
            progress(len(x_clean))
    F, A = torch.cat(feats), torch.cat(best)
    mean, std = F.mean(0), F.std(0).clamp_min(1e-6)
    Z = torch.cat([(F - mean) / std, torch.ones(len(A), 1, dtype=F.dtype)], 1)
    penalty = ridge * torch.eye(Z.shape[1], dtype=F.dtype)
    penalty[-1, -1] = 0
    w = torch.linalg.solve(Z.T @ Z + penalty, Z.T @ A)
    fitted = Z @ w
    scale = net.SHARPEN_SCALE
    with torch.no_grad():
        net.sharpen.weight.zero_()
        net.sharpen.bias.zero_()
        net.sharpen.weight[0] = (w[:-1] / std / scale).float()
        net.sharpen.bias[0] = float((w[-1] - (w[:-1] * mean / std).sum()) / scale)
    r2 = 1 - float(((fitted - A) ** 2).mean() / A.var().clamp_min(1e-12))
    return {"pairs": len(A), "r2": round(r2, 4), "mean_best": round(float(A.mean()), 4)}
