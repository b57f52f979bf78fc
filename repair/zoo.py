"""The trained generators on disk, by name: what ``repair evaluate`` and chapter 04 compare.

Generators are looked for in a *root* folder, by default ``checkpoints/`` of the repository
(:data:`COMMITTED`):

* if it holds ``MANIFEST.json``, its ``weights`` entries whose ``file`` is present, in manifest
  order (their SHA-256 is checked when loaded);
* otherwise every ``*.pt`` file directly in it (name: the file's stem), and every run folder
  ``<root>/<name>/G_best.pt`` that ``repair train --out runs/<name>`` writes (name: the folder's).

Only restorers count: generator checkpoints of :mod:`repair.train` whose generator is one of
:data:`repair.nets.GENERATORS` (image in, image out); other weights kept in the same folder (the
StyleGAN of chapter 05, full training states written to resume a run) are left out.

Only when the root holds none, the *fallback* folders are searched the same way: the ``fallback``
argument, else ``$REPAIR_CHECKPOINTS`` (folders separated by ``os.pathsep``). That lets a notebook
use the committed weights where they exist and a folder of training runs otherwise::

    available_models()                       # {"pix2pix-book": Path(".../pix2pix-book.pt"), ...}
    methods = learned_methods(["pix2pix-book"])  # {"pix2pix-book": (x_damaged, mask) -> x_restored}
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from repair.checkpoint import committed_folder

__all__ = ["COMMITTED", "ENV_FALLBACK", "RUN_FILE", "UnknownModelError", "models_in", "available_models",
           "load_models", "learned_methods", "model_info", "epoch_history", "validation_photos",
           "validation_psnr", "PAPER_RUNS", "profile_folder", "manifest"]

COMMITTED = committed_folder()  # the committed small weights
ENV_FALLBACK = "REPAIR_CHECKPOINTS"
RUN_FILE = "G_best.pt"  # the generator-only checkpoint a training run keeps for its best epoch
PAPER_RUNS = Path("runs/03")  # where chapter 03 trains (its OUT), relative to notebooks/

Folders = str | os.PathLike | Sequence[str | os.PathLike] | None


class UnknownModelError(ValueError):
    """A model name that is not among the generators found on disk."""


def manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The ``weights`` entries of ``folder/MANIFEST.json`` by name (empty if there is none)."""
    folder = Path(folder)
    path = folder / "MANIFEST.json"
    if not path.is_file():
        return {}
    try:
        weights = json.loads(path.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a readable checkpoint manifest ({err}); it needs a "
                         "'weights' object {name: {'file': ..., 'sha256': ...}}") from None
    return {str(name): entry for name, entry in weights.items()}


def _is_restorer(path: Path) -> bool:
    """Whether ``path`` holds a restoring generator of :mod:`repair.nets` (not, e.g., StyleGAN).

    Only the small header is read (memory-mapped). A file that cannot be read at all counts as a
    restorer, so that loading it reports the damage instead of the file silently vanishing.
    """
    from repair.checkpoint import FORMAT
    from repair.nets import GENERATORS

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # damaged, truncated, or an old serialisation: let load_generator explain
        return True
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return False
    if payload.get("kind") == "full":  # a training state to resume (``last.pt``), not a release
        return False
    return (payload.get("generator") or {}).get("arch") in GENERATORS


