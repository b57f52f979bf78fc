"""The built book in a real browser: every page in _toc.yml opens in headless Chromium (Debian's
`chromium`), its figures load, its links inside the book resolve, nothing it needs comes from a
CDN, and the chapter 01 slider changes its picture. A screenshot of each page is saved for review
(pytest's basetemp, copied to _build/screenshots/).

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: it reads
commands on fd 3 and writes replies on fd 4, each a JSON message ended by a NUL byte), so the test
needs nothing beyond Chromium and the standard library.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = "apt-get update && apt-get install -y chromium"
WINDOW = (1280, 1000)          # viewport in CSS pixels
MAX_SHOT_HEIGHT = 16000        # long chapters are cut here in the screenshot
CDN_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com", "fonts.googleapis.com",
             "fonts.gstatic.com", "code.jquery.com", "ajax.googleapis.com", "polyfill.io")
RELIED_ON = {"Script", "Stylesheet", "Font", "XHR", "Fetch", "EventSource", "WebSocket",
             "Manifest", "Other"}   # resource types a page needs to work (images may be external)


def toc_pages() -> list[str]:
    """Every file named in _toc.yml (root, parts, chapters, sections), in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    files.append(toc["root"])
    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb|rst)$", "", f) for f in files]


def find_chromium() -> str:
    """Path of the Chromium binary (env CHROMIUM, else `chromium` on PATH); fails with the fix."""
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail(f"Chromium is missing: the browser test needs Debian's chromium package. "
                    f"Install it with: {INSTALL_HINT}", pytrace=False)
    return exe


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (stdlib only)."""

    def __init__(self, exe: str, profile: Path):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above the low numbers, so the dup2 onto 3 and 4 cannot clobber them.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 100)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 100)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)

        def give_pipe_fds():  # runs in the child: Chromium reads fd 3 and writes fd 4
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--remote-debugging-pipe",
                "about:blank"]
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         close_fds=False, preexec_fn=give_pipe_fds)
        os.close(child_r)
        os.close(child_w)
        self._w, self._r = to_chrome_w, from_chrome_r
        self._buf = b""
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"}, timeout=60)["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=True)
        self._viewport(WINDOW[1])

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
                self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: bool = False,
             timeout: float = 30) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        msg_id = next(self._ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def evaluate(self, expression: str, timeout: float = 30):
        """Value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True,
                           timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 60) -> None:
        """Load url and wait until the load event fired and every image settled."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired", timeout=timeout)
        self.evaluate(SETTLE_JS, timeout=timeout)

    def screenshot(self, path: Path) -> None:
        """Whole page as PNG: the viewport is made as tall as the page (at most MAX_SHOT_HEIGHT),
        which lays the page out once at that size, then restored."""
        height = min(self.evaluate("document.documentElement.scrollHeight"), MAX_SHOT_HEIGHT)
        self._viewport(height)
        self.evaluate(f"window.scrollTo(0, 0); {FRAMES_JS}")
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=True, timeout=60)
        self._viewport(WINDOW[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _viewport(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {"width": WINDOW[0], "height": height,
                                                          "deviceScaleFactor": 1, "mobile": False},
                  session=True)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


# Resolves once every <img> has loaded or failed, web fonts are in, MathJax (where a page has
# math) has typeset, and two frames were painted
# (at most 10 s, so a stuck image shows up as a failed check rather than a hang).
SETTLE_JS = """
new Promise(done => {
  const imgs = Array.from(document.images).filter(i => !i.complete);
  const each = imgs.map(i => new Promise(r => { i.addEventListener('load', r);
                                                i.addEventListener('error', r); }));
  const math = (window.MathJax && MathJax.startup && MathJax.startup.promise) || null;
  const all = Promise.all([...each, document.fonts.ready, math]);
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  Promise.race([all, new Promise(r => setTimeout(r, 10000))]).then(frames).then(() => done(true));
})
"""

FRAMES_JS = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"

# What the page shows: every image (as the browser resolved it) and every link.
INSPECT_JS = """
({
  title: document.title,
  h1: Array.from(document.querySelectorAll('main h1, article h1')).map(h => h.textContent.trim()),
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
    raw: i.getAttribute('src') || '', complete: i.complete, width: i.naturalWidth})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => ({href: a.href,
    raw: a.getAttribute('href'), text: a.textContent.trim().slice(0, 60)})),
  sliders: document.querySelectorAll('.repair-slider').length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  math: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
})
"""

# Moves every repair slider and reports its picture before and after: the range input is set to
# another value and an 'input' event dispatched, as a reader's drag would; then the damage kind is
# changed with a 'change' event.
SLIDER_JS = """
Array.from(document.querySelectorAll('.repair-slider')).map(root => {
  const range = root.querySelector('input.repair-strength');
  const kind = root.querySelector('select.repair-kind');
  const img = root.querySelector('img.repair-frame');
  if (!range || !img) return {ok: false, why: 'slider lacks its range input or image'};
  const before = img.src;
  const lo = Number(range.min || 0), hi = Number(range.max || 100);
  range.value = String(Number(range.value) === hi ? lo : hi);
  range.dispatchEvent(new Event('input', {bubbles: true}));
  const afterRange = img.src;
  let afterKind = afterRange;
  if (kind && kind.options.length > 1) {
    kind.selectedIndex = (kind.selectedIndex + 1) % kind.options.length;
    kind.dispatchEvent(new Event('change', {bubbles: true}));
    kind.dispatchEvent(new Event('input', {bubbles: true}));
    afterKind = img.src;
  }
  return {ok: true, before: before.slice(-64), afterRange: afterRange.slice(-64),
          afterKind: afterKind.slice(-64), rangeMoved: before !== afterRange,
          kindChanged: afterRange !== afterKind, hasKind: !!kind};
})
"""


# What a reader would notice at 1280 px: paragraphs that are a Markdown table printed as text,
# cell outputs that hold a table's pipes and rules but no <table>, code boxes (cell inputs and
# code blocks in the prose, not printed outputs) whose lines are wider than the box (their ends
# hidden behind a scroll bar), and figures the browser shrinks below their natural size (a crop
# drawn at 1:1 in the PNG would then be smaller than 1:1).
READER_JS = r"""
(() => {
  const root = document.querySelector('main') || document.body;
  const rule = /\|\s*:?[-\u2013\u2014]{1,}:?\s*\|/;
  const pipes = t => (t.match(/\|/g) || []).length;
  const raw = Array.from(root.querySelectorAll('p'))
    .map(p => p.textContent).filter(t => rule.test(t) && pipes(t) >= 4)
    .map(t => t.trim().slice(0, 100));
  const untabled = Array.from(root.querySelectorAll('.cell_output'))
    .filter(o => !o.querySelector('table') && rule.test(o.textContent)
                 && pipes(o.textContent) >= 4)
    .map(o => o.textContent.trim().slice(0, 100));
  const longest = t => t.split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
  const wide = Array.from(root.querySelectorAll('pre'))
    .filter(p => !p.closest('.cell_output') && p.scrollWidth > p.clientWidth + 1)
    .map(p => `${p.scrollWidth} px of code in a ${p.clientWidth} px box: `
              + longest(p.textContent).slice(0, 90));
  const shrunk = Array.from(root.querySelectorAll('.cell_output img'))
    .filter(i => i.complete && i.naturalWidth > 0 && i.clientWidth < i.naturalWidth - 1)
    .map(i => `a ${i.naturalWidth} px figure drawn ${i.clientWidth} px wide`);
  const cut = Array.from(root.querySelectorAll('.cell_output table'))
    .filter(t => { const box = t.closest('.cell_output');
                   const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
                   return !scrolls && t.getBoundingClientRect().right
                                      > box.getBoundingClientRect().right + 1; })
    .map(t => (t.querySelector('th') || t).textContent.trim().slice(0, 60));
  return {raw, untabled, wide, shrunk, cut,
          tables: root.querySelectorAll('.cell_output table').length};
})()
"""


def reader_problems(reader: dict) -> list[str]:
    """What :data:`READER_JS` found that a reader would notice, one line each."""
    return ([f"Markdown table printed as text: {t!r}" for t in reader["raw"]]
            + [f"table output not rendered as a table: {t!r}" for t in reader["untabled"]]
            + [f"code line cut at the box's edge: {w}" for w in reader["wide"]]
            + [f"figure shrunk below its natural size: {s}" for s in reader["shrunk"]]
            + [f"table cut at the output's edge: {t!r}" for t in reader.get("cut", [])])


class _Ids(HTMLParser):
    """Collects the anchor targets of an HTML file (id attributes and <a name>)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


