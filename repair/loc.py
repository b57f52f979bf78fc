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

The network layer is injectable: every function takes a ``client`` with ``fetch_json(url)`` and
``fetch_bytes(url)`` methods. :class:`HttpClient` (the default) sends a User-Agent, waits between
requests, and retries with exponential back-off; :class:`RecordedClient` answers from recorded
responses, which is what the tests and the offline (``tiny``) notebook runs use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "COLLECTION_URL", "USER_AGENT", "NAMED_SIZES", "LocError", "LocHTTPError", "LocImageError",
    "ImageRef", "LocItem", "Client", "HttpClient", "RecordedClient", "default_cache_dir",
    "collection_page_url", "item_json_url", "parse_result", "parse_item", "image_refs",
    "pick_image", "iter_items", "list_items", "get_item", "download_item", "read_metadata",
    "download_daguerreotypes",
]

COLLECTION_URL = "https://www.loc.gov/collections/daguerreotypes/"
ITEM_URL = "https://www.loc.gov/item/{id}/"
USER_AGENT = "repair-course/0.1 (educational photo-restoration course; python-urllib)"
# Long side in pixels for the size names; P&P derivatives are 150 px ("_150px.jpg"), 640 px
# ("r.jpg") and 1024 px ("v.jpg"); "full" is the largest file of an allowed type.
NAMED_SIZES: dict[str, int | None] = {"thumb": 150, "medium": 640, "large": 1024, "full": None}
_MIMETYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
              ".tif": "image/tiff", ".tiff": "image/tiff", ".jp2": "image/jp2"}


class LocError(RuntimeError):
    """Something went wrong talking to loc.gov or reading its answer."""


class LocHTTPError(LocError, OSError):
    """An HTTP request failed (after retries, where retrying made sense)."""

    def __init__(self, url: str, status: int | None, reason: str):
        self.url, self.status = url, status
        hint = {404: " (no such page: check the item id or collection address)",
                429: " (rate limited: wait a few minutes and use a longer delay)",
                403: " (refused: loc.gov blocks clients over its rate limits for up to an hour)"}
        super().__init__(f"GET {url} failed: {status or ''} {reason}{hint.get(status, '')}".strip())


class LocImageError(LocError, ValueError):
    """Downloaded bytes are not a readable image (e.g. an HTML error page)."""


class Client(Protocol):
    """What the functions of this module need from a network layer."""

    def fetch_json(self, url: str) -> dict: ...

    def fetch_bytes(self, url: str) -> bytes: ...


