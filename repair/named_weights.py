"""Weights by name: the tables of published weights, and the one place that turns a name into a
checked local file and a network.

**Where a name's weights come from** (:func:`weights_path`, used by :func:`pretrained` and by
:mod:`repair.zoo`):

1. ``checkpoints/`` of the repository, when the package runs from a clone (:data:`COMMITTED`);
2. the copy inside the installed package (``repair/weights/``): the default restorer
   ``restorer-book`` and ``MANIFEST.json`` ship in the wheel, so ``repair restore`` works anywhere;
3. the user cache of :mod:`repair.weights_cache` (``$REPAIR_CACHE``), filled once from the
   repository's address (:data:`REPOSITORY`, or the mirror ``$REPAIR_WEIGHTS_URL``, see
   :func:`weights_url`) or the entry's own URL, SHA-256 checked, written atomically.

The names are those of ``checkpoints/MANIFEST.json`` (restorers, :func:`manifest`),
:data:`WEIGHTS` (restorers published elsewhere), :data:`COMMITTED_OTHER` (committed weights of
other kinds) and :data:`REGISTRY` (downloads such as NVIDIA's StyleGAN2)::

    weights_path("pix2pix-book")     # Path(.../pix2pix-book.pt), downloaded if needed
    net_G = pretrained("pix2pix-book")
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch

from repair.weights_cache import (HashMismatchError, WeightsUnavailableError, cache_folder,
                                  fetch_url, sha256_file)

__all__ = ["REPOSITORY", "BRANCH", "COMMITTED", "PACKAGED", "WeightsEntry", "WEIGHTS", "REGISTRY",
           "COMMITTED_OTHER", "committed_folder", "weights_url", "fetch", "manifest",
           "weights_registry", "committed_files", "weights_path", "pretrained"]

REPOSITORY = "https://github.com/repair-course/repair"
"""The course's repository (``repository.url`` of ``_config.yml``; a test checks they agree)."""
BRANCH = "main"
PACKAGED = Path(__file__).resolve().parent / "weights"   # in a wheel: MANIFEST.json + restorer-book


@dataclass(frozen=True)
class WeightsEntry:
    """Published generator weights: where to download them (None: only committed) and their hash."""

    url: str | None
    sha256: str
    filename: str
    description: str


WEIGHTS: dict[str, WeightsEntry] = {}
"""Generator weights to download, by name (the committed ones are listed in
``checkpoints/MANIFEST.json`` and added by :func:`weights_registry`). To publish weights trained on
a GPU: upload the run's ``G_best.pt``, then add
``WEIGHTS[name] = WeightsEntry(url, sha256_file(path), filename, description)``."""


