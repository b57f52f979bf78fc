"""Trained weights by name: the one place that turns a name into a file and a network.

**Where a name's weights come from** (:func:`weights_path`, used by everything below):

1. ``checkpoints/`` of the repository, when the package runs from a clone (:data:`COMMITTED`);
2. the copy inside the installed package (``repair/weights/``): the default restorer
   ``restorer-book`` and ``MANIFEST.json`` ship in the wheel, so ``repair restore`` works anywhere;
3. the user cache (``$REPAIR_CACHE``, default the platform cache folder, see
   :func:`cache_folder`), filled once from the repository's address (:data:`REPOSITORY`, or the
   mirror ``$REPAIR_WEIGHTS_URL``) or the entry's own URL, SHA-256 checked, written atomically.

The names are those of ``checkpoints/MANIFEST.json`` (restorers), :data:`COMMITTED_OTHER`
(committed weights of other kinds) and :data:`REGISTRY` (downloads such as NVIDIA's StyleGAN2).

**Comparing generators**: :func:`available_models` lists the restorers of a *root* folder (default:
the committed ones), :func:`load_models` / :func:`learned_methods` load them. A root without
``MANIFEST.json`` counts every ``*.pt`` in it and every run folder ``<root>/<name>/G_best.pt``;
only restoring generators of :data:`repair.nets.GENERATORS` count. When the root holds none, the
``fallback`` folders (default ``$REPAIR_CHECKPOINTS``, separated by ``os.pathsep``) are searched::

    weights_path("pix2pix-book")                 # Path(.../pix2pix-book.pt), downloaded if needed
    methods = learned_methods(["pix2pix-book"])  # {"pix2pix-book": (x_damaged, mask) -> x_restored}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


__all__ = ["REPOSITORY", "BRANCH", "COMMITTED", "PACKAGED", "ENV_FALLBACK", "RUN_FILE",
           "PAPER_RUNS", "Entry", "WeightsEntry", "WEIGHTS", "REGISTRY", "COMMITTED_OTHER",
           "HashMismatchError", "WeightsUnavailableError", "UnknownModelError", "committed_folder",
           "cache_folder", "weights_url", "sha256_file", "fetch", "manifest", "weights_registry",
           "weights_path", "pretrained", "models_in", "available_models", "load_models",
           "learned_methods", "model_info", "epoch_history", "profile_folder"]

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
ENV_FALLBACK = "REPAIR_CHECKPOINTS"
RUN_FILE = "G_best.pt"  # the generator-only checkpoint a training run keeps for its best epoch
PAPER_RUNS = Path("runs/03")  # where chapter 03 trains (its OUT), relative to notebooks/
Entry = WeightsEntry  # the name repair.registry used

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


class HashMismatchError(ValueError):
    """A downloaded, cached or committed file whose SHA-256 is not the expected one."""


class WeightsUnavailableError(FileNotFoundError):
    """Weights that are neither on disk nor downloadable from here (offline, or no URL)."""


class UnknownModelError(ValueError):
    """A model name that is not among the generators found on disk."""


# ---------------------------------------------------------------- files, hashes, downloads


def cache_folder(path: str | os.PathLike | None = None) -> Path:
    """The download cache: ``path`` if given, else ``$REPAIR_CACHE``, else the platform's user
    cache folder (``~/.cache/repair`` on Linux, ``~/Library/Caches/repair`` on macOS)."""
    if path is not None:
        return Path(path).expanduser()
    if env := os.environ.get("REPAIR_CACHE"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("repair", appauthor=False))


def weights_url(filename: str) -> str:
    """Where a committed file downloads from: ``$REPAIR_WEIGHTS_URL`` (a mirror folder) + name,
    else the file in ``checkpoints/`` of :data:`REPOSITORY` at :data:`BRANCH`."""
    base = os.environ.get("REPAIR_WEIGHTS_URL") or f"{REPOSITORY}/raw/{BRANCH}/checkpoints/"
    return base.rstrip("/") + "/" + urllib.parse.quote(filename)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, destination: Path, progress: bool) -> str:
    """Stream ``url`` (``http(s)://`` or ``file://``) into ``destination``; return its SHA-256."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "repair-course"})
    with urllib.request.urlopen(request, timeout=60) as response, open(destination, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name.lstrip("."),
                  disable=not progress) as bar:
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def _unavailable(url: str, path: Path, sha256: str | None, err: Exception
                 ) -> WeightsUnavailableError:
    if isinstance(err, urllib.error.HTTPError):
        reason = f"HTTP {err.code} {err.reason}"
    else:
        reason = f"{getattr(err, 'reason', err)}; offline?"
    check = f" (SHA-256 {sha256})" if sha256 else ""
    return WeightsUnavailableError(
        f"could not fetch {url} ({reason}). Download that file where there is a connection and "
        f"put it at {path}{check}, or set REPAIR_CACHE to a folder that holds {path.name}, or "
        "REPAIR_WEIGHTS_URL to a mirror of the repository's checkpoints/")


def fetch(name_or_url: str, sha256: str | None = None, cache_dir: str | os.PathLike | None = None,
          progress: bool = True, filename: str | None = None) -> Path:
    """The cached file of a :data:`REGISTRY` name or a URL, downloaded and checked if needed.

    The download goes to a temporary file beside its destination and is renamed into place only
    once its hash is right: an interrupted or corrupt download leaves nothing behind.

    Args:
        name_or_url: a key of :data:`REGISTRY` or an ``https://``, ``http://`` or ``file://`` URL.
        sha256: expected hex digest (overrides the registry's); None = not checked, printed.
        cache_dir: where to keep files (default :func:`cache_folder`).
        progress: show a download progress bar.
        filename: name in the cache (default: the registry's, else the URL's last part).

    Raises:
        HashMismatchError: the cached or downloaded file has another hash (a bad download is
            deleted; a bad cached file is left for you to remove).
        WeightsUnavailableError: the download failed (offline, missing file); says what to fetch.
        ValueError: an unknown name.
    """
    if name_or_url in REGISTRY:
        entry = REGISTRY[name_or_url]
        url, sha256, filename = entry.url, sha256 or entry.sha256, filename or entry.filename
    elif "://" in name_or_url:
        url = name_or_url
        filename = filename or Path(urllib.parse.urlparse(url).path).name
    else:
        raise ValueError(f"{name_or_url!r} is neither a known weights name ({', '.join(REGISTRY)})"
                         " nor a URL")
    if not filename:
        raise ValueError(f"cannot tell a file name from {url!r}; pass filename=")
    sha256 = sha256.lower() if sha256 else None
    folder = cache_folder(cache_dir)
    path = folder / filename
    if path.exists():
        if sha256 is not None and (found := sha256_file(path)) != sha256:
            raise HashMismatchError(f"{path}: cached file has SHA-256 {found}, expected "
                                    f"{sha256}; it is corrupt or a different version: delete it "
                                    "and fetch again")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            found = _download(url, tmp, progress)
        except (urllib.error.URLError, OSError) as err:  # offline, 404, refused, missing file://
            raise _unavailable(url, path, sha256, err) from None
        if sha256 is not None and found != sha256:
            raise HashMismatchError(
                f"{url}: downloaded file has SHA-256 {found}, expected {sha256}; the download "
                "was corrupted or the file changed upstream (nothing was kept): try again, or "
                "check the registry entry")
        if sha256 is None and progress:
            print(f"{filename}: SHA-256 {found} (no published hash; record this one)")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------- names -> files


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
    return fetch(entry.url, entry.sha256, cache_dir, progress=progress, filename=entry.filename)


def pretrained(name: str, device: str | torch.device = "cpu",
               registry: dict[str, WeightsEntry] | None = None,
               cache_dir: str | os.PathLike | None = None,
               folder: str | os.PathLike | None = None, progress: bool = False) -> torch.nn.Module:
    """A trained generator by name (:func:`weights_path`, then ``load_generator``), in eval mode."""
    from repair.checkpoint import load_generator

    return load_generator(weights_path(name, registry, cache_dir, folder, progress), device)


# ---------------------------------------------------------------- generators to compare


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
    if listed:
        found = {name: folder / entry["file"] for name, entry in listed.items()
                 if "file" in entry and (folder / entry["file"]).is_file()}
    else:
        found = {path.stem: path for path in sorted(folder.glob("*.pt")) if path.is_file()}
        for path in sorted(folder.glob(f"*/{RUN_FILE}")):
            found.setdefault(path.parent.name, path)
        found = dict(sorted(found.items()))
    return {name: path for name, path in found.items() if _is_restorer(path)}


def _committed_models() -> dict[str, Path]:
    """Every committed restorer by name: its file where it is, else where the cache will keep it."""
    found = {}
    for name, entry in manifest(COMMITTED).items():
        local = [p / entry["file"] for p in (COMMITTED, PACKAGED) if (p / entry["file"]).is_file()]
        path = local[0] if local else cache_folder() / entry["file"]
        if not path.is_file() or _is_restorer(path):
            found[name] = path
    return found


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
    found = _committed_models() if root is None else models_in(root)
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
    committed = manifest(COMMITTED) if root is None else {}
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
    input's device. Same arguments as :func:`load_models`."""

    def method(net_G: torch.nn.Module):
        def restore(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            with torch.no_grad():
                return net_G(x_damaged.to(device)).to(x_damaged.device)

        return restore

    return {name: method(net_G.to(device).eval())
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

