"""Figures the notebooks share: image grids and loss curves, small and quiet."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["show_images", "show_grid", "panels", "crop"]


def _plane(x: torch.Tensor):
    from repair.images import to_unit

    x = x.detach().float().cpu()
    while x.dim() > 2:
        x = x[0]
    return to_unit(x).clamp(0, 1).numpy()


def show_grid(rows: Sequence[Sequence[torch.Tensor]], titles: Sequence[Sequence[str]] | None = None,
              row_labels: Sequence[str] | None = None, size: float = 2.0, suptitle: str = ""):
    """Show a grid of grayscale images in ``[-1, 1]`` (each ``(H, W)``, ``(1, H, W)`` or
    ``(1, 1, H, W)``); masks (bool) are drawn white where True; ``None`` leaves a panel
    empty. Returns the figure."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + 0.3 * bool(suptitle)),
                             squeeze=False, dpi=100)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_axis_off()
            if j >= len(row) or row[j] is None:
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


def _unit_array(x):
    """A picture as a 2-D NumPy array in [0, 1]: tensors in [-1, 1] of any leading shape, masks
    (bool) white where True, or arrays already in [0, 1]."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool:
            x = x.float() * 2 - 1
        return _plane(x)
    import numpy as np

    return np.asarray(x, dtype=float)


def crop(x, box: tuple[int, int], side: int):
    """The ``side`` x ``side`` window of picture ``x`` whose top-left corner is ``box`` (row,
    column), as a 2-D array in [0, 1]."""
    top, left = box
    return _unit_array(x)[top:top + side, left:left + side]


def panels(images: Sequence[tuple[str, object]], px: int = 192, ncols: int = 4,
           boxes: dict[int, tuple[int, int, int]] | None = None, fontsize: float = 8,
           title_lines: int = 2, dpi: int = 100):
    """Pictures in rows of ``ncols``, each drawn in a ``px`` x ``px`` square of the PNG, titles
    above (at most ``title_lines`` lines each, so they never overlap).

    A crop of ``side`` pixels is drawn ``px / side`` times larger, pixel for pixel (nearest
    neighbour): choose ``px`` as a multiple of the crop's side to see it at an exact zoom.

    Args:
        images: ``(title, picture)`` pairs; a picture is a tensor in [-1, 1] (``(H, W)``,
            ``(1, H, W)`` or ``(1, 1, H, W)``), a bool mask, or a 2-D array in [0, 1].
        px: side of every panel in pixels of the figure (at ``dpi``).
        ncols: panels per row (at most about 5 fit the book's width at 150 px).
        boxes: ``{panel index: (top, left, side)}``: a red square drawn on that panel, in the
            picture's own pixels.
    Returns:
        The figure, shown.
    """
    import matplotlib.pyplot as plt

    gap, title_h = 6, int(title_lines * fontsize * 1.45 + 6)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    cols = min(ncols, n)
    width, height = cols * (px + gap) + gap, nrows * (px + title_h + gap)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    for k, (title, image) in enumerate(images):
        r, c = divmod(k, ncols)
        x0 = gap + c * (px + gap)
        y0 = height - (r + 1) * (px + title_h + gap) + gap // 2
        ax = fig.add_axes([x0 / width, y0 / height, px / width, px / height])
        array = _unit_array(image)
        zoomed = max(array.shape) <= px
        ax.imshow(array, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest" if zoomed else "antialiased")
        ax.set_title(title, fontsize=fontsize, pad=3)
        ax.set_axis_off()
        if boxes and k in boxes:
            top, left, side = boxes[k]
            ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), side, side, fill=False,
                                       ec="red", lw=1.2))
    plt.show()
    return fig
