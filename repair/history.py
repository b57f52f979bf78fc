"""Loss histories of training runs: ``history.json``, CSV tables, and the paper's Fig. 6 as a plot."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from repair.checkpoint import read_checkpoint
from repair.images import atomic_write_bytes

__all__ = ["write_history", "read_history", "plot_history", "plot_rounds"]


def write_history(history: dict[str, list], folder: str | os.PathLike) -> list[Path]:
    """Write ``history.json`` and ``steps.csv`` / ``epochs.csv`` into ``folder`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "history.json"]
    atomic_write_bytes(written[0], json.dumps(history, indent=0).encode())
    for name in ("steps", "epochs"):
        rows = history.get(name, [])
        columns = list(dict.fromkeys(k for row in rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(folder / f"{name}.csv", text.getvalue().encode())
        written.append(folder / f"{name}.csv")
    return written


def read_history(path: str | os.PathLike) -> dict[str, list]:
    """The loss history from a ``history.json``, a folder holding one, or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / "history.json"
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return read_checkpoint(path)["history"]


def plot_history(history: dict[str, list], title: str = "", axes=None, smooth: int = 50,
                 best_epoch: int | None = None):
    """The paper's Fig. 6 and more: per-iteration losses (smoothed) and validation per epoch.

    Args:
        history: ``{"steps": [...], "epochs": [...]}`` as :func:`fit` records it.
        title: prefix of the panel titles.
        axes: two matplotlib axes to draw into (default: a new 1x2 figure).
        smooth: window of the running mean drawn over the raw per-iteration losses.
        best_epoch: mark this epoch (the one kept) with a vertical line.

    Returns the figure: loss_G (left axis) and loss_D (right axis) per iteration; validation
    loss_G and the PSNR of output and damaged input per epoch.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    fig = axes[0].figure
    steps = history.get("steps", [])
    lines = []
    for ax, key, color in ((axes[0], "loss_G", "C0"), (axes[0].twinx(), "loss_D", "C1")):
        values = np.array([row.get(key, np.nan) for row in steps], dtype=float)
        if not len(values) or np.all(np.isnan(values)):
            ax.set_yticks([])
            continue
        k = max(1, min(smooth, len(values) // 5 or 1))
        trend = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(values)) + 1, values, color=color, alpha=0.2, lw=0.5)
        lines += ax.plot(np.arange(len(trend)) + k, trend, color=color,
                         label=f"{key} (mean of {k})")
        ax.set_ylabel(key, color=color)
    axes[0].set(xlabel="iteration", title=f"{title} training".strip())
    if lines:
        axes[0].legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper right")
    epochs = history.get("epochs", [])
    if epochs and "val_loss" in epochs[0]:
        x = [row["epoch"] for row in epochs]
        ax, twin = axes[1], axes[1].twinx()
        lines = ax.plot(x, [row["val_loss"] for row in epochs], "o-", label="validation loss_G")
        lines += twin.plot(x, [row["val_psnr"] for row in epochs], "s--", color="C2",
                           label="PSNR output")
        lines.append(twin.axhline(epochs[0]["val_psnr_damaged"], color="C3", ls=":",
                                  label="PSNR damaged input"))
        if best_epoch is not None:
            lines.append(ax.axvline(best_epoch, color="0.5", lw=3, alpha=0.3, label="kept epoch"))
        ax.set(xlabel="epoch", ylabel="validation loss", title=f"{title} validation".strip())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        twin.set_ylabel("PSNR (dB)")
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, ncol=2, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def _cycles(rounds: list[dict]) -> list[list[dict]]:
    """``rounds`` cut where their ``cycle`` changes (a run continued from another's best with a
    fresh schedule and its own validation draw; rounds without the key are one cycle)."""
    cycles: list[list[dict]] = []
    for r in rounds:
        if not cycles or r.get("cycle") != cycles[-1][-1].get("cycle"):
            cycles.append([])
        cycles[-1].append(r)
    return cycles


def plot_rounds(history: dict[str, list], title: str = "", smooth: int = 100):
    """The restorer's training (:mod:`repair.restorer_train`): L1 per step (smoothed) on the left;
    on the right, per validation round, the PSNR of its output and of the damaged input (capped
    as validation caps it) and the F1 of the damage it finds. Where training went on in a new
    cycle (rounds with another ``cycle``), a vertical line marks the start and each cycle's
    curves are drawn apart: its validation damage is its own draw. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), dpi=100)
    l1 = np.array([row.get("loss_G_l1", np.nan) for row in history.get("steps", [])], float)
    if len(l1):
        k = max(1, min(smooth, len(l1) // 5 or 1))
        left.plot(np.arange(1, len(l1) + 1), l1, color="C0", alpha=0.2, lw=0.5)
        left.plot(np.arange(len(l1) - k + 1) + k, np.convolve(l1, np.ones(k) / k, "valid"),
                  color="C0", label=f"L1 (mean of {k})")
        left.set(xlabel="step", ylabel="L1", title=f"{title} training".strip())
        left.legend(fontsize=7)
    cycles = _cycles(history.get("epochs", []))
    twin = right.twinx() if cycles and "val_mask_f1" in cycles[0][0] else None
    for n, rounds in enumerate(cycles):
        steps = [r["step"] for r in rounds]
        first = n == 0          # one legend entry per curve, not per cycle
        right.plot(steps, [r["val_psnr"] for r in rounds], "o-", ms=3, color="C0",
                   label="PSNR output" if first else None)
        right.plot(steps, [r["val_psnr_damaged"] for r in rounds], ":", color="C3",
                   label="PSNR damaged input" if first else None)
        if twin is not None:
            twin.plot(steps, [r["val_mask_f1"] for r in rounds], "s--", ms=3, color="C2",
                      label="damage found: F1" if first else None)
        if n:
            start = cycles[n - 1][-1]["step"]
            for ax in (left, right):
                ax.axvline(start, color="0.5", lw=0.8, ls="--")
            # alternate rows, so that the labels of two short cycles do not overlap
            right.annotate(f"cycle {n + 1}", (start, 1), xycoords=("data", "axes fraction"),
                           xytext=(3, -10 if n % 2 else -19), textcoords="offset points",
                           fontsize=7)
    if cycles:
        right.set(xlabel="step", ylabel="PSNR (dB)", title=f"{title} validation".strip())
        if len(cycles) > 1:  # headroom for the cycle labels above the curves
            low, high = right.get_ylim()
            right.set_ylim(low, high + 0.15 * (high - low))
        lines, labels = right.get_legend_handles_labels()
        if twin is not None:
            twin.set(ylabel="F1", ylim=(0, 1))
            more, more_labels = twin.get_legend_handles_labels()
            lines, labels = lines + more, labels + more_labels
        # below the plot: the curves of a later cycle may sit anywhere inside it
        right.legend(lines, labels, fontsize=7, ncol=3, loc="upper right",
                     bbox_to_anchor=(1.0, -0.2))
    fig.tight_layout()
    return fig
