"""Whole-file search, filter mode and true line numbers, through the server's scan and line index."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import CHECK_NUMBERED, numbered, open_file, wait_state

pytestmark = pytest.mark.browser


def needles(count: int, at: list[int]) -> bytes:
    """numbered(count) with 'NEEDLE-<n>' written over the lines (from 0) listed in `at`."""
    data = bytearray(numbered(count))
    for n, i in enumerate(at):
        data[13 * i: 13 * i + 12] = b"NEEDLE-%05d" % n
    return bytes(data)


def search(page, text: str) -> None:
    page.fill("#search-text", text)
    page.press("#search-text", "Enter")


def test_search_finds_matches_anywhere_with_total_and_next_prev(root: Path, threaded_server, page) -> None:
    """A match near the end of a 26 MB file is found at once (no jump first); n/N step through all of them."""
    at = [1_600_000, 1_800_000, 1_999_999]
    (root / "hay.txt").write_bytes(needles(2_000_000, at))
    server = threaded_server()
    open_file(page, server, "hay.txt")
    search(page, "needle")
    state = wait_state(page, "s.topLine === 1600001", timeout=30_000)
    page.wait_for_function("() => document.getElementById('search-count').textContent === '1 / 3'", timeout=30_000)
    current = page.locator("#rows .row.current")
    assert current.locator(".gutter").inner_text().strip() == "1600001"
    assert current.locator("mark").inner_text() == "NEEDLE"
    page.locator("#lines").focus()
    page.keyboard.press("n")
    wait_state(page, "s.topLine === 1800001")
    page.keyboard.press("n")  # the last line of the file: shown at the bottom of the view
    page.wait_for_function("() => document.querySelector('#rows .row.current .gutter')?.textContent === '2000000'")
    assert page.inner_text("#search-count") == "3 / 3"
    page.keyboard.press("n")  # wraps to the first
    wait_state(page, "s.topLine === 1600001")
    page.keyboard.press("N")  # and back to the last
    page.wait_for_function("() => document.querySelector('#rows .row.current .gutter')?.textContent === '2000000'")
    page.keyboard.press("N")
    state = wait_state(page, "s.topLine === 1800001")
    assert state["held"] <= 8 * 2**20
    rows = page.evaluate("window.pagebridgeViewer.rows()")
    for line, text in rows:
        if line is not None and not text.startswith("NEEDLE"):
            assert text == f"line {line - 1:07d}"


def wait_count(page, pattern: str) -> None:
    """Wait until the count beside the search box matches the regular expression `pattern`."""
    page.wait_for_function(f"() => new RegExp({pattern!r}).test(document.getElementById('search-count').textContent)")


def test_regex_and_case_toggles(root: Path, threaded_server, page) -> None:
    """.* makes the pattern a regular expression; Aa matches case; an invalid pattern says why."""
    (root / "hay.txt").write_bytes(needles(100_000, [10, 20, 30_000]))
    server = threaded_server()
    open_file(page, server, "hay.txt")
    search(page, "needle-0000[02]")
    wait_count(page, "^0$")  # a literal: no line holds "needle-0000[02]"
    page.click("#search-regex")
    wait_count(page, "^2$")  # the regex: lines 11 and 31, case folded
    page.press("#search-text", "Enter")
    wait_state(page, "s.topLine === 11")
    wait_count(page, "^1 / 2$")
    page.click("#search-case")  # match case: "needle" is not "NEEDLE"
    wait_count(page, "^0$")
    search(page, "NEEDLE-0000[02]")
    wait_count(page, "2$")
    search(page, "NEEDLE-(")
    wait_count(page, "^invalid")


def test_filter_shows_only_matching_lines_with_true_numbers_also_live(root: Path, threaded_server, page) -> None:
    """Filter: only the ERROR lines, numbered as in the file; following, new ERROR lines arrive and others do not."""
    path = root / "app.log"
    lines = [f"2024-05-01 12:00:{i % 60:02d} {'ERROR' if i % 7 == 3 else 'INFO'} event {i}" for i in range(5000)]
    path.write_text("\n".join(lines) + "\n")
    server = threaded_server()
    open_file(page, server, "app.log", "s.atEnd")
    page.fill("#search-text", "ERROR")
    page.click("#search-filter")
    state = wait_state(page, "s.filter && s.reading === 'filter-done'")
    expected = [[i + 1, text] for i, text in enumerate(lines) if " ERROR " in text]
    assert page.evaluate("window.pagebridgeViewer.rows()") == expected
    assert state["count"] == len(expected)
    assert page.get_attribute("#search-filter", "aria-pressed") == "true"
    assert f"{len(expected)} matching lines" in page.inner_text("#status").replace("\u2009", "")
    # Live: follow in filter mode.
    page.keyboard.press("f")
    wait_state(page, "s.reading === 'filter-following'")
    with open(path, "a") as f:
        f.write("2024-05-01 12:01:00 INFO quiet\n2024-05-01 12:01:01 ERROR new trouble\n")
    page.wait_for_function("() => window.pagebridgeViewer.rows().slice(-1)[0][1].endsWith('new trouble')")
    assert page.evaluate("window.pagebridgeViewer.rows().slice(-1)[0]") == [5002, "2024-05-01 12:01:01 ERROR new trouble"]
    assert page.evaluate("window.pagebridgeViewer.rows().length") == len(expected) + 1
    # A click on a row: the whole file at that line.
    page.locator("#rows .row .text", has_text="new trouble").click()
    state = wait_state(page, "!s.filter && s.topLine !== null")
    assert page.locator("#rows .row.hl .gutter").inner_text().strip() == "5002"
    assert page.get_attribute("#search-filter", "aria-pressed") == "false"


def test_line_numbers_after_any_jump_and_jump_to_a_far_line(root: Path, threaded_server, page) -> None:
    """After a jump to 50 % every row gets its true number (from the line index); line 1 500 000 is one jump away."""
    (root / "n.txt").write_bytes(numbered(2_000_000))
    server = threaded_server()
    open_file(page, server, "n.txt")
    page.fill("#jump-to", "50%")
    page.press("#jump-to", "Enter")
    wait_state(page, "s.topLine === 1000001")
    check = page.evaluate(CHECK_NUMBERED)
    assert check["bad"] == [] and check["numbered"] == check["rows"]
    page.fill("#jump-to", "1500000")
    page.press("#jump-to", "Enter")
    wait_state(page, "s.topLine === 1500000 && s.hash === '#/n.txt:1500000'")
    assert page.locator("#rows .row.hl .gutter").inner_text().strip() == "1500000"
    assert re.search(r"line 1\u2009500\u2009000 of 2\u2009000\u2009000", page.inner_text("#status"))
    page.keyboard.press("End")
    wait_state(page, "s.atEnd && s.topLine !== null && s.topLine > 1999900")
    check = page.evaluate(CHECK_NUMBERED)
    assert check["bad"] == [] and check["last"] == [2_000_000, "line 1999999"]


def test_fresh_load_at_a_far_line(root: Path, threaded_server, page) -> None:
    """#/path:N for a line far beyond the first window, on a fresh load."""
    (root / "n.txt").write_bytes(numbered(2_000_000))
    server = threaded_server()
    page.goto(server.url + "#/n.txt:1234567")
    wait_state(page, "s.topLine === 1234567")
    assert page.evaluate("window.pagebridgeViewer.topRow().text") == "line 1234566"
    assert page.locator("#rows .row.hl").count() == 1
