"""Support for the browser tests: Debian's Chromium through playwright, and a
pagebridge server running in a thread of the test process (so a test can look
at the server's side while the browser works, and restart it on the same port).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.aio.server import PageServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def require_chromium() -> None:
    """Skip (outside CI) or fail (with CI=true) when Chromium or playwright is missing."""
    missing = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"Debian's chromium is not installed ({CHROMIUM}); apt-get install chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)


class ThreadedServer:
    """A PageServer on its own event loop in a background thread."""

    def __init__(self, root: Path, **options: Any) -> None:
        self.root = root
        self.options = {"port": 0, **options}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: PageServer | None = None
        self.mounts: dict[str, Callable[..., Any]] = {}

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> PageServer:
        async def run() -> PageServer:
            server = PageServer(self.root, **self.options)
            for path, factory in self.mounts.items():
                server.mount(path, factory)
            await server.start()
            return server

        self.server = self.call(run())
        self.options["port"] = self.server.port  # a restart reuses the port
        return self.server

    def mount(self, path: str, factory: Callable[..., Any]) -> None:
        self.mounts[path] = factory
        if self.server is not None:
            self.server.mount(path, factory)

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.close())
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.http_url

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def threaded_server(root: Path) -> Iterator[Callable[..., ThreadedServer]]:
    servers: list[ThreadedServer] = []

    def make(folder: Path | None = None, **options: Any) -> ThreadedServer:
        server = ThreadedServer(folder or root, **options)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def wait_state(page: Any, predicate: str, timeout: float = 20_000) -> Any:
    """Wait until `predicate` (JS, with `s` the viewer's state) holds; return the state.

    On timeout, fail with the state the viewer was in (and its status line).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {{ const s = window.pagebridgeViewer && window.pagebridgeViewer.state(); "
                               f"return s && ({predicate}); }}", timeout=timeout)
    except PlaywrightTimeout:
        state = page.evaluate("window.pagebridgeViewer && window.pagebridgeViewer.state()")
        status = page.evaluate("document.getElementById('status') && document.getElementById('status').textContent")
        raise AssertionError(f"timed out waiting for {predicate!r}; state: {state}; status: {status!r}") from None
    # The model changes at once and the view draws it at the next animation frame: let that
    # frame run (frame callbacks run in the order they were asked for, so the viewer's comes
    # first) before the caller reads the DOM (the status line, the rows on screen).
    page.evaluate("new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")
    return page.evaluate("window.pagebridgeViewer.state()")


def numbered(count: int, start: int = 0) -> bytes:
    """Lines of 13 bytes each ('line 0000042\\n'): line i (from 0) starts at byte 13*i."""
    return b"".join(b"line %07d\n" % i for i in range(start, start + count))


#: Checks, in the page, that every held row of a numbered() file is the file's line at the number
#: shown: no duplicate, no gap, no join.  Returns a small summary (shipping 600 000 rows to Python is slow).
CHECK_NUMBERED = """() => {
  const rows = window.pagebridgeViewer.rows();
  const bad = [];
  const seen = new Set();
  let prev = null;
  rows.forEach(([line, text], i) => {
    if (text.startsWith('────')) { prev = null; return; }
    const m = /^line (\\d{7})$/.exec(text);
    if (!m) { bad.push([i, line, text.slice(0, 40)]); return; }
    const n = Number(m[1]);
    if (line !== null && line !== n + 1) bad.push([i, line, text]);
    if (seen.has(n)) bad.push([i, 'duplicate', text]);
    seen.add(n);
    if (prev !== null && n !== prev + 1) bad.push([i, 'gap', text]);
    prev = n;
  });
  return { rows: rows.length, bad: bad.slice(0, 5), first: rows[0] || null, last: rows[rows.length - 1] || null,
           numbered: rows.filter(([line]) => line !== null).length };
}"""


def js_heap_mib(page: Any) -> float:
    """The page's JS heap after a full garbage collection, in MiB (through the DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    cdp.detach()
    return float(used) / 2**20


def open_file(page: Any, server: Any, path: str, predicate: str = "s.phase === 'open' && s.rows > 0") -> Any:
    """Open the viewer on #/path and wait until `predicate` holds."""
    page.goto(server.url + "#/" + path)
    return wait_state(page, predicate)


def without_scan(page: Any) -> None:
    """Serve this page a collector.js without search() and locate(), as from a server without scans."""
    def handle(route: Any) -> None:
        response = route.fetch()
        body = response.text()
        stripped = body.replace("\n  search(path, pattern,", "\n  _search(path, pattern,").replace(
            "\n  locate(path, {", "\n  _locate(path, {")
        assert stripped != body, "collector.js no longer has search()/locate() where expected"
        route.fulfill(response=response, body=stripped)

    page.route("**/collector.js", handle)