def models_in(folder: str | os.PathLike) -> dict[str, Path]:
    """The generators in one folder, ``{name: path}`` (empty if the folder does not exist).

    Args:
        folder: a ``checkpoints/`` folder (manifest or ``*.pt`` files) or a folder of training
            runs (``<name>/G_best.pt``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return {}
    listed = manifest(folder)
    if listed:
        found = {name: folder / entry["file"] for name, entry in listed.items()
                 if "file" in entry and (folder / entry["file"]).is_file()}
    else:
        found = {path.stem: path for path in sorted(folder.glob("*.pt")) if path.is_file()}
        for path in sorted(folder.glob(f"*/{RUN_FILE}")):
            found.setdefault(path.parent.name, path)
        found = dict(sorted(found.items()))
    return {name: path for name, path in found.items() if _is_restorer(path)}


def profile_folder(profile: str, folder: str | os.PathLike | None = None) -> Path | None:
    """The root folder a notebook compares at ``profile``: ``folder`` if given; at ``paper``,
    chapter 03's runs (:data:`PAPER_RUNS`, relative to the working folder) when they hold a
    generator, so chapters 04 and 06 measure what chapter 03 trained; else None (``checkpoints/``).
    """
    if folder is not None:
        return Path(folder).expanduser()
    if profile == "paper" and models_in(PAPER_RUNS):
        return PAPER_RUNS
    return None


def _fallback_folders(fallback: Folders) -> list[Path]:
    if fallback is None:
        fallback = [p for p in os.environ.get(ENV_FALLBACK, "").split(os.pathsep) if p]
    elif isinstance(fallback, (str, os.PathLike)):
        fallback = [fallback]
    return [Path(p).expanduser() for p in fallback]


def available_models(root: str | os.PathLike | None = None, fallback: Folders = None
                     ) -> dict[str, Path]:
    """Every trained generator found, ``{name: path}``; nothing is loaded.

    Args:
        root: the folder searched first (default: ``checkpoints/`` of the repository).
        fallback: folder(s) searched, in order, only when ``root`` holds no generator
            (default: ``$REPAIR_CHECKPOINTS``). The first one holding any wins.
    """
    found = models_in(COMMITTED if root is None else root)
    if found:
        return found
    for folder in _fallback_folders(fallback):
        if found := models_in(folder):
            return found
    return {}


def _check_hash(path: Path, name: str) -> None:
    entry = manifest(path.parent).get(name)
    if not entry or not entry.get("sha256"):
        return
    from repair.registry import HashMismatchError, sha256_file

    if (found := sha256_file(path)) != entry["sha256"]:
        raise HashMismatchError(f"{path}: SHA-256 {found}, but MANIFEST.json records "
                                f"{entry['sha256']}: the file was changed; restore it or update "
                                "the manifest")


def load_models(names: str | Sequence[str] | None = None, device: str | torch.device = "cpu",
                root: str | os.PathLike | None = None, fallback: Folders = None
                ) -> dict[str, torch.nn.Module]:
    """Trained generators by name, in eval mode on ``device``.

    Each network carries ``checkpoint_info`` (recipe, history, validation metrics), see
    :func:`repair.checkpoint.load_generator` and :func:`model_info`.

    Args:
        names: which ones (a list or a comma-separated string); ``None``: every available one.
        device: where to put the networks.
        root, fallback: where to look, see :func:`available_models`.

    Raises:
        UnknownModelError: a name that is not on disk (the message lists the ones that are).
    """
    from repair.checkpoint import load_generator

    found = available_models(root, fallback)
    if names is None:
        names = list(found)
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in found]
    if unknown:
        where = ", ".join(str(p) for p in [root or "checkpoints/", *_fallback_folders(fallback)])
        raise UnknownModelError(
            f"unknown model {', '.join(map(repr, unknown))}: the generators found are "
            f"{', '.join(found) or '(none)'} (searched {where}); train one with `repair train` "
            f"or point {ENV_FALLBACK} at a folder of checkpoints")
    models = {}
    for name in names:
        _check_hash(found[name], name)
        models[name] = load_generator(found[name], device=device)
    return models


def learned_methods(names: str | Sequence[str] | None = None, device: str | torch.device = "cpu",
                    root: str | os.PathLike | None = None, fallback: Folders = None) -> dict:
    """Trained generators as evaluation methods ``{name: (x_damaged, mask) -> x_restored}``.

    Same arguments as :func:`load_models`; each network is wrapped by
    :func:`repair.evaluate.wrap_generator` (no gradients, the mask unused).
    """
    from repair.evaluate import wrap_generator

    return {name: wrap_generator(net_G, device)
            for name, net_G in load_models(names, device, root, fallback).items()}


def model_info(net_G: torch.nn.Module) -> dict:
    """What a loaded generator is: ``{recipe, arch, parameters, epoch, images_seen, val_psnr,
    val_psnr_damaged, mix, image_size}`` (``None`` where its checkpoint does not record it; ``mix``,
    the damage it was trained on, is ``"paper"`` for runs that predate ``repair train --mix``)."""
    info = getattr(net_G, "checkpoint_info", None) or {}
    metrics = info.get("metrics") or info.get("best") or {}
    recipe = info.get("recipe") or {}
    settings = info.get("settings") or {}
    return {"recipe": recipe.get("name"), "arch": getattr(net_G, "arch", type(net_G).__name__),
            "parameters": sum(p.numel() for p in net_G.parameters()),
            "epoch": metrics.get("epoch", info.get("epoch")),
            "images_seen": metrics.get("images_seen", info.get("images_seen")),
            "val_psnr": metrics.get("val_psnr"), "val_psnr_damaged": metrics.get("val_psnr_damaged"),
            "mix": settings.get("mix") or "paper", "image_size": settings.get("image_size")}


def epoch_history(path: str | os.PathLike) -> list[dict]:
    """The per-epoch validation record of the whole training run behind a generator file.

    From the first source that has it: the ``per_epoch`` entry of ``MANIFEST.json`` beside the
    file, a run folder's ``history.json``, else the checkpoint's own history (which may stop at the
    kept epoch). Each row has ``epoch``, ``images_seen``, ``val_loss`` and ``val_psnr``, ...
    """
    from repair.checkpoint import read_checkpoint

    path = Path(path)
    for entry in manifest(path.parent).values():
        if entry.get("file") == path.name and entry.get("per_epoch"):
            return list(entry["per_epoch"])
    history = path.parent / "history.json"
    if path.name == RUN_FILE and history.is_file():
        return list(json.loads(history.read_text()).get("epochs", []))
    return list((read_checkpoint(path).get("history") or {}).get("epochs", []))


def validation_photos(folder: str | os.PathLike | None = None, size: int = 256, limit: int = 24,
                      seed: int = 0, val_fraction: float = 0.1) -> torch.Tensor:
    """The validation split that training carved out of ``folder``, as evaluation sees photos.

    The same split as :func:`repair.data.make_datasets` (``val_fraction`` of the photos, fixed by
    ``seed``), the first ``limit`` of it in sorted order, each cut to its centre square and resized
    to ``size x size`` like the test photos of :func:`repair.evaluate.evaluate`. Use it to choose
    between trained models at the evaluation size without looking at the test sets.

    Args:
        folder: the training photos (default ``<data root>/train``).

    Returns:
        ``(N, 1, size, size)`` in ``[-1, 1]``.
    """
    from repair.config import data_root
    from repair.data import split_files
    from repair.evaluate import center_square
    from repair.images import find_images, load_gray

    folder = Path(folder) if folder is not None else data_root() / "train"
    _, val = split_files(find_images(folder), val_fraction, seed)
    if not val:
        raise FileNotFoundError(f"{folder}: too few photos for a validation split")
    return torch.stack([center_square(load_gray(p), size) for p in val[:limit]])


def validation_psnr(methods: dict, x_clean: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Mean PSNR of each method on ``x_clean`` damaged with the paper's mix (photo ``i``: seed
    ``seed + i``), e.g. on :func:`validation_photos`: ``{name: dB}``."""
    from repair.evaluate import evaluate

    results = evaluate(x_clean, methods, seed=seed, lpips=False, progress=False)["methods"]
    return {name: results[name]["psnr"] for name in methods}