def committed_folder() -> Path:
    """``checkpoints/`` of the repository when running from a clone, else the weights shipped
    inside the installed package (``repair/weights/``)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "checkpoints").is_dir():
        return root / "checkpoints"
    return PACKAGED


COMMITTED = committed_folder()

_NVIDIA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NVIDIA_LICENCE = ("NVIDIA Source Code License-NC (non-commercial research use); converted to a "
                   "plain state_dict by repair.stylegan.convert_nvidia_pickle")
REGISTRY: dict[str, WeightsEntry] = {
    "ffhq-res256": WeightsEntry(
        _NVIDIA + "transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl", None,
        "ffhq-res256-mirror-paper256-noaug.pkl",
        "StyleGAN2 (stylegan2-ada-pytorch, paper256 config) on FFHQ at 256x256, RGB, 14 style "
        "inputs. " + _NVIDIA_LICENCE),
    "ffhq-res1024": WeightsEntry(
        _NVIDIA + "transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl", None,
        "ffhq-res1024-mirror-stylegan2-noaug.pkl",
        "StyleGAN2 config F on FFHQ at 1024x1024, RGB, 18 style inputs (the robust-inversion "
        "paper's generator). " + _NVIDIA_LICENCE),
    "ffhq-ada-1024": WeightsEntry(
        _NVIDIA + "ffhq.pkl", None, "ffhq.pkl",
        "StyleGAN2-ADA on FFHQ at 1024x1024, RGB, 18 style inputs. " + _NVIDIA_LICENCE),
}
"""Downloads that are not committed. NVIDIA publishes no SHA-256 for these pickles, so ``sha256``
is None: the first download is trusted and its hash printed, to be recorded here."""

COMMITTED_OTHER: dict[str, WeightsEntry] = {
    "stylegan-faces64": WeightsEntry(
        None, "ac45932009a9be9645697e81e108b2b4897ad9c2588a8d8270926cdc1ddd2430",
        "stylegan-faces64.pt", "chapter 05's 64x64 grayscale faces StyleGAN2 (checkpoints/"
        "STYLEGAN.md)"),
}
"""Committed weights that are not restorers (so not in ``MANIFEST.json``'s table of restorers)."""


def weights_url(filename: str) -> str:
    """Where a committed file downloads from: ``$REPAIR_WEIGHTS_URL`` (a mirror folder) + name,
    else the file in ``checkpoints/`` of :data:`REPOSITORY` at :data:`BRANCH`."""
    base = os.environ.get("REPAIR_WEIGHTS_URL") or f"{REPOSITORY}/raw/{BRANCH}/checkpoints/"
    return base.rstrip("/") + "/" + urllib.parse.quote(filename)


def fetch(name_or_url: str, sha256: str | None = None, cache_dir: str | os.PathLike | None = None,
          progress: bool = True, filename: str | None = None) -> Path:
    """The cached file of a :data:`REGISTRY` name or a URL, downloaded and checked if needed
    (:func:`repair.weights_cache.fetch_url`).

    Args:
        name_or_url: a key of :data:`REGISTRY` or an ``https://``, ``http://`` or ``file://`` URL.
        sha256: expected hex digest (overrides the registry's); None = not checked, printed.
        cache_dir: where to keep files (default :func:`repair.weights_cache.cache_folder`).
        progress: show a download progress bar.
        filename: name in the cache (default: the registry's, else the URL's last part).

    Raises:
        HashMismatchError, WeightsUnavailableError: see :func:`repair.weights_cache.fetch_url`.
        ValueError: an unknown name.
    """
    if name_or_url in REGISTRY:
        entry = REGISTRY[name_or_url]
        return fetch_url(entry.url, sha256 or entry.sha256, cache_dir, progress,
                         filename or entry.filename)
    if "://" not in name_or_url:
        raise ValueError(f"{name_or_url!r} is neither a known weights name ({', '.join(REGISTRY)})"
                         " nor a URL")
    return fetch_url(name_or_url, sha256, cache_dir, progress, filename)


def manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The ``weights`` entries of ``folder/MANIFEST.json`` by name (empty if there is none)."""
    path = Path(folder) / "MANIFEST.json"
    if not path.is_file():
        return {}
    try:
        weights = json.loads(path.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a readable checkpoint manifest ({err}); it needs a "
                         "'weights' object {name: {'file': ..., 'sha256': ...}}") from None
    return {str(name): entry for name, entry in weights.items()}


def weights_registry(folder: str | os.PathLike | None = None) -> dict[str, WeightsEntry]:
    """The restorers known by name: those of ``folder/MANIFEST.json`` (default: the committed
    ones, downloadable from :data:`REPOSITORY` when not on disk) and :data:`WEIGHTS`;
    with ``folder`` given, its manifest's own URLs only."""

    default = folder is None
    entries = {}
    for name, item in manifest(COMMITTED if default else folder).items():
        url = item.get("url") or (weights_url(item["file"]) if default else None)
        entries[name] = WeightsEntry(url, item["sha256"], item["file"], item.get("description", ""))
    return {**entries, **WEIGHTS}


def _every_name() -> dict[str, WeightsEntry]:
    """The restorers, the other committed weights and the :data:`REGISTRY` downloads."""
    other = {name: WeightsEntry(e.url or weights_url(e.filename), e.sha256, e.filename,
                                e.description) for name, e in COMMITTED_OTHER.items()}
    return {**weights_registry(), **other, **REGISTRY}


def committed_files() -> dict[str, Path]:
    """Every restorer of the committed ``MANIFEST.json`` by name: its file in ``checkpoints/`` or
    in the package, else the path the cache will give it (nothing is read or downloaded)."""
    found = {}
    for name, entry in manifest(COMMITTED).items():
        local = [p / entry["file"] for p in (COMMITTED, PACKAGED) if (p / entry["file"]).is_file()]
        found[name] = local[0] if local else cache_folder() / entry["file"]
    return found


def weights_path(name: str, registry: dict[str, WeightsEntry] | None = None,
                 cache_dir: str | os.PathLike | None = None,
                 folder: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The local file of the weights called ``name``, its SHA-256 checked: committed, shipped in
    the package, or downloaded once into the cache (see the module's docstring).

    Args:
        name: a key of ``registry`` (default: :func:`weights_registry`, :data:`COMMITTED_OTHER`
            and :data:`REGISTRY`), e.g. ``"pix2pix-book"``, ``"stylegan-faces64"``.
        registry: name -> :class:`WeightsEntry` (for tests and private collections).
        cache_dir: download cache (default :func:`cache_folder`).
        folder: where committed files live (default: ``checkpoints/``, then the package's copy).
        progress: show a download progress bar.

    Raises:
        ValueError: an unknown name. HashMismatchError: a file with the wrong hash.
        WeightsUnavailableError: weights not on disk that cannot be downloaded now.
    """
    if registry is None:
        registry = _every_name() if folder is None else weights_registry(folder)
    if name not in registry:
        known = ", ".join(registry) or "(none)"
        raise ValueError(f"unknown weights {name!r}: choose one of {known} or load a file with "
                         "repair.checkpoint.load_generator(path)")
    entry = registry[name]
    places = [Path(folder)] if folder is not None else list(dict.fromkeys([COMMITTED, PACKAGED]))
    for local in (place / entry.filename for place in places):
        if local.is_file():
            if entry.sha256 and (found := sha256_file(local)) != entry.sha256:
                raise HashMismatchError(f"{local}: SHA-256 {found}, expected {entry.sha256}; the "
                                        "committed file was changed: restore it or update the "
                                        "manifest")
            return local
    if entry.url is None:
        raise WeightsUnavailableError(f"{places[0] / entry.filename}: the weights {name!r} are "
                                      "not here and have no download URL; train them with "
                                      "`repair train`")
    return fetch_url(entry.url, entry.sha256, cache_dir, progress, entry.filename)


def pretrained(name: str, device: str | torch.device = "cpu",
               registry: dict[str, WeightsEntry] | None = None,
               cache_dir: str | os.PathLike | None = None,
               folder: str | os.PathLike | None = None, progress: bool = False) -> torch.nn.Module:
    """A trained generator by name (:func:`weights_path`, then ``load_generator``), in eval mode."""
    from repair.checkpoint import load_generator

    return load_generator(weights_path(name, registry, cache_dir, folder, progress), device)
