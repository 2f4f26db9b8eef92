"""The viewer and collector.js in Debian's Chromium, against a real pagebridge server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest

from bridge.core import messages as m
from bridge.sources.base import Pager
from bridge.sources.files import FilePager
from tests.browser_support import ARTIFACTS, CHECK_NUMBERED, js_heap_mib, numbered, wait_state, without_scan

pytestmark = pytest.mark.browser


def test_list_and_open_a_file_by_click(root: Path, threaded_server, page) -> None:
    """The root lists folders and files with sizes; clicking a file shows its lines with numbers."""
    (root / "logs").mkdir()
    (root / "logs" / "app.log").write_bytes(numbered(500))
    (root / "notes.txt").write_text("hello\nworld\n")
    server = threaded_server()
    page.goto(server.url)
    page.wait_for_selector("#entries a")
    names = page.locator("#entries a").all_inner_texts()
    assert names == ["logs/", "notes.txt"]
    assert page.locator("#entries tr").nth(1).inner_text().split("\t")[1] == "12 B"
    page.click("text=logs/")
    page.click("text=app.log")
    state = wait_state(page, "s.atEnd")
    assert page.url.endswith("#/logs/app.log")
    assert (state["rows"], state["firstLine"], state["size"]) == (500, 1, 6500)
    first = page.locator("#rows .row").first
    assert first.locator(".gutter").inner_text().strip() == "1"
    assert first.locator(".text").inner_text() == "line 0000000"
    assert page.locator("#crumbs a").all_inner_texts() == ["/", "logs/", "app.log"]
    assert page.errors == []


def test_open_by_url_and_screenshot(root: Path, threaded_server, page) -> None:
    """Opening #/path shows the file; a screenshot of the viewer is saved as an artifact."""
    demo = Path(__file__).resolve().parent.parent / "demo" / "logs" / "app.log"
    (root / "app.log").write_bytes(demo.read_bytes())
    server = threaded_server()
    page.goto(server.url + "#/app.log")
    state = wait_state(page, "s.atEnd")
    assert state["rows"] == demo.read_bytes().count(b"\n")
    page.fill("#search-text", "ERROR")
    page.press("#search-text", "Enter")
    wait_state(page, "s.matches > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))
    assert (ARTIFACTS / "viewer.png").stat().st_size > 10_000


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_collector_receives_identical_bytes(root: Path, threaded_server, page, kind: str) -> None:
    """collector.js getAllPages returns exactly the file's bytes (sha256 compared), text and binary."""
    if kind == "text":
        data = ("ünïcødé ✓ 日本語 🚀 " * 50000).encode()  # multi-byte characters across page edges
    else:
        data = os.urandom(3 * 2**20 + 7)
    (root / "f").write_bytes(data)
    server = threaded_server()
    page.goto(server.url)
    digest = page.evaluate("""async () => {
        const { connect } = await import('/collector.js');
        const session = await connect('/ws');
        const data = await session.getAllPages('f', { pageSize: 65536 });
        const hash = await crypto.subtle.digest('SHA-256', data);
        session.close();
        return [...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join('');
    }""")
    assert digest == hashlib.sha256(data).hexdigest()


def test_viewer_text_is_exact_across_page_edges(root: Path, threaded_server, page) -> None:
    """Lines with multi-byte characters split across 64 KiB pages display exactly as in the file."""
    text = "".join(f"{i:05d} ünïcødé — 日本語 🚀\n" for i in range(20000))
    (root / "u.txt").write_text(text, encoding="utf-8")
    server = threaded_server()
    page.goto(server.url + "#/u.txt")
    wait_state(page, "s.atEnd")
    lines = page.evaluate("window.pagebridgeViewer.lines()")
    assert lines == text.split("\n")[:-1]


def test_binary_file_is_shown_as_hex(root: Path, threaded_server, page) -> None:
    """A binary file is detected and shown as offset / hex / ASCII rows."""
    (root / "b.bin").write_bytes(bytes(range(256)) * 4)
    server = threaded_server()
    page.goto(server.url + "#/b.bin")
    state = wait_state(page, "s.atEnd")
    assert state["hex"] is True and state["rows"] == 64
    row = page.locator("#rows .row").nth(4).inner_text()
    assert row.startswith("00000040")
    assert "40 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f" in row and "@ABCDEFGHIJKLMNO" in row


def test_large_file_keeps_the_tab_small(root: Path, threaded_server, page) -> None:
    """A 96 MiB file: first screen at once, at most the 8 MiB window loaded, JS heap under 64 MiB."""
    size = 96 * 2**20
    line = b"0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz\n"
    with open(root / "big.log", "wb") as f:
        block = line * (2**20 // len(line) + 1)
        written = 0
        while written < size:
            f.write(block[: size - written])
            written += min(len(block), size - written)
    server = threaded_server()
    page.goto(server.url + "#/big.log")
    page.wait_for_selector("#rows .row")
    # Reading ahead stops short of the 8 MiB window (no acknowledgements: the server stops too).
    state = wait_state(page, "s.reading === 'window-full'")
    assert 8 * 2**20 - 65536 <= state["held"] <= 8 * 2**20
    assert not state["atEnd"]
    for target in ["50%", "90%"]:
        page.fill("#jump-to", target)
        page.press("#jump-to", "Enter")
        wait_state(page, f"s.topOffset >= {int(size * int(target[:-1]) / 100) - len(line)} && s.end - s.start > 1024 * 1024")
    page.click("#bottom")
    state = wait_state(page, f"s.atEnd && s.end === {size}")
    assert js_heap_mib(page) < 64


def test_pause_really_stops_the_server(root: Path, threaded_server, page) -> None:
    """Pause stops acknowledgements, and the server stops producing pages; resume restarts it."""
    sources: list[Pager] = []

    class Ticker(Pager):
        """An endless source: one numbered line per page, every 10 ms."""

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        async def next_page(self, size: int) -> bytes:
            await asyncio.sleep(0.01)
            self.n += 1
            return b"tick %08d\n" % self.n

    server = threaded_server()
    server.mount("ticker", lambda request: sources.append(Ticker()) or sources[-1])
    page.goto(server.url + "#/ticker")
    wait_state(page, "s.rows > 20")
    page.locator("#lines").focus()
    page.keyboard.press(" ")
    consumed = wait_state(page, "s.paused")["rows"]
    # Pages already granted may still arrive (at most one window: 256 pages here,
    # as the ticker's pages are tiny); wait until the server has used them up.
    deadline = time.monotonic() + 20
    before = -1
    while sources[0].pages_sent != before and time.monotonic() < deadline:
        before = sources[0].pages_sent
        time.sleep(0.7)
    assert before <= consumed + 1 + 256  # never more than the credit
    time.sleep(1.5)
    assert sources[0].pages_sent == before, "the server kept sending while paused"
    assert "paused" in page.inner_text("#status")
    page.keyboard.press(" ")
    wait_state(page, f"!s.paused && s.rows > {before + 20}")
    assert sources[0].pages_sent > before + 20


def test_jump_to_byte_offset_shows_the_right_line(root: Path, threaded_server, page) -> None:
    """Jumping to byte offset N puts the line containing N at the top of the view."""
    (root / "n.txt").write_bytes(numbered(2_000_000))  # 24 MB: beyond the 8 MiB window
    server = threaded_server()
    page.goto(server.url + "#/n.txt")
    wait_state(page, "s.rows > 100")
    target = 13 * 1_500_000 + 5  # inside line 1 500 000 (counting from 0)
    page.fill("#jump-to", f"@{target}")
    page.press("#jump-to", "Enter")
    wait_state(page, f"s.start > {13 * 1_400_000}")
    page.wait_for_function("() => window.pagebridgeViewer.topRow().text === 'line 1500000'")
    top = page.evaluate("window.pagebridgeViewer.topRow()")
    assert top["offset"] == 13 * 1_500_000
    # Its number is shown once the server's line index has told it (never a wrong one).
    assert top["line"] in (None, 1_500_001)


def test_search_in_the_loaded_part_finds_text_after_jump(root: Path, threaded_server, page) -> None:
    """Without the server's scan, search covers the loaded part: a marker far ahead is found once read."""
    data = bytearray(numbered(2_000_000))
    marker_line = 1_600_000
    data[13 * marker_line: 13 * marker_line + 12] = b"NEEDLE-HERE!"
    (root / "hay.txt").write_bytes(bytes(data))
    server = threaded_server()
    without_scan(page)
    page.goto(server.url + "#/hay.txt")
    wait_state(page, "s.rows > 100")
    page.fill("#search-text", "needle-here")
    page.press("#search-text", "Enter")
    state = wait_state(page, "s.matches !== null")
    assert state["searching"] == "local" and state["matches"] == 0
    page.fill("#jump-to", "75%")
    page.press("#jump-to", "Enter")
    wait_state(page, f"s.start <= {13 * marker_line} && s.end > {13 * marker_line}", timeout=30_000)
    page.press("#search-text", "Enter")
    page.wait_for_selector(".row.current mark")
    assert page.inner_text(".row.current mark") == "NEEDLE-HERE"
    assert page.inner_text("#search-count").startswith("1 / 1 in the loaded part")


def test_reconnect_after_server_restart_has_no_gap_or_duplicate(root: Path, threaded_server, page) -> None:
    """The server restarts mid-file; the viewer reconnects and resumes: every line exactly once."""
    count = 150_000
    (root / "lines.txt").write_bytes(numbered(count))

    class SlowFile(FilePager):
        async def next_page(self, size: int) -> bytes | None:
            await asyncio.sleep(0.01)
            return await super().next_page(size)

    def slow(request: m.Open) -> Pager:
        return SlowFile(root / "lines.txt", request.offset, request.length, if_match=request.if_match,
                        name="lines.txt")

    server = threaded_server()
    server.mount("slow/lines.txt", slow)
    page.goto(server.url + "#/slow/lines.txt")
    wait_state(page, "s.rows > 5000")
    server.stop()
    wait_state(page, "s.status !== 'connected'")
    time.sleep(0.3)
    server.start()
    state = wait_state(page, "s.atEnd", timeout=60_000)
    assert state["status"] == "connected"
    lines = page.evaluate("window.pagebridgeViewer.lines()")
    assert len(lines) == count
    assert lines == [f"line {i:07d}" for i in range(count)]


@pytest.mark.parametrize("path, words", [
    ("missing.txt", "No such file or folder. (not_found: missing.txt does not exist)"),
    (".secret", "Access to this path is not allowed. (forbidden:"),
    ("folder", "This is not a regular file. (not_a_file: folder is a directory"),
])
def test_error_codes_show_readable_messages(root: Path, threaded_server, page, path: str, words: str) -> None:
    """Each refusal shows a sentence and its code in the viewer."""
    (root / ".secret").write_text("x")
    (root / "folder").mkdir()
    server = threaded_server()
    page.goto(server.url + "#/" + path)
    page.wait_for_selector("#message:not([hidden])")
    assert words in page.inner_text("#message")


def test_token_prompt(root: Path, threaded_server, page) -> None:
    """A server with a token makes the viewer ask for it; the right token shows the list."""
    (root / "a.txt").write_text("a")
    server = threaded_server(token="letmein")
    page.goto(server.url)
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", "letmein")
    page.press("#token-input", "Enter")
    page.wait_for_selector("text=a.txt")
    assert page.evaluate("window.pagebridgeViewer.state()")["status"] == "connected"


def test_phone_width_layout(root: Path, threaded_server, browser) -> None:
    """At phone width the file list and viewer fit the screen without horizontal page scroll."""
    (root / "a.log").write_bytes(numbered(100))
    server = threaded_server()
    context = browser.new_context(viewport={"width": 375, "height": 700})
    phone = context.new_page()
    phone.goto(server.url + "#/a.log")
    wait_state(phone, "s.atEnd")
    width = phone.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert width <= 375


def test_follow_shows_appended_lines_and_rotation(root: Path, threaded_server, page) -> None:
    """Follow mode shows lines appended after opening and marks a rotation explicitly."""
    log = root / "live.log"
    log.write_bytes(b"first\n")
    server = threaded_server()
    page.goto(server.url + "#/live.log")
    wait_state(page, "s.atEnd")
    page.click("#follow")
    wait_state(page, "s.follow && s.reading === 'following'")
    with open(log, "ab") as f:
        f.write(b"second\n")
    page.wait_for_function("() => window.pagebridgeViewer.lines().includes('second')")
    os.rename(log, root / "live.log.1")
    log.write_bytes(b"third\n")
    page.wait_for_function("() => window.pagebridgeViewer.lines().includes('third')", timeout=20_000)
    lines = page.evaluate("window.pagebridgeViewer.lines()")
    assert lines[-2:] == ["──── live.log was rotated; following the new file ────", "third"]
    assert "following live" in page.inner_text("#status")


def test_collector_compressed_stream_is_exact(root: Path, threaded_server, page) -> None:
    """collector.js connected with compress: true gets a log in zstd pages (decoded under the viewer's CSP) exactly."""
    data = b"".join(b"2026-11-27 05:%02d:%02d INFO request %d served\n" % (i // 60 % 60, i % 60, i)
                    for i in range(60_000))
    (root / "app.log").write_bytes(data)
    server = threaded_server()
    page.goto(server.url)
    result = page.evaluate("""async () => {
        const { connect } = await import('/collector.js');
        const session = await connect('/ws', { compress: true });
        const stream = session.pages('app.log', { compress: true, pageSize: 65536 });
        const opened = await stream.opened;
        const chunks = [];
        for await (const item of stream) if (item.kind === 'page') chunks.push(item.data);
        const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) { all.set(c, at); at += c.length; }
        const hash = await crypto.subtle.digest('SHA-256', all);
        session.close();
        return [opened.compression, Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, '0')).join('')];
    }""")
    assert result == ["zstd", hashlib.sha256(data).hexdigest()]
    assert page.errors == []



def test_without_a_line_index_lines_are_counted_from_the_top(root: Path, threaded_server, page) -> None:
    """Without the server's line index: a link to a line in the first window works (counted), numbers are never wrong."""
    (root / "n.txt").write_bytes(numbered(200_000))
    server = threaded_server()
    without_scan(page)
    page.goto(server.url + "#/n.txt:150000")
    wait_state(page, "s.topLine === 150000")
    page.fill("#jump-to", "50%")
    page.press("#jump-to", "Enter")
    state = wait_state(page, "s.topOffset >= 1300000 - 13")
    check = page.evaluate(CHECK_NUMBERED)
    assert check["bad"] == []
    assert state["topLine"] in (None, 100_001)
