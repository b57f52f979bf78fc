"""A small, polite client for the Library of Congress Daguerreotypes collection (loc.gov JSON API).

Every loc.gov page answers with JSON when ``fo=json`` is added to its address
(https://www.loc.gov/apis/json-and-yaml/). Two kinds of answer are used here:

* the collection listing ``https://www.loc.gov/collections/daguerreotypes/?fo=json&c=25&sp=1``:
  ``results`` (one record per item: ``id``, ``url``, ``title``, ``date``, ``image_url`` a list of
  addresses of the same picture at several sizes, each ending in ``#h=<height>&w=<width>``, and an
  ``item`` object with ``rights_advisory`` ...) and ``pagination`` (``current``, ``total`` pages,
  ``of`` results, ``perpage``, ``next``/``previous`` page addresses or ``null``);
* an item page ``https://www.loc.gov/item/<id>/?fo=json``: ``item`` (``title``, ``date``,
  ``rights_advisory``, ``rights_information``, ``rights`` ...) and ``resources``, whose ``files`` is
  a list (one per page of the item) of lists of file variants with ``url``, ``mimetype`` and,
  usually, ``width``/``height`` (up to the master TIFF).

This module reads the catalogue (listings, item records, which file to take); the network layer
is :mod:`repair.web` (every function takes a ``client``: :class:`repair.web.HttpClient` by
default, :class:`repair.web.RecordedClient` offline) and the downloads to disk are
:mod:`repair.archive`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

from repair.web import Client, HttpClient, LocError, absolute_url

__all__ = [
    "COLLECTION_URL", "NAMED_SIZES", "ImageRef", "LocItem", "collection_page_url",
    "item_json_url", "parse_result", "parse_item", "image_refs", "pick_image", "iter_items",
    "list_items", "get_item",
]

COLLECTION_URL = "https://www.loc.gov/collections/daguerreotypes/"
ITEM_URL = "https://www.loc.gov/item/{id}/"
# Long side in pixels for the size names; P&P derivatives are 150 px ("_150px.jpg"), 640 px
# ("r.jpg") and 1024 px ("v.jpg"); "full" is the largest file of an allowed type.
NAMED_SIZES: dict[str, int | None] = {"thumb": 150, "medium": 640, "large": 1024, "full": None}
_MIMETYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
              ".tif": "image/tiff", ".tiff": "image/tiff", ".jp2": "image/jp2"}


@dataclass(frozen=True)
class ImageRef:
    """One downloadable file of an item: address, size in pixels (0 if unknown), MIME type."""

    url: str
    width: int = 0
    height: int = 0
    mimetype: str = ""

    @property
    def long_side(self) -> int:
        """The longer side in pixels (0 if unknown)."""
        return max(self.width, self.height)


@dataclass(frozen=True)
class LocItem:
    """The metadata of one collection item that a download needs."""

    id: str  # e.g. "2004664512"
    title: str
    date: str | None
    item_url: str  # https://www.loc.gov/item/<id>/
    images: tuple[ImageRef, ...]
    rights: str | None = None  # rights advisory, e.g. "No known restrictions on publication."
    extra: dict = field(default_factory=dict, compare=False)  # contributors, medium, ...


def collection_page_url(page: int = 1, per_page: int = 25,
                        collection_url: str = COLLECTION_URL) -> str:
    """JSON address of one page of a collection listing (only ``results`` and ``pagination``)."""
    params = {"fo": "json", "c": per_page, "sp": page, "at": "results,pagination"}
    query = urlencode(params, safe=",")  # loc.gov writes the comma unescaped
    return f"{collection_url}?{query}"


def item_json_url(item_id: str) -> str:
    """JSON address of an item page, from its id (``"2004664512"``) or its loc.gov address."""
    return f"{ITEM_URL.format(id=_item_id(item_id))}?fo=json"


def _item_id(value: str) -> str:
    """The identifier at the end of ``http://www.loc.gov/item/<id>/`` (or ``value`` itself)."""
    match = re.search(r"/(?:item|resource)/([^/?#]+)", value)
    return match.group(1) if match else value.strip("/")


def _first(value: Any) -> Any:
    """loc.gov fields are strings or lists of strings: the first string, or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value or None


def _mimetype(url: str) -> str:
    return _MIMETYPES.get(os.path.splitext(urlsplit(url).path)[1].lower(), "")


def _ref_from_url(url: str) -> ImageRef:
    """An ``image_url`` entry such as ``//tile.loc.gov/.../3g09009v.jpg#h=1024&w=817``."""
    fragment = dict(parse_qsl(urlsplit(url).fragment))
    clean = absolute_url(url.split("#", 1)[0])
    return ImageRef(clean, int(fragment.get("w", 0) or 0), int(fragment.get("h", 0) or 0),
                    _mimetype(clean))


def image_refs(image_url: list[str] | None = None,
               resources: list[dict] | None = None) -> list[ImageRef]:
    """All distinct image files of an item, from ``image_url`` and/or ``resources[].files``.

    A file listed twice (once without size) keeps the entry that knows its size.
    """
    refs: dict[str, ImageRef] = {}

    def add(ref: ImageRef) -> None:
        """Keep ``ref``, or the larger of two files at the same address."""
        if ref.url and (ref.url not in refs or refs[ref.url].long_side < ref.long_side):
            refs[ref.url] = ref

    for url in image_url or []:
        add(_ref_from_url(url))
    for resource in resources or []:
        files = resource.get("files")  # item pages: lists of variants; listings: a count
        for page in files if isinstance(files, list) else []:
            for f in page if isinstance(page, list) else [page]:
                url = absolute_url(f.get("url") or "")
                add(ImageRef(url, int(f.get("width") or 0), int(f.get("height") or 0),
                             f.get("mimetype") or _mimetype(url)))
    return list(refs.values())


