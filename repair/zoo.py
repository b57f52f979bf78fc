"""The trained generators to compare: found in folders, loaded by name, used as methods.

:func:`available_models` lists the restorers of a *root* folder (default: the committed ones,
each wherever :func:`repair.named_weights.weights_path` finds it), :func:`load_models` /
:func:`learned_methods` load them, :func:`model_info` and :func:`epoch_history` say what each one
is and how its run went; :func:`select_methods` joins them to the built-in methods by name, as
``repair evaluate`` does. A root without ``MANIFEST.json`` counts every ``*.pt`` in it and every
run folder ``<root>/<name>/G_best.pt``; only restoring generators of
:data:`repair.nets.GENERATORS` count. When the root holds none, the ``fallback`` folders (default
``$REPAIR_CHECKPOINTS``, separated by ``os.pathsep``) are searched::

    methods = learned_methods(["pix2pix-book"])  # {"pix2pix-book": (x_damaged, mask) -> x_restored}

Names become files in :mod:`repair.named_weights` (``checkpoints/``, the package, or the download
cache of :mod:`repair.weights_cache`); its :func:`~repair.named_weights.pretrained` and
:func:`~repair.named_weights.manifest` are named here too, as the chapters use them
(``zoo.pretrained``, ``zoo.manifest``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from repair.methods import Restorer, builtin_methods, resolve_methods, wrap_generator
from repair.named_weights import committed_files, manifest, pretrained, weights_path
from repair.weights_cache import HashMismatchError, sha256_file

__all__ = ["ENV_FALLBACK", "RUN_FILE", "PAPER_RUNS", "UnknownModelError", "models_in",
           "available_models", "load_models", "learned_methods", "model_info", "epoch_history",
           "profile_folder", "select_methods", "manifest", "pretrained"]

ENV_FALLBACK = "REPAIR_CHECKPOINTS"
RUN_FILE = "G_best.pt"  # the generator-only checkpoint a training run keeps for its best epoch
PAPER_RUNS = Path("runs/03")  # where chapter 03 trains (its OUT), relative to notebooks/


class UnknownModelError(ValueError):
    """A model name that is not among the generators found on disk."""


Folders = str | os.PathLike | Sequence[str | os.PathLike] | None


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
    if listed:  # the manifest lists restorers only: a listed file that does not read as one
        # is reported when it loads, never silently dropped
        return {name: folder / entry["file"] for name, entry in listed.items()
                if "file" in entry and (folder / entry["file"]).is_file()}
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
    """Every trained generator found, ``{name: path}``; nothing is loaded or downloaded.

    Args:
        root: the folder searched first (default: the committed restorers, each wherever
            :func:`weights_path` finds it: a file not on disk yet has its cache path).
        fallback: folder(s) searched, in order, only when ``root`` holds no generator
            (default: ``$REPAIR_CHECKPOINTS``). The first one holding any wins.
    """
    # the manifest lists restorers only; a damaged file is reported when it loads
    found = committed_files() if root is None else models_in(root)
    if found:
        return found
    for folder in _fallback_folders(fallback):
        if found := models_in(folder):
            return found
    return {}


def _check_hash(path: Path, name: str) -> None:
    entry = manifest(path.parent).get(name)
    if entry and entry.get("sha256") and (found := sha256_file(path)) != entry["sha256"]:
        raise HashMismatchError(f"{path}: SHA-256 {found}, but MANIFEST.json records "
                                f"{entry['sha256']}: the file was changed; restore it or update "
                                "the manifest")


def load_models(names: str | Sequence[str] | None = None, device: str | torch.device = "cpu",
                root: str | os.PathLike | None = None, fallback: Folders = None
                ) -> dict[str, torch.nn.Module]:
    """Trained generators by name, in eval mode on ``device`` (committed ones downloaded if needed).

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
    committed = committed_files() if root is None else {}
    models = {}
    for name in names:
        if root is None and name in committed:
            path = weights_path(name, progress=False)  # hash checked, downloaded if needed
        else:
            path = found[name]
            _check_hash(path, name)
        models[name] = load_generator(path, device=device)
    return models


def learned_methods(names: str | Sequence[str] | None = None, device: str | torch.device = "cpu",
                    root: str | os.PathLike | None = None, fallback: Folders = None) -> dict:
    """Trained generators as evaluation methods ``{name: (x_damaged, mask) -> x_restored}``:
    ``net_G(x_damaged)`` without gradients on ``device``, the mask unused, the result back on the
    input's device (:func:`repair.methods.wrap_generator`). Same arguments as :func:`load_models`."""
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
            "val_psnr": metrics.get("val_psnr"),
            "val_psnr_damaged": metrics.get("val_psnr_damaged"),
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


def select_methods(names: list[str] | None = None, checkpoints: str | Path | None = None,
                   device: str = "cpu", extra: Mapping[str, Restorer] | None = None,
                   failed: dict[str, str] | None = None) -> dict[str, Restorer]:
    """The methods ``names`` asks for (``None``: every built-in, extra and trained one): built-in
    methods, ``extra`` and the trained generators found in ``checkpoints``
    (default: ``checkpoints/``, else ``$REPAIR_CHECKPOINTS``), only those asked for loaded onto
    ``device``. With a ``failed`` dict, a generator that cannot be loaded is recorded there
    (``{name: message}``) and left out; otherwise its error is raised.

    Raises:
        ValueError: a name that is none of these.
    """
    found = available_models(checkpoints)
    known = {**builtin_methods(), **(extra or {})}
    if names is None:
        wanted = [n for n in found if n not in known]
    else:
        unknown = [n for n in names if n not in known and n not in found]
        if unknown:
            raise ValueError(
                f"unknown method {', '.join(map(repr, unknown))}: choose from "
                f"{', '.join([*known, *found])} (trained generators come from "
                f"{checkpoints or 'checkpoints/ or $' + ENV_FALLBACK}; see --checkpoints)")
        wanted = [n for n in dict.fromkeys(names) if n in found and n not in known]
    learned: dict[str, Restorer] = {}
    for name in wanted:
        try:
            learned.update(learned_methods([name], device=device, root=checkpoints))
        except (ValueError, OSError, RuntimeError, KeyError, TypeError) as err:
            if failed is None:
                raise
            failed[name] = str(err)
    if names is not None:
        names = [n for n in names if n not in (failed or {})]
    return resolve_methods(names, extra={**learned, **(extra or {})})