class HttpClient:
    """urllib client: User-Agent, a minimum delay between requests, retries with back-off.

    loc.gov limits collection listings to 20 requests per 10 s (80 per minute) and item pages to
    40 per 10 s, and blocks clients that exceed this; the default ``delay`` of 1 s stays well below.

    Args:
        user_agent: sent with every request.
        delay: minimum seconds between the starts of two requests.
        retries: extra attempts after a failure that may pass (timeouts, 429, 5xx).
        backoff: first wait before a retry in seconds, doubled after each failed attempt
            (a ``Retry-After`` header, when larger, wins).
        timeout: seconds before a request is abandoned.
        opener: ``urllib.request.urlopen``-like callable (tests inject a fake one).
        sleep, clock: ``time.sleep`` and ``time.monotonic`` (injectable for tests).
    """

    RETRY_STATUS = (429, 500, 502, 503, 504)

    def __init__(self, user_agent: str = USER_AGENT, delay: float = 1.0, retries: int = 3,
                 backoff: float = 2.0, timeout: float = 30.0,
                 opener: Callable[..., Any] = urllib.request.urlopen,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.user_agent, self.delay, self.retries = user_agent, delay, retries
        self.backoff, self.timeout = backoff, timeout
        self._open, self._sleep, self._clock = opener, sleep, clock
        self._last: float | None = None

    def _wait_turn(self) -> None:
        if self._last is not None:
            remaining = self.delay - (self._clock() - self._last)
            if remaining > 0:
                self._sleep(remaining)
        self._last = self._clock()

    def fetch_bytes(self, url: str) -> bytes:
        """The body of a GET request to ``url``; raises :class:`LocHTTPError` on failure."""
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        wait = self.backoff
        for attempt in range(self.retries + 1):
            self._wait_turn()
            try:
                with self._open(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as err:
                if err.code not in self.RETRY_STATUS or attempt == self.retries:
                    raise LocHTTPError(url, err.code, str(err.reason)) from err
                retry_after = (err.headers or {}).get("Retry-After", "")
                pause = max(wait, float(retry_after)) if retry_after.isdigit() else wait
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    reason = getattr(err, "reason", err)
                    raise LocHTTPError(url, None, f"{reason} (is the network reachable?)") from err
                pause = wait
            self._sleep(pause)
            wait *= 2
        raise AssertionError("unreachable")

    def fetch_json(self, url: str) -> dict:
        """The decoded JSON answer at ``url``."""
        body = self.fetch_bytes(url)
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LocError(f"{url} did not answer with JSON (starts {body[:60]!r}); "
                           "add fo=json to the address") from err


def _canonical(url: str) -> str:
    """``url`` without fragment, with https scheme and sorted query (to match recordings)."""
    parts = urlsplit(_absolute(url))
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit(("https", parts.netloc.lower(), parts.path, query, ""))


class RecordedClient:
    """Answers from recorded responses instead of the network (tests, offline notebook runs).

    Args:
        routes: maps a URL to a recorded answer: a ``dict`` (JSON), ``bytes``, or a path to a
            ``.json`` file or any other file (its bytes). URLs match after dropping the fragment,
            using https and sorting the query parameters.

    ``calls`` lists every requested URL in order.
    """

    def __init__(self, routes: dict[str, Any]):
        self.routes = {_canonical(url): answer for url, answer in routes.items()}
        self.calls: list[str] = []

    @classmethod
    def from_dir(cls, folder: str | Path) -> "RecordedClient":
        """Recordings in ``folder``: its ``routes.json`` maps URLs to file names in the folder."""
        folder = Path(folder)
        index = folder / "routes.json"
        if not index.exists():
            raise FileNotFoundError(f"{index} not found: a recordings folder needs a routes.json "
                                    "mapping each URL to a file name")
        routes = json.loads(index.read_text(encoding="utf-8"))
        return cls({url: folder / name for url, name in routes.items()})

    def _answer(self, url: str) -> Any:
        self.calls.append(url)
        try:
            return self.routes[_canonical(url)]
        except KeyError:
            raise LocHTTPError(url, 404, "not in the recorded responses") from None

    def fetch_json(self, url: str) -> dict:
        answer = self._answer(url)
        if isinstance(answer, (str, Path)):
            return json.loads(Path(answer).read_text(encoding="utf-8"))
        if isinstance(answer, bytes):
            return json.loads(answer.decode("utf-8"))
        return answer

    def fetch_bytes(self, url: str) -> bytes:
        answer = self._answer(url)
        if isinstance(answer, (str, Path)):
            return Path(answer).read_bytes()
        if isinstance(answer, dict):
            return json.dumps(answer).encode("utf-8")
        return answer


@dataclass(frozen=True)
class ImageRef:
    """One downloadable file of an item: address, size in pixels (0 if unknown), MIME type."""

    url: str
    width: int = 0
    height: int = 0
    mimetype: str = ""

    @property
    def long_side(self) -> int:
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


def default_cache_dir() -> Path:
    """``$REPAIR_CACHE/loc`` if ``$REPAIR_CACHE`` is set, else ``~/.cache/repair/loc``."""
    root = os.environ.get("REPAIR_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "repair") / "loc"


def collection_page_url(page: int = 1, per_page: int = 25,
                        collection_url: str = COLLECTION_URL) -> str:
    """JSON address of one page of a collection listing (only ``results`` and ``pagination``)."""
    params = {"fo": "json", "c": per_page, "sp": page, "at": "results,pagination"}
    query = urlencode(params, safe=",")  # loc.gov writes the comma unescaped
    return f"{collection_url}?{query}"


def item_json_url(item_id: str) -> str:
    """JSON address of an item page, from its id (``"2004664512"``) or its loc.gov address."""
    return f"{ITEM_URL.format(id=_item_id(item_id))}?fo=json"


def _absolute(url: str) -> str:
    """https address for the protocol-relative (``//tile.loc.gov/...``) ones loc.gov returns."""
    return "https:" + url if url.startswith("//") else url


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
    clean = _absolute(url.split("#", 1)[0])
    return ImageRef(clean, int(fragment.get("w", 0) or 0), int(fragment.get("h", 0) or 0),
                    _mimetype(clean))


def image_refs(image_url: list[str] | None = None,
               resources: list[dict] | None = None) -> list[ImageRef]:
    """All distinct image files of an item, from ``image_url`` and/or ``resources[].files``.

    A file listed twice (once without size) keeps the entry that knows its size.
    """
    refs: dict[str, ImageRef] = {}

    def add(ref: ImageRef) -> None:
        if ref.url and (ref.url not in refs or refs[ref.url].long_side < ref.long_side):
            refs[ref.url] = ref

    for url in image_url or []:
        add(_ref_from_url(url))
    for resource in resources or []:
        files = resource.get("files")  # item pages: lists of variants; listings: a count
        for page in files if isinstance(files, list) else []:
            for f in page if isinstance(page, list) else [page]:
                url = _absolute(f.get("url") or "")
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
        page = client.fetch_json(_absolute(url))
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


def _size_tag(max_size: int | None, size: str | None) -> str:
    if size is not None:
        return size
    return "full" if max_size is None else f"max{max_size}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "item"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    _atomic_write(path, data)
    _atomic_write(sidecar, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def read_metadata(image_path: str | Path) -> dict:
    """The JSON sidecar written next to an image by :func:`download_item`."""
    sidecar = Path(image_path).with_suffix(".json")
    if not sidecar.exists():
        raise FileNotFoundError(f"no metadata sidecar {sidecar}; download the image with "
                                "repair.loc.download_item or download_daguerreotypes")
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
