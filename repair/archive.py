"""Daguerreotypes from loc.gov on disk: each image with a JSON sidecar of title, date and rights.

:func:`download_daguerreotypes` is the ``repair fetch-loc`` task: it walks the collection
(:mod:`repair.loc`), picks one file per item, and writes ``<id>_<size>.<ext>`` and
``<id>_<size>.json`` into a folder that doubles as the cache (files already there are not fetched
again). Every file is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from repair.images import atomic_write_bytes
from repair.loc import COLLECTION_URL, NAMED_SIZES, LocItem, get_item, iter_items, pick_image
from repair.web import Client, HttpClient, LocError

__all__ = ["LocImageError", "default_cache_dir", "download_item", "read_metadata",
           "download_daguerreotypes"]


class LocImageError(LocError, ValueError):
    """Downloaded bytes are not a readable image (e.g. an HTML error page)."""


def default_cache_dir() -> Path:
    """``$REPAIR_CACHE/loc`` if ``$REPAIR_CACHE`` is set, else ``~/.cache/repair/loc``."""
    root = os.environ.get("REPAIR_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "repair") / "loc"


def _size_tag(max_size: int | None, size: str | None) -> str:
    if size is not None:
        return size
    return "full" if max_size is None else f"max{max_size}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "item"


def _image_size(data: bytes, url: str) -> tuple[int, int]:
    """(width, height) of encoded image ``data``; :class:`LocImageError` if it is no image."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise LocImageError(f"{url} did not return a readable image ({len(data)} bytes, starts "
                            f"{data[:40]!r}); it may be an error page - try again later") from err


def download_item(item: LocItem, out_dir: str | Path | None = None, max_size: int | None = 1024,
                  size: str | None = None, mimetypes: tuple[str, ...] = ("image/jpeg",),
                  client: Client | None = None, overwrite: bool = False) -> Path:
    """Download one item's image (unless cached) and write a JSON sidecar with its metadata.

    Files are ``<out_dir>/<id>_<size>.<ext>`` and ``<out_dir>/<id>_<size>.json``, where size is
    the name or ``max<pixels>``; each is written to a temporary file and renamed.

    Args:
        item: from :func:`list_items` or :func:`get_item`.
        out_dir: destination folder; default :func:`default_cache_dir`.
        max_size, size, mimetypes: which file to take, see :func:`pick_image`.
        client: network layer; default :class:`HttpClient`.
        overwrite: download again even if the image is already there.

    Returns:
        Path of the image file.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = pick_image(item.images, max_size, size, mimetypes)
    ext = os.path.splitext(urlsplit(ref.url).path)[1].lower() or ".jpg"
    stem = f"{_safe(item.id)}_{_size_tag(max_size, size)}"
    path, sidecar = out_dir / f"{stem}{ext}", out_dir / f"{stem}.json"
    if path.exists() and sidecar.exists() and not overwrite:
        return path
    data = (client or HttpClient()).fetch_bytes(ref.url)
    width, height = _image_size(data, ref.url)
    meta = {
        "id": item.id, "title": item.title, "date": item.date, "rights": item.rights,
        "item_url": item.item_url, "image_url": ref.url, "width": width, "height": height,
        "listed_size": [ref.width, ref.height], "mimetype": ref.mimetype,
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "source": "Library of Congress, Prints and Photographs Division, Daguerreotype collection",
        "collection_url": COLLECTION_URL,
        "retrieved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra": item.extra,
    }
    atomic_write_bytes(path, data)
    atomic_write_bytes(sidecar, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def read_metadata(image_path: str | Path) -> dict:
    """The JSON sidecar written next to an image by :func:`download_item`."""
    sidecar = Path(image_path).with_suffix(".json")
    if not sidecar.exists():
        raise FileNotFoundError(f"no metadata sidecar {sidecar}; download the image with "
                                "repair.archive.download_item or download_daguerreotypes")
    return json.loads(sidecar.read_text(encoding="utf-8"))


def download_daguerreotypes(out_dir: str | Path | None = None, limit: int = 10,
                            max_size: int | None = 1024, size: str | None = None,
                            details: bool = True, per_page: int = 25,
                            client: Client | None = None, overwrite: bool = False,
                            progress: bool = True) -> list[Path]:
    """Download up to ``limit`` daguerreotypes with JSON sidecars (the ``repair fetch-loc`` task).

    Args:
        out_dir: destination folder; default :func:`default_cache_dir`.
        limit: number of items to fetch (>= 1).
        max_size, size: which file to take per item, see :func:`pick_image`.
        details: also read each item page (all sizes, full rights statement) - one more request
            per item that is not yet cached; with False only the listing is used.
        per_page: listing results per request.
        client: network layer; default :class:`HttpClient` (1 s between requests).
        overwrite: download again even when cached.
        progress: show a progress bar.

    Returns:
        Paths of the images, in collection order.
    """
    from tqdm.auto import tqdm

    if limit < 1:
        raise ValueError(f"limit={limit} must be >= 1")
    client = client or HttpClient()
    out_dir = Path(out_dir) if out_dir is not None else default_cache_dir()
    if size is not None and size not in NAMED_SIZES:
        raise ValueError(f"size={size!r} is not one of {sorted(NAMED_SIZES)}")
    tag = _size_tag(max_size, size)
    paths = []
    items = iter_items(limit, per_page, client)
    for item in tqdm(items, total=limit, desc="daguerreotypes", disable=not progress):
        cached = sorted(p for p in out_dir.glob(f"{_safe(item.id)}_{tag}.*") if p.suffix != ".json")
        if cached and not overwrite and cached[0].with_suffix(".json").exists():
            paths.append(cached[0])
            continue
        if details:
            item = get_item(item.id, client)
        paths.append(download_item(item, out_dir, max_size, size, client=client,
                                   overwrite=overwrite))
    return paths
