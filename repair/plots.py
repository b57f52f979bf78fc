"""Figures the notebooks share: image grids and loss curves, small and quiet."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["show_images", "show_grid"]


def _plane(x: torch.Tensor):
    from repair.images import to_unit

    x = x.detach().float().cpu()
    while x.dim() > 2:
        x = x[0]
    return to_unit(x).clamp(0, 1).numpy()


def show_grid(rows: Sequence[Sequence[torch.Tensor]], titles: Sequence[Sequence[str]] | None = None,
              row_labels: Sequence[str] | None = None, size: float = 2.0, suptitle: str = ""):
    """Show a grid of grayscale images in ``[-1, 1]`` (each ``(H, W)``, ``(1, H, W)`` or
    ``(1, 1, H, W)``); masks (bool) are drawn white where True. Returns the figure."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + 0.3 * bool(suptitle)),
                             squeeze=False, dpi=100)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_axis_off()
            if j >= len(row):
                continue
            image = row[j]
            if image.dtype == torch.bool:
                image = image.float() * 2 - 1
            ax.imshow(_plane(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if titles is not None and j < len(titles[i]) and titles[i][j]:
                ax.set_title(titles[i][j], fontsize=9)
        if row_labels is not None:
            axes[i][0].text(-0.05, 0.5, row_labels[i], transform=axes[i][0].transAxes, rotation=90,
                            ha="right", va="center", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout(pad=0.3)
    plt.show()
    return fig


def show_images(images: Sequence[torch.Tensor], titles: Sequence[str] | None = None,
                size: float = 2.5, suptitle: str = ""):
    """Show images side by side in one row. Returns the figure."""
    return show_grid([list(images)], None if titles is None else [list(titles)], size=size,
                     suptitle=suptitle)