_ID_CACHE: dict[Path, set[str]] = {}


def anchors_of(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def broken_link(href: str, html_root: Path) -> str | None:
    """Why a link inside the book is broken (None when fine or when it leaves the book)."""
    parts = urlsplit(href)
    if parts.scheme != "file":
        return None                        # http(s), mailto, javascript: not ours to check offline
    target = Path(unquote(parts.path))
    try:
        target.relative_to(html_root)
    except ValueError:
        return f"points outside the built book ({target})"
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return "target file does not exist"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in anchors_of(target):
        return f"no element with id '{fragment}' in {target.name}"
    return None


def shot_name(page: str) -> str:
    return page.replace("/", "__") + ".png"


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    exe = find_chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        chrome = Browser(exe, profile)
    except (RuntimeError, TimeoutError, OSError) as error:
        log = profile / "chromium.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"headless Chromium ({exe}) did not start: {error}\n{tail}", pytrace=False)
    yield chrome
    chrome.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


_VISITS: dict[str, dict] = {}


@pytest.fixture
def visit(built_book, browser, screenshot_dir):
    """visit(page) opens a toc page once per session and returns what the browser saw."""

    def _visit(page: str) -> dict:
        if page not in _VISITS:
            path = built_book / f"{page}.html"
            assert path.is_file(), f"{page} from _toc.yml is missing from the built book"
            browser.open(path.as_uri())
            seen = browser.evaluate(INSPECT_JS)
            seen["requests"] = [e["params"] for e in browser.events
                                if e.get("method") == "Network.requestWillBeSent"]
            seen["exceptions"] = [e["params"]["exceptionDetails"] for e in browser.events
                                  if e.get("method") == "Runtime.exceptionThrown"]
            seen["reader"] = browser.evaluate(READER_JS)     # before sliders change the page
            seen["sliders_moved"] = browser.evaluate(SLIDER_JS) if seen["sliders"] else []
            browser.open(path.as_uri())    # the screenshot shows the page as a reader gets it
            shot = screenshot_dir / shot_name(page)
            browser.screenshot(shot)
            review = ROOT / "_build" / "screenshots"
            review.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shot, review / shot.name)
            seen["screenshot"] = shot
            _VISITS[page] = seen
        return _VISITS[page]

    return _visit


