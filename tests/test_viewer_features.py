"""What people who read logs every day expect from the viewer, in Chromium against a real server."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from tests.browser_support import numbered, open_file, wait_state

pytestmark = pytest.mark.browser

LOG = (
    b"2024-05-01 12:00:00 INFO service started\n"
    b"2024-05-01 12:00:01 WARN disk 91% full\n"
    b"2024-05-01 12:00:02 ERROR request failed: timeout\n"
    b"2024-05-01 12:00:03 DEBUG cache miss\n"
    b"\x1b[31mred alert\x1b[0m then \x1b[1;32mbold green\x1b[0m\n"
    b'{"level":"info","msg":"json line","items":[1,2]}\n'
    + b"long " + b"x" * 3000 + b" end\n"
)


def test_f_toggles_follow_and_its_state_is_always_shown(root: Path, threaded_server, page) -> None:
    """f follows (button pressed, status says so), f again stops following, and the status says that too."""
    (root / "a.log").write_bytes(LOG)
    server = threaded_server()
    open_file(page, server, "a.log", "s.atEnd")
    assert page.get_attribute("#follow", "aria-pressed") == "false"
    assert "f follows" in page.inner_text("#status")
    page.keyboard.press("f")
    wait_state(page, "s.reading === 'following'")
    assert page.get_attribute("#follow", "aria-pressed") == "true"
    assert page.inner_text("#follow") == "Following"
    assert page.inner_text("#status").startswith("following live")
    page.keyboard.press("f")
    state = wait_state(page, "!s.follow")
    assert state["reading"] in ("at-end", "reading", "idle")
    assert not page.inner_text("#status").startswith("following")


def test_levels_ansi_json_and_wrap(root: Path, threaded_server, page) -> None:
    """Levels are coloured, ANSI codes rendered (never shown raw), JSON pretty-printed on J, long lines wrapped on w."""
    (root / "a.log").write_bytes(LOG)
    server = threaded_server()
    open_file(page, server, "a.log", "s.atEnd")
    rows = page.locator("#rows .row")
    assert "lvl-info" in rows.nth(0).get_attribute("class")
    assert "lvl-warn" in rows.nth(1).get_attribute("class")
    assert "lvl-error" in rows.nth(2).get_attribute("class")
    assert "lvl-debug" in rows.nth(3).get_attribute("class")
    ansi = rows.nth(4)
    assert ansi.locator(".text").inner_text() == "red alert then bold green"
    assert ansi.locator("span.ansi-fg1").inner_text() == "red alert"
    assert ansi.locator("span.ansi-fg2.ansi-bold").inner_text() == "bold green"
    assert "\x1b" not in ansi.inner_text() and "␛" not in ansi.inner_text()
    color = ansi.locator("span.ansi-fg1").evaluate("e => getComputedStyle(e).color")
    assert color != rows.nth(0).locator(".text").evaluate("e => getComputedStyle(e).color")
    # JSON on demand.
    json_row = rows.nth(5)
    assert json_row.locator(".text").inner_text() == '{"level":"info","msg":"json line","items":[1,2]}'
    page.keyboard.press("J")
    page.wait_for_function("() => document.querySelectorAll('#rows .row')[5].classList.contains('json')")
    text = page.locator("#rows .row").nth(5).locator(".text").inner_text()
    assert json.loads(text) == {"level": "info", "msg": "json line", "items": [1, 2]} and "\n  " in text
    page.keyboard.press("J")
    page.wait_for_function("() => !document.querySelectorAll('#rows .row')[5].classList.contains('json')")
    # Wrap.
    long_row = page.locator("#rows .row").nth(6)
    one_line = long_row.evaluate("e => e.getBoundingClientRect().height")
    assert page.evaluate("document.getElementById('lines').scrollWidth > document.getElementById('lines').clientWidth")
    page.keyboard.press("w")
    page.wait_for_function("() => document.getElementById('lines').classList.contains('wrap')")
    wrapped = page.locator("#rows .row").nth(6).evaluate("e => e.getBoundingClientRect().height")
    assert wrapped > 5 * one_line
    assert page.evaluate("document.getElementById('lines').scrollWidth <= document.getElementById('lines').clientWidth")
    assert page.get_attribute("#wrap", "aria-pressed") == "true"


def test_font_size_changes_and_is_remembered(root: Path, threaded_server, page) -> None:
    """+ and - change the text size (the rows on screen follow); a reload keeps it."""
    (root / "n.txt").write_bytes(numbered(1000))
    server = threaded_server()
    state = open_file(page, server, "n.txt")
    size = lambda: page.evaluate("parseFloat(getComputedStyle(document.querySelector('#rows .row')).fontSize)")  # noqa: E731
    before, height = size(), state["height"]
    for _ in range(4):
        page.keyboard.press("+")
    page.wait_for_function(f"() => parseFloat(getComputedStyle(document.querySelector('#rows .row')).fontSize) === {before + 4}")
    state = wait_state(page, f"s.height < {height}")
    page.reload()
    wait_state(page, "s.rows > 0")
    assert size() == before + 4
    page.keyboard.press("0")
    page.wait_for_function(f"() => parseFloat(getComputedStyle(document.querySelector('#rows .row')).fontSize) === {before}")


def test_keyboard_works_at_once_in_the_text(root: Path, threaded_server, page) -> None:
    """Opened by URL, the text has focus: PageDown, j/k, End and Home work without a click."""
    (root / "n.txt").write_bytes(numbered(10_000))
    server = threaded_server()
    state = open_file(page, server, "n.txt", "s.atEnd")
    assert page.evaluate("document.activeElement.id") == "lines"
    page.keyboard.press("PageDown")
    state = wait_state(page, f"s.top === {state['height'] - 1}")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    state = wait_state(page, f"s.top === {state['height']}")
    page.keyboard.press("End")
    state = wait_state(page, f"s.top === {10_000 - state['height']}")
    page.keyboard.press("Home")
    wait_state(page, "s.top === 0")
    page.keyboard.press("PageUp")
    wait_state(page, "s.top === 0")


def test_help_overlay_lists_every_shortcut(root: Path, threaded_server, page) -> None:
    """? opens the help with the keys, Escape closes it and the keys work again."""
    (root / "n.txt").write_bytes(numbered(100))
    server = threaded_server()
    open_file(page, server, "n.txt", "s.atEnd")
    page.keyboard.press("?")
    page.wait_for_selector("#help[open]")
    keys = page.inner_text("#help")
    for word in ["follow", "pause", "PageDown", "search", "filter", "wrap", "JSON", "hex", "download", "Esc"]:
        assert word in keys, word
    page.keyboard.press("Escape")
    page.wait_for_selector("#help:not([open])", state="hidden")
    page.keyboard.press("f")
    wait_state(page, "s.follow")


def test_copy_a_range_of_lines_held_or_not(root: Path, threaded_server, browser) -> None:
    """Click a line number, shift-click another, c: the lines are copied, also when they are not all held."""
    (root / "n.txt").write_bytes(numbered(1_000_000))
    server = threaded_server()
    context = browser.new_context(viewport={"width": 1200, "height": 760}, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    open_file(page, server, "n.txt")
    rows = page.locator("#rows .row")
    rows.nth(2).locator(".gutter").click()
    rows.nth(6).locator(".gutter").click(modifiers=["Shift"])
    page.wait_for_function("() => document.querySelectorAll('#rows .row.selected').length === 5")
    page.keyboard.press("c")
    page.wait_for_function("() => !document.getElementById('message').hidden")
    assert page.evaluate("navigator.clipboard.readText()") == "\n".join(f"line {i:07d}" for i in range(2, 7))
    # From line 3 to a line far beyond what is held: read again from the server.
    page.fill("#jump-to", "@12000000")
    page.press("#jump-to", "Enter")
    wait_state(page, "s.topOffset >= 12000000 - 13 && s.start > 8000000")
    page.locator("#rows .row").nth(0).locator(".gutter").click(modifiers=["Shift"])
    page.keyboard.press("c")
    last = 12_000_000 // 13  # the line holding byte 12 000 000 is at the top
    page.wait_for_function(f"() => document.getElementById('message-text').textContent.startsWith('Copied {last - 1} lines')")
    text = page.evaluate("navigator.clipboard.readText()")
    lines = text.split("\n")
    assert lines[0] == "line 0000002" and lines[-1] == f"line {last:07d}" and len(lines) == last - 1
    context.close()


def test_download_is_verified_and_shows_progress(root: Path, threaded_server, page) -> None:
    """Download goes through the collector (checksums per page and for the stream) and saves the exact bytes."""
    data = os.urandom(5 * 2**20 + 3)
    (root / "blob.bin").write_bytes(data)
    server = threaded_server()
    open_file(page, server, "blob.bin", "s.hex && s.rows > 0")
    # Record the options of every open: the download must ask for the end digest (optional in
    # collector.js, docs/protocol.md §4), since it tells the user the whole file was verified.
    page.evaluate("""async () => {
      const { CollectorProtocol } = await import('/collector-core.js');
      const open = CollectorProtocol.prototype.open;
      window.testOpens = [];
      CollectorProtocol.prototype.open = function (path, options) {
        window.testOpens.push({ path, digest: options.digest, pageSize: options.pageSize });
        return open.call(this, path, options);
      };
    }""")
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "blob.bin"
    assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    page.wait_for_function("() => document.getElementById('transfer-text').textContent.includes('verified')")
    assert page.evaluate("window.pagebridgeViewer.lastDownload") == {"name": "blob.bin", "bytes": len(data), "verified": True}
    assert page.evaluate("window.testOpens") == [{"path": "blob.bin", "digest": True, "pageSize": 2**20}]


def test_offline_banner_counts_down_and_reading_resumes(root: Path, threaded_server, page) -> None:
    """The server goes away: a banner says so and counts down to the next try; back, the banner goes and reading resumes."""
    path = root / "live.log"
    path.write_bytes(numbered(10))
    server = threaded_server()
    open_file(page, server, "live.log")
    page.keyboard.press("f")
    wait_state(page, "s.reading === 'following'")
    server.stop()
    page.wait_for_selector("#banner:not([hidden])")
    first = page.inner_text("#banner-text")
    assert first.startswith("Offline") and "Retrying in" in first
    assert "offline" in page.inner_text("#status")
    page.wait_for_function(f"() => document.getElementById('banner-text').textContent !== {json.dumps(first)}")
    with open(path, "ab") as f:
        f.write(numbered(5, 10))
    server.start()
    page.click("#banner-action")  # "Retry now"
    page.wait_for_selector("#banner", state="hidden")
    wait_state(page, "s.reading === 'following' && s.rows === 15", timeout=30_000)


def test_token_prompt_can_be_dismissed_and_is_remembered_per_tab(root: Path, threaded_server, browser) -> None:
    """Not now leaves a banner to enter it later; once entered, a reload of the tab does not ask again; another tab does."""
    (root / "a.txt").write_text("a")
    server = threaded_server(token="letmein")
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#token-dialog[open]")
    page.click("#token-cancel")
    page.wait_for_selector("#banner:not([hidden])")
    assert "needs a token" in page.inner_text("#banner-text")
    page.click("#banner-action")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", "wrong")
    page.press("#token-input", "Enter")
    page.wait_for_function("() => document.getElementById('token-title').textContent.includes('refused')")
    page.fill("#token-input", "letmein")
    page.press("#token-input", "Enter")
    page.wait_for_selector("text=a.txt")
    page.reload()
    page.wait_for_selector("text=a.txt")
    assert page.evaluate("document.getElementById('token-dialog').open") is False
    other = context.new_page()
    other.goto(server.url)
    other.wait_for_selector("#token-dialog[open]")
    context.close()


def test_phone_width(root: Path, threaded_server, browser) -> None:
    """At 375 px: no sideways page scroll, tools wrap, text and gauge visible, keys and follow work."""
    (root / "a.log").write_bytes(LOG + numbered(500))
    server = threaded_server()
    context = browser.new_context(viewport={"width": 375, "height": 700}, has_touch=True)
    phone = context.new_page()
    phone.goto(server.url + "#/a.log")
    wait_state(phone, "s.atEnd")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    lines = phone.locator("#lines").bounding_box()
    gauge = phone.locator("#gauge").bounding_box()
    assert lines["height"] > 250 and gauge["x"] + gauge["width"] <= 375
    phone.click("#follow")
    wait_state(phone, "s.reading === 'following'")
    context.close()


def test_time_to_first_row_of_a_large_file(root: Path, threaded_server, page) -> None:
    """A 1 GiB sparse text file (its first MiB written): the first rows show before the rest is read."""
    with open(root / "big.log", "wb") as f:
        f.write(numbered(80_000))
        f.truncate(2**30)
    server = threaded_server()
    start = time.monotonic()
    open_file(page, server, "big.log", "s.rows > 10")
    assert time.monotonic() - start < 10  # generous: this is not a benchmark, see bench/browser.py
    assert page.inner_text("#rows .row .text") == "line 0000000"


def test_wheel_scrolls_and_the_gauge_jumps_anywhere(root: Path, threaded_server, page) -> None:
    """The wheel moves by rows (also through rows read on demand); a click on the gauge goes to that part of the file."""
    (root / "n.txt").write_bytes(numbered(2_000_000))  # 26 MB
    server = threaded_server()
    state = open_file(page, server, "n.txt")
    row_px = page.evaluate("document.querySelector('#rows .row').getBoundingClientRect().height")
    page.mouse.move(400, 400)
    for _ in range(10):
        page.mouse.wheel(0, 10 * row_px)
    state = wait_state(page, "s.top === 100")
    for _ in range(5):
        page.mouse.wheel(0, -10 * row_px)
    state = wait_state(page, "s.top === 50")
    assert state["topLine"] == 51
    box = page.locator("#gauge").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75)
    state = wait_state(page, "s.topLine !== null && s.topLine > 1400000 && s.topLine < 1600000")
    thumb = page.locator("#gauge-thumb").bounding_box()
    assert abs((thumb["y"] - box["y"]) / box["height"] - 0.75) < 0.02
    # Dragging to the bottom is the end.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 1, steps=5)
    page.mouse.up()
    wait_state(page, "s.atEnd && s.pin === 'bottom'")
    page.wait_for_function("() => window.pagebridgeViewer.visibleText().slice(-1)[0].endsWith('line 1999999')")