def pick_image(images: list[ImageRef] | tuple[ImageRef, ...], max_size: int | None = 1024,
               size: str | None = None, mimetypes: tuple[str, ...] = ("image/jpeg",)) -> ImageRef:
    """The largest file of an allowed type whose long side is at most ``max_size``.

    Args:
        images: candidates, e.g. ``LocItem.images``.
        max_size: long-side limit in pixels; ``None`` takes the largest file.
        size: a name from :data:`NAMED_SIZES` (``"thumb"``, ``"medium"``, ``"large"``,
            ``"full"``); overrides ``max_size``.
        mimetypes: allowed types (add ``"image/tiff"`` for master scans, often 50-150 MB).

    If no file fits under ``max_size``, the smallest one of known size is returned.
    """
    if size is not None:
        if size not in NAMED_SIZES:
            raise ValueError(f"size={size!r} is not one of {sorted(NAMED_SIZES)}")
        max_size = NAMED_SIZES[size]
    allowed = [ref for ref in images if ref.mimetype in mimetypes]
    if not allowed:
        found = sorted({ref.mimetype or "unknown" for ref in images})
        raise LocError(f"no image of type {list(mimetypes)} among {len(images)} files "
                       f"(types found: {found}); pass mimetypes=... to allow others")
    sized = [ref for ref in allowed if ref.long_side > 0] or allowed
    fits = [ref for ref in sized if max_size is None or ref.long_side <= max_size]
    if fits:
        return max(fits, key=lambda ref: ref.long_side)
    return min(sized, key=lambda ref: ref.long_side)


def parse_result(result: dict) -> LocItem | None:
    """A :class:`LocItem` from one entry of a listing's ``results``; None if it has no image.

    Collection-level records, web pages, access-restricted items and items without ``image_url``
    are skipped.
    """
    formats = [str(f).lower() for f in result.get("original_format") or []]
    if "collection" in formats or "web page" in formats or result.get("access_restricted"):
        return None
    images = image_refs(result.get("image_url"))
    if not images:
        return None
    item = result.get("item") or {}
    item_id = _item_id(result.get("id") or result.get("url") or "")
    return LocItem(
        id=item_id, title=str(result.get("title") or item.get("title") or item_id),
        date=_first(result.get("date") or item.get("date")),
        item_url=ITEM_URL.format(id=item_id), images=tuple(images),
        rights=_first(item.get("rights_advisory") or item.get("rights_information")),
        extra={"contributors": result.get("contributor") or [],
               "medium": _first(item.get("medium"))},
    )


def parse_item(data: dict) -> LocItem:
    """A :class:`LocItem` from an item page's JSON (``https://www.loc.gov/item/<id>/?fo=json``)."""
    item = data.get("item")
    if not isinstance(item, dict):
        raise LocError("not an item page: the JSON has no 'item' object (use /item/<id>/?fo=json)")
    item_id = _item_id(item.get("id") or item.get("url") or data.get("url") or "")
    images = image_refs(data.get("image_url") or item.get("image_url"), data.get("resources"))
    return LocItem(
        id=item_id, title=str(item.get("title") or item_id), date=_first(item.get("date")),
        item_url=ITEM_URL.format(id=item_id), images=tuple(images),
        rights=_first(item.get("rights_advisory") or item.get("rights_information")),
        extra={
            "contributors": item.get("contributor_names") or item.get("contributors") or [],
            "medium": _first(item.get("medium")),
            "rights_information": _first(item.get("rights_information")),
            "reproduction_number": _first(item.get("reproduction_number")),
            "call_number": _first(item.get("call_number")),
        },
    )


def iter_items(limit: int | None = None, per_page: int = 25, client: Client | None = None,
               collection_url: str = COLLECTION_URL) -> Iterator[LocItem]:
    """Items of a collection with at least one image, page by page, following ``pagination.next``.

    Args:
        limit: stop after this many items (None: all of them).
        per_page: results per request (25 is the site's default).
        client: network layer; default :class:`HttpClient`.
        collection_url: another loc.gov collection (or search) address.
    """
    client = client or HttpClient()
    url: str | None = collection_page_url(1, per_page, collection_url)
    count = 0
    seen: set[str] = set()
    while url and (limit is None or count < limit):
        page = client.fetch_json(absolute_url(url))
        if "results" not in page:
            raise LocError(f"{url} has no 'results': is it a collection or search address?")
        for result in page["results"]:
            parsed = parse_result(result)
            if parsed is None or parsed.id in seen:
                continue
            seen.add(parsed.id)
            yield parsed
            count += 1
            if limit is not None and count >= limit:
                return
        next_url = (page.get("pagination") or {}).get("next")
        url = next_url if next_url and next_url != url else None


def list_items(limit: int | None = None, per_page: int = 25, client: Client | None = None,
               collection_url: str = COLLECTION_URL) -> list[LocItem]:
    """:func:`iter_items` as a list."""
    return list(iter_items(limit, per_page, client, collection_url))


def get_item(item_id: str, client: Client | None = None) -> LocItem:
    """An item's full record (all file sizes, rights), from its id or loc.gov address."""
    return parse_item((client or HttpClient()).fetch_json(item_json_url(item_id)))