PAGES = toc_pages()


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_page_opens_with_title_and_screenshot(visit, page):
    seen = visit(page)
    assert seen["h1"], f"{page}: no heading rendered"
    assert seen["overflow"] <= 0, f"{page}: content {seen['overflow']} px wider than the window"
    shot = seen["screenshot"]
    assert shot.stat().st_size > 10_000, f"{page}: screenshot {shot} looks empty"


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_figures_load(visit, page):
    ours = [i for i in visit(page)["images"] if urlsplit(i["src"]).scheme in ("file", "data")]
    broken = [i["raw"][:80] for i in ours if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_links_inside_the_book_resolve(visit, built_book, page):
    root = built_book.resolve()
    broken = [f"{link['raw']!r} ({link['text']!r}): {why}" for link in visit(page)["links"]
              if (why := broken_link(link["href"], root))]
    assert not broken, f"{page}: broken links:\n" + "\n".join(broken)


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_nothing_relied_on_comes_from_the_network(visit, page):
    """Offline the page must work: no script, style sheet, font or data request leaves the disk
    (external images such as the Colab/Kaggle badges are launch links, allowed)."""
    remote = [f"{r.get('type')}: {r['request']['url'][:120]}" for r in visit(page)["requests"]
              if urlsplit(r["request"]["url"]).scheme in ("http", "https", "ws", "wss")
              and r.get("type") in RELIED_ON]
    assert not remote, f"{page} fetches from the network:\n" + "\n".join(remote)


# Sphinx 7.4 adds sphinx-thebe's inline config script twice (once as registered, once re-added
# before writing), so every page redeclares this constant; harmless: the first copy stands, and
# thebe is never started in this book.
KNOWN_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_no_script_errors(visit, page):
    errors = [e.get("exception", {}).get("description", e.get("text", ""))[:300]
              for e in visit(page)["exceptions"]]
    errors = [e for e in errors if not any(known in e for known in KNOWN_ERRORS)]
    assert not errors, f"{page}: uncaught JavaScript errors:\n" + "\n".join(errors)


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_offline(visit, page):
    seen = visit(page)
    assert seen["typeset"] >= seen["math"], (
        f"{page}: {seen['math']} formulas but MathJax typeset only {seen['typeset']}")


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_reader_sees_tables_code_and_figures_whole(visit, page):
    """Every table renders as a table, every code line shows whole, every figure at 1:1 or
    larger (issue 17)."""
    problems = reader_problems(visit(page)["reader"])
    assert not problems, f"{page}:\n" + "\n".join(problems)


def _png(width: int, height: int) -> str:
    """A gray PNG of the given size as a data: URI (stdlib only)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


READER_PAGE = """<html><head><style>
main {{ width: 688px; }} pre {{ overflow-x: auto; font: 13.6px monospace; }}
img {{ max-width: 100%; }}</style></head><body><main>
<p>| method | PSNR (dB) |
|—|–:|
| damaged | 19.94 |</p>
<div class="cell_input"><pre>{code}</pre></div>
<div class="cell_output"><img src="{image}"></div>
<div class="cell_output"><pre>| a | b |
|---|---|
| 1 | 2 |</pre></div>
</main></body></html>"""


def test_reader_check_catches_a_raw_table_a_long_line_and_a_shrunk_figure(browser, tmp_path):
    """The old book's faults on a small synthetic page: each is caught; the fixed page passes."""
    bad = tmp_path / "bad.html"
    bad.write_text(READER_PAGE.format(code="x = " + "1 + " * 40 + "1", image=_png(900, 40)))
    browser.open(bad.as_uri())
    problems = reader_problems(browser.evaluate(READER_JS))
    kinds = sorted({p.split(":")[0] for p in problems})
    assert kinds == ["Markdown table printed as text", "code line cut at the box's edge",
                     "figure shrunk below its natural size",
                     "table output not rendered as a table"], problems
    good = tmp_path / "good.html"
    good.write_text(READER_PAGE.format(code="x = 1  # (B, 1, H, W)", image=_png(600, 40))
                    .replace("<p>| method", "<table><tr><td>method").replace("19.94 |</p>",
                                                                            "</td></tr></table>")
                    .replace("<pre>| a | b |\n|---|---|\n| 1 | 2 |</pre>",
                             "<table><tr><td>1</td></tr></table>"))
    browser.open(good.as_uri())
    seen = browser.evaluate(READER_JS)
    assert reader_problems(seen) == [] and seen["tables"] == 1


@pytest.mark.book
def test_chapter_01_slider_changes_the_image(visit):
    chapter = next((p for p in PAGES if re.match(r"notebooks/01_", p)), None)
    assert chapter, "chapter 01 (notebooks/01_*) is not in _toc.yml"
    seen = visit(chapter)
    assert seen["sliders"] >= 1, f"{chapter}: no .repair-slider on the page"
    for moved in seen["sliders_moved"]:
        assert moved["ok"], moved.get("why")
        assert moved["rangeMoved"], f"moving the strength slider left the image as it was: {moved}"
        if moved["hasKind"]:
            assert moved["kindChanged"], f"changing the damage kind did nothing: {moved}"


@pytest.mark.book
@pytest.mark.parametrize("page", PAGES)
def test_every_slider_in_the_book_works(visit, page):
    for moved in visit(page)["sliders_moved"]:
        assert moved["ok"] and moved["rangeMoved"], f"{page}: a slider does nothing: {moved}"


# --- static checks of the built HTML (no browser needed) -------------------------------------

class _Refs(HTMLParser):
    """Collects what a page loads: script sources, linked style sheets/preloads, inline code."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rel = (a.get("rel") or "").lower()
        if tag == "script" and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "link" and a.get("href") and any(
                k in rel for k in ("stylesheet", "preload", "modulepreload", "prefetch", "import")):
            self.loads.append(a["href"])
        if tag in ("script", "style") and not a.get("src"):
            self._in = tag
        if a.get("style"):
            self.inline.append(a["style"])

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.inline.append(data)


def is_remote(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.I))


def cdn_references(html_root: Path) -> list[str]:
    """Every place in the built book that would load code, styles or fonts from the web."""
    found = []
    for page in sorted(html_root.rglob("*.html")):
        refs = _Refs()
        refs.feed(page.read_text(errors="replace"))
        name = page.relative_to(html_root)
        found += [f"{name}: loads {url}" for url in refs.loads if is_remote(url)]
        for text in refs.inline:
            # sphinx-thebe names its library in a constant and fetches it only when a reader
            # presses a "Live code" button, which this book does not offer.
            text = re.sub(r"const THEBE_JS_URL = \"[^\"]*\";", "", text)
            found += [f"{name}: inline code names {host}" for host in CDN_HOSTS if host in text]
            found += [f"{name}: inline style loads {m}"
                      for m in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", text)]
    for css in sorted(html_root.rglob("*.css")):
        text = css.read_text(errors="replace")
        found += [f"{css.relative_to(html_root)}: {m}" for m in
                  re.findall(r"(?:@import\s+|url\(\s*)['\"]?((?:https?:)?//[^)'\"\s;]+)", text)]
    return found


@pytest.mark.book
def test_no_cdn_scripts_styles_or_fonts_in_built_pages(built_book):
    found = cdn_references(built_book)
    assert not found, "the built book loads from a CDN:\n" + "\n".join(found[:40])


def test_cdn_check_catches_a_cdn_script(tmp_path):
    (tmp_path / "page.html").write_text(
        '<html><head><script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex.js">'
        '</script><link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">'
        '<script>const THEBE_JS_URL = "https://unpkg.com/thebe"; </script>'
        '<script>require.config({paths: {x: "https://cdnjs.cloudflare.com/x"}})</script>'
        '</head><body><a href="https://example.org">fine</a></body></html>')
    (tmp_path / "s.css").write_text("@font-face{src:url(https://fonts.gstatic.com/a.woff2)}")
    found = cdn_references(tmp_path)
    assert len(found) == 4, found
    assert not any("example.org" in f or "unpkg" in f for f in found)


def test_broken_link_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1><a name="old"></a>')
    root = tmp_path.resolve()
    page = (root / "a.html").as_uri()
    assert broken_link(page + "#top", root) is None
    assert broken_link(page + "#old", root) is None
    assert "no element" in broken_link(page + "#nowhere", root)
    assert "does not exist" in broken_link((root / "b.html").as_uri(), root)
    assert broken_link("https://example.org/x.html", root) is None


def test_missing_chromium_fails_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y"):
        find_chromium()


def test_toc_pages_walks_parts_chapters_and_sections():
    pages = toc_pages()
    assert pages[0] == yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    assert any(p.startswith("notebooks/01_") for p in pages)
    assert len(pages) == len(set(pages))
