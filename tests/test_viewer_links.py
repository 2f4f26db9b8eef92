"""Deep links and history: the URL fragment names what is on screen, on a fresh load too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import CHECK_NUMBERED, numbered, wait_state

pytestmark = pytest.mark.browser


def test_fresh_load_at_a_line_highlights_it(root: Path, threaded_server, page) -> None:
    """#/path:N on a fresh load shows line N at the top, highlighted, with its true number."""
    (root / "n.txt").write_bytes(numbered(100_000))
    server = threaded_server()
    page.goto(server.url + "#/n.txt:4321")
    state = wait_state(page, "s.topLine === 4321")
    assert page.evaluate("window.pagebridgeViewer.topRow().text") == "line 0004320"
    row = page.locator("#rows .row.hl")
    assert row.count() == 1
    assert row.locator(".gutter").inner_text().strip() == "4321"
    assert state["hash"] == "#/n.txt:4321"
    assert page.evaluate(CHECK_NUMBERED)["bad"] == []


def test_fresh_load_at_the_end_follows(root: Path, threaded_server, page) -> None:
    """#/path:end opens at the end of the file, following it."""
    path = root / "live.log"
    path.write_bytes(numbered(200_000))
    server = threaded_server()
    page.goto(server.url + "#/live.log:end")
    state = wait_state(page, f"s.follow && s.reading === 'following' && s.end === {13 * 200_000}")
    assert state["start"] > 0  # it did not read the file from the top
    assert page.evaluate("window.pagebridgeViewer.visibleText().slice(-1)[0]").endswith("line 0199999")
    with open(path, "ab") as f:
        f.write(numbered(3, 200_000))
    page.wait_for_function("() => window.pagebridgeViewer.visibleText().slice(-1)[0].endsWith('line 0200002')")


def test_names_with_colons_and_odd_characters(root: Path, threaded_server, page) -> None:
    """Percent-encoded segments: a ':' or '#' or space in a name is part of the name, never a position."""
    folder = root / "a:b #1"
    folder.mkdir()
    (folder / "12:30 log:7").write_bytes(numbered(500))
    server = threaded_server()
    page.goto(server.url + "#/a%3Ab%20%231/12%3A30%20log%3A7:20")
    state = wait_state(page, "s.topLine === 20")
    assert state["path"] == "a:b #1/12:30 log:7"
    assert page.locator("#crumbs a").all_inner_texts() == ["/", "a:b #1/", "12:30 log:7"]
    page.click("#crumbs a >> nth=1")
    page.wait_for_selector("#entries a")
    assert page.locator("#entries a").all_inner_texts() == ["12:30 log:7"]
    page.click("#entries a")
    wait_state(page, "s.path === 'a:b #1/12:30 log:7' && s.topLine === 1")
    assert page.evaluate("location.hash") == "#/a%3Ab%20%231/12%3A30%20log%3A7"


def test_the_fragment_follows_the_view_and_back_forward_move_between_positions(root: Path, threaded_server, page) -> None:
    """Scrolling rewrites the line in the fragment; jumps add history entries; back and forward return to them."""
    (root / "n.txt").write_bytes(numbered(50_000))
    (root / "other.txt").write_bytes(numbered(10))
    server = threaded_server()
    page.goto(server.url + "#/")
    page.click("text=n.txt")
    wait_state(page, "s.path === 'n.txt' && s.topLine === 1")
    page.locator("#lines").focus()
    page.keyboard.press("PageDown")
    page.wait_for_function("() => location.hash === '#/n.txt:' + (window.pagebridgeViewer.state().height)")
    page.fill("#jump-to", "3000")
    page.press("#jump-to", "Enter")
    wait_state(page, "s.topLine === 3000 && s.hash === '#/n.txt:3000'")
    page.fill("#jump-to", "40000")
    page.press("#jump-to", "Enter")
    wait_state(page, "s.topLine === 40000 && s.hash === '#/n.txt:40000'")
    page.go_back()
    wait_state(page, "s.topLine === 3000")
    page.go_back()
    state = wait_state(page, "s.topLine !== null && s.topLine < 100")
    assert state["path"] == "n.txt"
    page.go_forward()
    wait_state(page, "s.topLine === 3000")
    page.goto(server.url + "#/other.txt")
    wait_state(page, "s.path === 'other.txt'")
    page.go_back()
    wait_state(page, "s.path === 'n.txt' && s.topLine === 3000")
    page.go_back()
    page.go_back()
    page.wait_for_selector("#entries a")
    assert page.evaluate("location.hash") in ("", "#/")
