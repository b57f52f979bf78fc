"""Evaluation results for people and programs: a plain-text table and a JSON file.

The results are the dictionary :func:`repair.evaluate.evaluate` returns (``settings``, ``methods``,
``per_damage``, ``rows``, ``skipped``, ``failed``); ``repair evaluate`` prints the table and writes
the JSON, and :mod:`repair.evaluate` re-exports both functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from repair.damage import DAMAGES
from repair.images import atomic_write_bytes

__all__ = ["ORACLES", "format_table", "save_json"]

ORACLES = ("inpaint-sharpen-oracle",)
"""Methods that are *told* the true damage mask: upper bounds, not competitors (no user has it)."""


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _block(summary: Mapping[str, Mapping]) -> list[str]:
    width = max([len("method")] + [len(name) for name in summary])
    lines = [f"{'method':<{width}}  {'PSNR dB':>8}  {'gain dB':>7}  {'worse':>5}  {'SSIM':>6}  "
             f"{'edge':>6}  {'LPIPS':>6}  {'ms/image':>9}"]
    for name, s in summary.items():
        worse = "-" if s.get("worse") is None else f"{s['worse']}/{s['images']}"
        lines.append(f"{name:<{width}}  {_cell(s['psnr'], 2):>8}  {_cell(s.get('gain'), 2):>7}  "
                     f"{worse:>5}  {_cell(s['ssim'], 3):>6}  {_cell(s['edge'], 3):>6}  "
                     f"{_cell(s.get('lpips'), 3):>6}  {_cell(s['ms_per_image'], 1):>9}")
    return lines


def format_table(results: Mapping) -> str:
    """The results of :func:`evaluate` as a plain-text table (one block per damage setting)."""
    settings = results["settings"]
    mix = ", ".join(f"{k} {v:g}" for k, v in settings["damages"]["mix"].items() if v)
    lines = [f"{settings['images']} images of {settings['size']}x{settings['size']} from "
             f"{settings['source']}, seed {settings['seed']}", "", f"damage mix ({mix}):"]
    lines += _block(results["methods"])
    for damage_name, summary in results.get("per_damage", {}).items():
        if damage_name in DAMAGES:
            strength = settings["damages"][damage_name][damage_name]
            title = f"{damage_name} only (strength {strength:g}):"
        else:
            title = {"clean": "clean input (no damage: a restorer should return the photo):",
                     "daguerreotype": "daguerreotype mix (the paper's four + plate damages):"
                     }.get(damage_name, f"{damage_name}:")
        lines += ["", title] + _block(summary)
    lines += ["", "PSNR/SSIM: higher is better. gain: PSNR over the damaged input's; worse: photos "
                  "it made worse than they came in. edge: 1 = as sharp as the clean photo, "
                  "<1 blurrier, >1 noisier or over-sharpened. LPIPS: lower is better. "
                  f"{', '.join(ORACLES)}: told the true damage mask, an upper bound no user has."]
    lines += [f"{metric}: {reason}" for metric, reason in results.get("skipped", {}).items()]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic, torch.Tensor)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_json(results: Mapping, path: str | Path) -> Path:
    """Write ``results`` as JSON (non-finite numbers become ``null``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())
    return path
