"""Download weights once, check their SHA-256, and keep them in a cache folder.

``fetch("ffhq-res256")`` looks the name up in :data:`REGISTRY`; ``fetch(url, sha256=...)`` takes any
``https://``, ``http://`` or ``file://`` URL. The file is streamed to a temporary file in the cache
folder, its hash checked, and only then renamed into place, so an interrupted download never
leaves a half file behind. Cache folder: ``$REPAIR_CACHE``, else ``~/.cache/repair``.

An entry whose ``sha256`` is None has no published hash: the first download is trusted and its
hash is printed so it can be recorded in the registry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "REGISTRY", "HashMismatchError", "cache_folder", "sha256_file", "fetch"]

_NVIDIA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NVIDIA_LICENCE = ("NVIDIA Source Code License-NC (non-commercial research use); converted to a "
                   "plain state_dict by repair.stylegan.convert_nvidia_pickle")


@dataclass(frozen=True)
class Entry:
    """One downloadable file: where it lives, its hash (None: not published) and what it is."""

    url: str
    sha256: str | None
    filename: str
    description: str


REGISTRY: dict[str, Entry] = {
    "ffhq-res256": Entry(
        _NVIDIA + "transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl", None,
        "ffhq-res256-mirror-paper256-noaug.pkl",
        "StyleGAN2 (stylegan2-ada-pytorch, paper256 config) on FFHQ at 256x256, RGB, 14 style "
        "inputs. " + _NVIDIA_LICENCE),
    "ffhq-res1024": Entry(
        _NVIDIA + "transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl", None,
        "ffhq-res1024-mirror-stylegan2-noaug.pkl",
        "StyleGAN2 config F on FFHQ at 1024x1024, RGB, 18 style inputs (the robust-inversion "
        "paper's generator). " + _NVIDIA_LICENCE),
    "ffhq-ada-1024": Entry(
        _NVIDIA + "ffhq.pkl", None, "ffhq.pkl",
        "StyleGAN2-ADA on FFHQ at 1024x1024, RGB, 18 style inputs. " + _NVIDIA_LICENCE),
}
"""Known weights. NVIDIA publishes no SHA-256 for these pickles, so ``sha256`` is None ("record on
first download"); chapter 03's checkpoints add their own entries with hashes."""


class HashMismatchError(ValueError):
    """A downloaded or cached file whose SHA-256 is not the expected one."""


def cache_folder(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path`` if given, else ``$REPAIR_CACHE``, else ``~/.cache/repair``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("REPAIR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "repair"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, destination: Path, progress: bool) -> str:
    """Stream ``url`` into ``destination``; return the SHA-256 of what was written."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "repair-course"})
    with urllib.request.urlopen(request) as response, open(destination, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name.lstrip("."),
                  disable=not progress) as bar:
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def fetch(name_or_url: str, sha256: str | None = None, cache_dir: str | os.PathLike | None = None,
          progress: bool = True, filename: str | None = None) -> Path:
    """The local path of a registered name or a URL, downloading and verifying it if needed.

    Args:
        name_or_url: a key of :data:`REGISTRY` or an ``https://``, ``http://`` or ``file://`` URL.
        sha256: expected hex digest (overrides the registry's); None = not checked, printed.
        cache_dir: folder to keep files in (default ``$REPAIR_CACHE`` or ``~/.cache/repair``).
        progress: show a download progress bar.
        filename: name in the cache (default: the registry's, else the URL's last part).

    Raises:
        HashMismatchError: the cached or downloaded file does not have the expected hash (the
            bad download is deleted; a bad cached file is left for you to remove).
        ValueError: an unknown name.
    """
    folder = cache_folder(cache_dir)
    if name_or_url in REGISTRY:
        entry = REGISTRY[name_or_url]
        url, sha256 = entry.url, sha256 or entry.sha256
        filename = filename or entry.filename
    elif "://" in name_or_url:
        url = name_or_url
        filename = filename or Path(urllib.parse.urlparse(url).path).name
    else:
        raise ValueError(f"{name_or_url!r} is neither a known weights name ({', '.join(REGISTRY)})"
                         " nor a URL")
    if not filename:
        raise ValueError(f"cannot tell a file name from {url!r}; pass filename=")
    sha256 = sha256.lower() if sha256 else None
    path = folder / filename
    if path.exists():
        if sha256 is not None and (found := sha256_file(path)) != sha256:
            raise HashMismatchError(
                f"{path}: cached file has SHA-256 {found}, expected {sha256}; it is corrupt or "
                "a different version: delete it and fetch again")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if urllib.parse.urlparse(url).scheme == "file":
            source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
            if not source.is_file():
                raise FileNotFoundError(f"{source}: no such file (from {url})")
            shutil.copyfile(source, tmp)
            found = sha256_file(tmp)
        else:
            found = _download(url, tmp, progress)
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
