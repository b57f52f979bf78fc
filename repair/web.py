"""The network layer of the loc.gov client: a polite HTTP client and a recorded one for offline use.

Every function of :mod:`repair.loc` and :mod:`repair.archive` takes a ``client`` with
``fetch_json(url)`` and ``fetch_bytes(url)`` methods (:class:`Client`). :class:`HttpClient` (the
default) sends a User-Agent, waits between requests, and retries with exponential back-off;
:class:`RecordedClient` answers from recorded responses, which is what the tests and the offline
(``tiny``) notebook runs use.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["USER_AGENT", "LocError", "LocHTTPError", "Client", "HttpClient", "RecordedClient",
           "absolute_url"]

USER_AGENT = "repair-course/0.1 (educational photo-restoration course; python-urllib)"
"""Sent with every request of :class:`HttpClient`."""


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


class Client(Protocol):
    """What the functions of this module need from a network layer."""

    def fetch_json(self, url: str) -> dict:
        """The decoded JSON answer at ``url``."""

    def fetch_bytes(self, url: str) -> bytes:
        """The body of the answer at ``url``."""


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


def absolute_url(url: str) -> str:
    """https address for the protocol-relative (``//tile.loc.gov/...``) ones loc.gov returns."""
    return "https:" + url if url.startswith("//") else url


def _canonical(url: str) -> str:
    """``url`` without fragment, with https scheme and sorted query (to match recordings)."""
    parts = urlsplit(absolute_url(url))
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
        """The recorded JSON answer for ``url`` (:class:`LocHTTPError` 404 if none)."""
        answer = self._answer(url)
        if isinstance(answer, (str, Path)):
            return json.loads(Path(answer).read_text(encoding="utf-8"))
        if isinstance(answer, bytes):
            return json.loads(answer.decode("utf-8"))
        return answer

    def fetch_bytes(self, url: str) -> bytes:
        """The recorded bytes for ``url`` (:class:`LocHTTPError` 404 if none)."""
        answer = self._answer(url)
        if isinstance(answer, (str, Path)):
            return Path(answer).read_bytes()
        if isinstance(answer, dict):
            return json.dumps(answer).encode("utf-8")
        return answer
