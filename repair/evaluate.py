"""The evaluation harness: damage clean photos with fixed seeds, restore them, score every method.

A *method* is a restorer of the one contract of :mod:`repair.methods`, ``(x_damaged, mask=None)
-> x_restored``. Built in: ``"damaged"`` (no restoration, the floor to beat) and the classical
restorers; a trained generator joins through :func:`repair.methods.wrap_generator`::

    results = evaluate("photos/", {"damaged": None, "unet": wrap_generator(net_G)})

Image ``i`` is damaged with seed ``seed + i`` by :func:`repair.damage.damage`, so every method sees
exactly the same damaged photos and a rerun gives the same numbers (timings aside). The command
``repair evaluate`` (:mod:`repair.evaluate_cli`) compares the built-in methods and every trained
generator that :func:`repair.zoo.select_methods` finds (``checkpoints/``); a bad photo or checkpoint is reported in
the results (``failed``) and the evaluation goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from repair import metrics
from repair.damage import DAGUERREOTYPE_MIX, DAMAGES, PAPER_MIX, PLATE_DAMAGES, damage
from repair.images import ImageError, center_square, find_images, load_gray
from repair.methods import Restorer, resolve_methods
from repair.results import format_table, save_json

__all__ = ["load_clean_images", "damage_settings", "evaluate", "summarise",
           "format_table", "save_json"]

SCORES = ("psnr", "ssim", "edge", "lpips")


def load_clean_images(folder: str | Path, size: int = 256, limit: int | None = None,
                      failed: dict[str, str] | None = None) -> tuple[list[str], torch.Tensor]:
    """Every image under ``folder`` (recursive, sorted) as gray ``size x size`` centre squares:
    ``(names relative to folder, x_clean (N, 1, size, size))``. With a ``failed`` dict, an
    unreadable photo is recorded there (``{name: message}``) and skipped instead of raising.

    Raises:
        FileNotFoundError: no folder, or no images in it. ImageError: an unreadable photo
        (without ``failed``), or none readable at all.
    """
    folder = Path(folder)
    files = find_images(folder)[:limit]
    names, squares = [], []
    for path in files:
        name = str(path.relative_to(folder)) if path != folder else path.name
        try:
            squares.append(center_square(load_gray(path), size))
        except (ImageError, OSError) as err:
            if failed is None:
                raise
            failed[name] = str(err)
            continue
        names.append(name)
    if not squares:
        raise ImageError(f"{folder}: none of its {len(files)} photos could be read; see above")
    return names, torch.stack(squares)


ALL_DAMAGES = (*DAMAGES, *PLATE_DAMAGES)


def damage_settings(per_damage: bool = False, mix: Mapping[str, float] | None = None
                    ) -> dict[str, dict[str, float]]:
    """Named damage strengths: ``"mix"`` (the paper's four by default); with ``per_damage`` also
    each of the four alone, ``"clean"`` (no damage: a restorer should return the photo) and
    ``"daguerreotype"`` (:data:`repair.damage.DAGUERREOTYPE_MIX`).

    A damage alone keeps its strength in the mix (or the paper's, if the mix switches it off).
    """
    mix = {**PAPER_MIX, **(mix or {})}
    unknown = set(mix) - set(ALL_DAMAGES)
    if unknown:
        raise ValueError(f"unknown damage {sorted(unknown)}: choose from {', '.join(ALL_DAMAGES)}")
    off = dict.fromkeys(ALL_DAMAGES, 0.0)
    settings = {"mix": {**off, **{name: float(value) for name, value in mix.items()}}}
    if per_damage:
        for name in DAMAGES:
            strength = float(mix[name]) or float(PAPER_MIX[name])
            settings[name] = {**off, name: strength}
        settings["clean"] = dict(off)
        settings["daguerreotype"] = {**off, **DAGUERREOTYPE_MIX}
    return settings


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict], damage_name: str, method_names: list[str]) -> dict[str, dict]:
    """Mean scores per method over the ``rows`` of one damage setting (rows as :func:`evaluate`
    returns them; rows pooled from several sets need an ``index`` unique per photo). With
    ``damaged`` among the methods also ``gain`` (mean PSNR over the damaged input's) and ``worse``
    (photos whose PSNR fell below the damaged input's)."""
    here = [r for r in rows if r["damage"] == damage_name]
    floor = {r["index"]: r["psnr"] for r in here if r["method"] == "damaged"}
    summary = {}
    for name in method_names:
        mine = [r for r in here if r["method"] == name]
        summary[name] = {**{key: _mean([r.get(key) for r in mine]) for key in SCORES},
                         "ms_per_image": _mean([r["ms"] for r in mine]), "images": len(mine)}
        if floor:
            summary[name]["gain"] = _mean([r["psnr"] - floor[r["index"]] for r in mine])
            summary[name]["worse"] = sum(r["psnr"] < floor[r["index"]] for r in mine)
    return summary


def _restore(method: Restorer, name: str, x_damaged: torch.Tensor, mask: torch.Tensor
             ) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    x_restored = method(x_damaged, mask)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if not isinstance(x_restored, torch.Tensor) or tuple(x_restored.shape) != tuple(x_damaged.shape):
        got = tuple(x_restored.shape) if isinstance(x_restored, torch.Tensor) else type(x_restored)
        raise ValueError(f"method {name!r} returned {got}, expected a tensor of shape "
                         f"{tuple(x_damaged.shape)} like its input")
    return x_restored.detach().float().cpu(), elapsed_ms


def _clean_input(clean_images: str | Path | torch.Tensor, size: int, limit: int | None,
                 failed: dict[str, str]) -> tuple[list[str], torch.Tensor, str]:
    """``(names, x_all (N, 1, size, size), source)`` from a folder or a tensor."""
    if size < 16 or (limit is not None and limit < 1):
        raise ValueError(f"size must be at least 16 pixels and limit a positive number of "
                         f"images; got size {size}, limit {limit}")
    if not isinstance(clean_images, torch.Tensor):
        names, x_all = load_clean_images(clean_images, size=size, limit=limit, failed=failed)
        return names, x_all, str(clean_images)
    if clean_images.dim() != 4 or clean_images.shape[1] != 1 or len(clean_images) == 0:
        raise ValueError(f"clean_images must be a non-empty (N, 1, H, W) tensor, got "
                         f"{tuple(clean_images.shape)}")
    x_all = center_square(clean_images[:limit].detach().float().cpu(), size)
    return [f"image-{i:03d}" for i in range(len(x_all))], x_all, "tensor"


def _score_all(names: list[str], x_all: torch.Tensor, settings: dict, resolved: dict,
               seed: int, use_lpips: bool, progress: bool) -> list[dict]:
    """One row per photo, damage setting and method (see :func:`evaluate`)."""
    from tqdm.auto import tqdm

    rows: list[dict] = []
    warmed: set[str] = set()
    steps = tqdm(total=len(names) * len(settings), desc="evaluate", disable=not progress)
    for i, (name, x_clean) in enumerate(zip(names, x_all)):
        x_clean = x_clean[None]  # (1, 1, size, size)
        for damage_name, strengths in settings.items():
            x_damaged, mask = damage(x_clean, seed=seed + i, **strengths)
            for method_name, method in resolved.items():
                if method_name not in warmed:  # first call pays one-off set-up costs: not timed
                    _restore(method, method_name, x_damaged, mask)
                    warmed.add(method_name)
                x_restored, ms = _restore(method, method_name, x_damaged, mask)
                row = {"image": name, "index": i, "seed": seed + i, "damage": damage_name,
                       "method": method_name, **metrics.image_scores(x_restored, x_clean)[0],
                       "lpips": None, "ms": ms}
                if use_lpips:
                    row["lpips"] = float(metrics.lpips(x_restored[0], x_clean[0]))
                rows.append(row)
            steps.update()
    steps.close()
    return rows


def evaluate(clean_images: str | Path | torch.Tensor, methods=None, seed: int = 0,
             damages: Mapping[str, float] | None = None, per_damage: bool = False,
             limit: int | None = None, size: int = 256, lpips: bool | str = "auto",
             progress: bool = True) -> dict:
    """Damage every clean photo (seed ``seed + i``), restore it with every method and score it.

    Args:
        clean_images: a folder (searched recursively) or a tensor ``(N, 1, H, W)`` in ``[-1, 1]``;
            images are centre-cropped and resized to ``size x size``.
        methods: see :func:`resolve_methods` (``None``: every built-in method).
        seed: image ``i`` gets damage seed ``seed + i`` (0 or more).
        damages: strengths of the damage mix (default :data:`repair.damage.PAPER_MIX`).
        per_damage: also score each damage alone (blur, splotches, cracks, contrast), clean
            input and the daguerreotype mix (:func:`damage_settings`).
        limit: use at most this many images (the first in sorted order).
        size: side of the square images, in pixels (at least 16).
        lpips: ``"auto"`` scores LPIPS when its weights are on disk, ``False`` never.
        progress: show a progress bar.

    Returns:
        a JSON-serialisable dict: ``settings``; ``methods`` = ``{method: {psnr, ssim, edge, lpips,
        ms_per_image, images}}`` on the mix; ``per_damage`` = ``{damage: {method: ...}}`` (only
        with ``per_damage``); ``rows``, one per image, damage and method; ``skipped``, metrics not
        computed and why; ``failed``, photos that could not be read and why (they are left
        out, the others scored). ``lpips`` is ``None`` when skipped.
    """
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    failed: dict[str, str] = {}
    names, x_all, source = _clean_input(clean_images, size, limit, failed)
    resolved = resolve_methods(methods)
    settings = damage_settings(per_damage, damages)
    use_lpips = lpips is True or lpips == "auto"
    reason = metrics.lpips_status() if use_lpips else "skipped: switched off by the caller"
    skipped = {"lpips": reason} if reason is not None else {}
    use_lpips = use_lpips and reason is None
    rows = _score_all(names, x_all, settings, resolved, seed, use_lpips, progress)
    method_names = list(resolved)
    results = {
        "settings": {"source": source, "images": len(names), "size": size, "seed": seed,
                     "methods": method_names, "damages": settings, "psnr_max": metrics.PSNR_MAX},
        "methods": summarise(rows, "mix", method_names),
        "rows": rows, "skipped": skipped, "failed": failed,
    }
    if per_damage:
        results["per_damage"] = {d: summarise(rows, d, method_names) for d in settings if d != "mix"}
    return results
