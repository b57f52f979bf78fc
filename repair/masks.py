"""Finding the damage: mask finders and how well they agree with the true mask.

Most of what a restorer can gain lies in *finding* the damage (chapter 04: classical inpainting
told the true mask gains more than twice what it gains from a guessed one). A *mask finder* maps
``x_damaged`` ``(B, 1, H, W)`` in ``[-1, 1]`` to a bool mask of the same shape, True where it
believes splotches, cracks, scratches or dust were painted. Two are built in:

* ``classical``: :func:`repair.classical.detect_damage`, top-hat filters with a robust threshold;
* any network with a damage head (:class:`repair.nafnet.MaskedNAFRestorer`), through
  :func:`network_finder`: its sigmoid output above a threshold.

:func:`mask_scores` compares a mask with the truth that :func:`repair.damage.damage` returns;
:func:`mask_quality` does it over a set of photos for several finders at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from repair.damage import PAPER_MIX, damage

__all__ = ["MaskFinder", "mask_scores", "classical_finder", "network_finder", "mask_quality"]

MaskFinder = Callable[[torch.Tensor], torch.Tensor]


def mask_scores(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Precision, recall, F1 and IoU of a predicted bool mask against the true one.

    Pixels of all images are pooled. An empty truth and an empty prediction agree perfectly (1.0).
    """
    predicted, truth = predicted.bool(), truth.bool()
    if predicted.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {tuple(predicted.shape)} vs {tuple(truth.shape)}")
    hits = (predicted & truth).sum().item()
    found, real = predicted.sum().item(), truth.sum().item()
    precision = hits / found if found else 1.0
    recall = hits / real if real else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    union = (predicted | truth).sum().item()
    return {"precision": precision, "recall": recall, "f1": f1,
            "iou": hits / union if union else 1.0}


def classical_finder(x_damaged: torch.Tensor) -> torch.Tensor:
    """The classical guess (:func:`repair.classical.detect_damage`, default settings)."""
    from repair.classical import detect_damage

    return detect_damage(x_damaged)


def network_finder(net_G: torch.nn.Module, threshold: float = 0.5) -> MaskFinder:
    """A network's damage head as a finder: ``sigmoid(logits) > threshold``.

    Raises:
        ValueError: the network has no damage head (only :class:`repair.nafnet.MaskedNAFRestorer`
            with ``mask_width > 0`` has one).
    """
    if not getattr(net_G, "hparams", {}).get("mask_width"):
        raise ValueError(f"{type(net_G).__name__} has no damage-mask head: only the restorer of "
                         "record (arch 'nafnet') predicts a mask")
    net_G = net_G.eval()

    def find(x_damaged: torch.Tensor) -> torch.Tensor:
        """Bool ``(B, 1, H, W)``: True where the restorer finds damage."""
        with torch.no_grad():
            _, logits = net_G(x_damaged, with_mask=True)
        return torch.sigmoid(logits) > threshold

    return find


def mask_quality(x_clean: torch.Tensor | Sequence[torch.Tensor], finders: Mapping[str, MaskFinder],
                 seed: int = 0, mix: Mapping[str, float] | None = None
                 ) -> dict[str, dict[str, float]]:
    """Damage every photo (photo ``i`` of a set with seed ``seed + i``) and score each finder.

    Args:
        x_clean: ``(N, 1, H, W)`` clean photos in ``[-1, 1]``, or several such sets (each one
            seeded from ``seed`` again, as :func:`repair.evaluate.evaluate` damages each set).
        finders: ``{name: finder}``.
        seed: base seed.
        mix: damage strengths (default the paper's mix).

    Returns:
        ``{name: {"precision", "recall", "f1", "iou", "damaged_share"}}``, pixels of all photos
        pooled; ``damaged_share`` is the share of pixels truly damaged.
    """
    mix = dict(PAPER_MIX if mix is None else mix)
    sets = [x_clean] if isinstance(x_clean, torch.Tensor) else list(x_clean)
    truths, found = [], {name: [] for name in finders}
    for photos in sets:
        for i, x in enumerate(photos):
            x_damaged, truth = damage(x[None], seed=seed + i, **mix)
            truths.append(truth)
            for name, finder in finders.items():
                found[name].append(finder(x_damaged).bool())
    truth = torch.cat(truths)
    share = truth.float().mean().item()
    return {name: {**mask_scores(torch.cat(masks), truth), "damaged_share": share}
            for name, masks in found.items()}
