"""Following growing files over real sockets: appends, rotation, truncation, deletion."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bridge.aio.client import PageStream, connect
from bridge.core import messages as m

#: Every way a server may watch a folder (bridge/sources/watch.py): inotify on
#: the event loop (the default on Linux), watchfiles (where inotify cannot
#: start), none (followers poll). Followers must see the same in each.
each_watcher = pytest.mark.parametrize("watcher", ["auto", "watchfiles", "poll"], indirect=True)


@pytest.fixture
def watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    monkeypatch.setenv("PAGEBRIDGE_WATCHER", kind)
    return kind


async def collect_until(stream: PageStream, predicate, timeout: float = 10) -> tuple[bytes, list[m.Event]]:
    """Read pages and events until predicate(data, events) holds."""
    data = bytearray()
    events: list[m.Event] = []

    async def run() -> None:
        async for item in stream:
            if isinstance(item, m.Event):
                events.append(item)
            else:
                data.extend(item.data)
            if predicate(bytes(data), events):
                return

    await asyncio.wait_for(run(), timeout)
    return bytes(data), events


@each_watcher
async def test_appended_lines_arrive(root: Path, start_server, watcher: str) -> None:
    """A follower gets the existing content, then each appended line, in order."""
    log = root / "app.log"
    log.write_bytes(b"first\n")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("app.log", follow=True, window=4) as stream:
            assert stream.opened.length is None  # a follow stream has no end
            got, _ = await collect_until(stream, lambda d, e: d == b"first\n")
            with open(log, "ab") as f:
                for i in range(5):
                    f.write(b"line %d\n" % i)
                    f.flush()
                    await asyncio.sleep(0.02)
            got, events = await collect_until(stream, lambda d, e: d.count(b"\n") == 5)
    assert got == b"".join(b"line %d\n" % i for i in range(5))
    assert events == []


@each_watcher
async def test_rename_rotation_delivers_both_files_exactly_once(root: Path, start_server, watcher: str) -> None:
    """logrotate-style rename + create: old file finished, 'rotated' event, new file from offset 0."""
    log = root / "app.log"
    log.write_bytes(b"a1\na2\n")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("app.log", follow=True) as stream:
            await collect_until(stream, lambda d, e: d == b"a1\na2\n")
            with open(log, "ab") as f:
                f.write(b"a3\n")
                os.rename(log, root / "app.log.1")
                f.write(b"a4\n")  # the writer still holds the old file for a moment
            log.write_bytes(b"b1\n")
            with open(log, "ab") as f:
                f.write(b"b2\n")
            got, events = await collect_until(stream, lambda d, e: d.endswith(b"b2\n"))
    assert got == b"a3\na4\nb1\nb2\n"
    assert [(e.kind, e.offset) for e in events] == [("rotated", 0)]


@each_watcher
async def test_copytruncate_emits_truncated(root: Path, start_server, watcher: str) -> None:
    """Truncation in place gives a 'truncated' event, then the new content from offset 0."""
    log = root / "app.log"
    log.write_bytes(b"x" * 100)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("app.log", follow=True) as stream:
            await collect_until(stream, lambda d, e: len(d) == 100)
            with open(log, "r+b") as f:
                f.truncate(0)
            await asyncio.sleep(0.4)
            with open(log, "ab") as f:
                f.write(b"after\n")
            got, events = await collect_until(stream, lambda d, e: d.endswith(b"after\n"))
    assert got == b"after\n"
    assert [(e.kind, e.offset, e.lost) for e in events] == [("truncated", 0, 0)]
    assert "truncated at offset 100" in events[0].detail


@each_watcher
async def test_deletion_emits_deleted(root: Path, start_server, watcher: str) -> None:
    """Removing a followed file gives a 'deleted' event; recreating it gives 'rotated' and its content."""
    log = root / "app.log"
    log.write_bytes(b"one\n")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("app.log", follow=True) as stream:
            await collect_until(stream, lambda d, e: d == b"one\n")
            log.unlink()
            _, events = await collect_until(stream, lambda d, e: bool(e))
            assert [(e.kind, e.offset) for e in events] == [("deleted", 4)]
            log.write_bytes(b"two\n")
            got, events = await collect_until(stream, lambda d, e: d == b"two\n")
    assert [(e.kind, e.offset) for e in events] == [("rotated", 0)]


async def test_text_mode_pages_end_on_line_boundaries(root: Path, start_server) -> None:
    """With text=True every page but a too-long line ends with a newline."""
    lines = b"".join(b"%d %s\n" % (i, b"y" * (i % 50)) for i in range(3000))
    (root / "t.log").write_bytes(lines)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("t.log", text=True, page_size=1000) as stream:
            pages = [p.data async for p in stream]
    assert b"".join(pages) == lines
    assert all(p[-1:] == b"\n" for p in pages)
    assert max(len(p) for p in pages) <= 1000


async def test_follow_offset_beyond_end_is_bad_request(root: Path, start_server) -> None:
    """Following from an offset past the end is refused with bad_request."""
    (root / "f").write_bytes(b"abc")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        from bridge.errors import StreamError

        with pytest.raises(StreamError) as info:
            await session.pages("f", offset=10, follow=True).wait_opened()
    assert info.value.code.value == "bad_request"
