"""The user's download cache of weights: where it is, a SHA-256 checked download into it, and the
error that says what to fetch by hand when there is no connection.

It knows URLs, file names and hashes, never model names (those are :mod:`repair.named_weights`'s):

* :func:`cache_folder`: ``$REPAIR_CACHE``, else the platform's user cache folder;
* :func:`fetch_url`: a file downloaded once into the cache (``https://``, ``http://`` or
  ``file://``), written to a temporary file beside its destination and renamed into place only
  once its hash is right, so an interrupted or corrupt download leaves nothing behind;
* :class:`HashMismatchError` (a file with another hash) and :class:`WeightsUnavailableError` (a
  download that cannot happen now: offline, or the file missing upstream).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["HashMismatchError", "WeightsUnavailableError", "cache_folder", "sha256_file",
           "fetch_url"]


class HashMismatchError(ValueError):
    """A downloaded, cached or committed file whose SHA-256 is not the expected one."""


class WeightsUnavailableError(FileNotFoundError):
    """Weights that are neither on disk nor downloadable from here (offline, or no URL)."""


def cache_folder(path: str | os.PathLike | None = None) -> Path:
    """The download cache: ``path`` if given, else ``$REPAIR_CACHE``, else the platform's user
    cache folder (``~/.cache/repair`` on Linux, ``~/Library/Caches/repair`` on macOS)."""
    if path is not None:
        return Path(path).expanduser()
    if env := os.environ.get("REPAIR_CACHE"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("repair", appauthor=False))


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


def fetch_url(url: str, sha256: str | None = None, cache_dir: str | os.PathLike | None = None,
              progress: bool = True, filename: str | None = None) -> Path:
    """The cached copy of the file at ``url``, downloaded and checked if it is not there yet.

    Args:
        url: an ``https://``, ``http://`` or ``file://`` URL.
        sha256: expected hex digest; None = not checked, printed (to be recorded).
        cache_dir: where to keep files (default :func:`cache_folder`).
        progress: show a download progress bar.
        filename: name in the cache (default: the URL's last part).

    Raises:
        HashMismatchError: the cached or downloaded file has another hash (a bad download is
            deleted; a bad cached file is left for you to remove).
        WeightsUnavailableError: the download failed (offline, missing file); says what to fetch.
        ValueError: no file name in the URL and none given.
    """
    filename = filename or Path(urllib.parse.urlparse(url).path).name
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
