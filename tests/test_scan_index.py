"""The line index filled by scans, over real sockets: a real server on port 0, real files.

A scan that numbers lines counts every newline of what it reads; the line
index takes those blocks as they go by, so a ``locate`` after a whole-file
search answers from the index with one step read, not a pass over the file.
The proof is the index's own count of the bytes it read (``read_bytes``,
also ``pagebridge_line_index_bytes{how="read"}`` in /metrics).
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from pathlib import Path

from bridge.aio.client import Match, SearchStream, connect
from bridge.core import messages as m
from bridge.scan.index import STEP


async def collect(search: SearchStream) -> list[Match]:
    return [item async for item in search if isinstance(item, Match)]


def log_lines(count: int, start: int = 0) -> bytes:
    """Lines of varying length, a rare one marked."""
    return b"".join(b"%08d %s%s\n" % (i, b"x" * (i * 7919 % 90), b" NEEDLE" if i % 9973 == 0 else b"")
                    for i in range(start, start + count))


def starts_of(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, c in enumerate(data) if c == 10 and i + 1 < len(data)]


async def test_a_full_scan_leaves_the_index_complete(root: Path, start_server) -> None:
    """After a whole-file search, locating far lines reads at most a step or two, not the file; answers exact."""
    data = log_lines(120_000)  # ~6.5 MiB, scanned in 256 KiB blocks
    (root / "app.log").write_bytes(data)
    server = await start_server(root, scan_block_size=256 << 10)
    index = server.line_index
    async with connect(server.ws_url) as session:
        got = await collect(session.search("app.log", "NEEDLE"))
        assert [x.line for x in got] == [i + 1 for i in range(0, 120_000, 9973)]
        assert index.read_bytes == 0 and index.fed_bytes >= len(data)
        starts = starts_of(data)
        for line in (119_999, 100_000, 60_001, 2):
            found = await session.locate("app.log", line=line)
            assert (found.line, found.offset, found.lines) == (line, starts[line - 1], 120_000)
        for offset in (len(data) - 1, len(data) * 3 // 4 + 5):
            found = await session.locate("app.log", offset=offset)
            assert (found.line, found.offset) == (data.count(b"\n", 0, offset) + 1,
                                                  data.rfind(b"\n", 0, offset) + 1)
        # Six look-ups, each reading at most two steps of the file: no pass of its own.
        assert index.read_bytes <= 6 * 2 * STEP < len(data)
    text = (await _metrics(server)).decode()
    assert _value(text, 'pagebridge_line_index_bytes_total{how="read"}') == index.read_bytes
    assert _value(text, 'pagebridge_line_index_bytes_total{how="scanned"}') == index.fed_bytes


async def test_a_scan_from_where_the_index_stops_extends_it(root: Path, start_server) -> None:
    """An index built for a smaller file is extended by a scan of the grown file; count-only scans leave it alone."""
    path = root / "grow.log"
    first = log_lines(20_000)
    path.write_bytes(first)
    server = await start_server(root, scan_block_size=256 << 10)
    index = server.line_index
    async with connect(server.ws_url) as session:
        assert (await session.locate("grow.log", line=10**9)).lines == 20_000
        built = index.read_bytes
        assert built >= len(first)
        more = log_lines(80_000, 20_000)
        with open(path, "ab") as f:
            f.write(more)
        data = first + more
        search = session.search("grow.log", "NEEDLE", count_only=True)
        await collect(search)
        assert search.count == 11 and index.fed_bytes == 0
        await collect(session.search("grow.log", "NEEDLE"))
        assert index.fed_bytes >= len(more)
        found = await session.locate("grow.log", line=99_000)
        assert (found.line, found.offset, found.lines) == (99_000, starts_of(data)[98_999], 100_000)
        # The fingerprint of the old end, then the look-up: a few steps, not the grown part.
        assert index.read_bytes - built <= 4 * STEP


async def test_a_followed_file_index_grows_and_restarts(root: Path, start_server) -> None:
    """Following: appended lines extend the index as they are scanned; truncation and rotation start a new one."""
    path = root / "live.log"
    path.write_bytes(log_lines(30_000))
    server = await start_server(root, scan_block_size=256 << 10)
    index = server.line_index
    async with connect(server.ws_url) as session:
        async with session.search("live.log", "NEEDLE", follow=True) as search:
            items = search.__aiter__()

            async def until(predicate) -> Match | m.Event:
                while True:
                    item = await asyncio.wait_for(items.__anext__(), 20)
                    if predicate(item):
                        return item

            await until(lambda x: isinstance(x, Match) and x.line == 29_920)
            data = log_lines(30_000)
            for batch in range(3):  # the file grows while it is followed
                new = log_lines(10_000, 30_000 + 10_000 * batch)
                with open(path, "ab") as f:
                    f.write(new)
                data += new
                last = max(i for i in range(30_000 + 10_000 * batch, 40_000 + 10_000 * batch)
                           if i % 9973 == 0)
                await until(lambda x, last=last: isinstance(x, Match) and x.line == last + 1)
            await _settled(index, len(data))
            assert index.read_bytes == 0 and index.fed_bytes >= len(data)
            found = await session.locate("live.log", line=59_000)
            assert (found.line, found.offset, found.lines) == (59_000, starts_of(data)[58_999], 60_000)
            assert index.read_bytes <= 2 * STEP
            # Truncated, then written again: a new index from the new bytes.
            with open(path, "r+b") as f:
                f.truncate(0)
            await asyncio.sleep(0.3)
            again = b"short\n" * 100 + log_lines(20_000)
            with open(path, "ab") as f:
                f.write(again)
            event = await until(lambda x: isinstance(x, m.Event))
            assert event.kind == "truncated"
            await until(lambda x: isinstance(x, Match) and x.line == 100 + 19_946 + 1)
            await _settled(index, len(again))
            read = index.read_bytes
            found = await session.locate("live.log", line=15_000)
            assert (found.line, found.offset, found.lines) == (15_000, starts_of(again)[14_999], 20_100)
            assert index.read_bytes - read <= 2 * STEP
            # Rotated: the new file (another inode) is indexed from its first block.
            os.rename(path, root / "live.log.1")
            rotated = log_lines(20_000, 5)
            path.write_bytes(rotated)
            event = await until(lambda x: isinstance(x, m.Event))
            assert (event.kind, event.offset) == ("rotated", 0)
            await until(lambda x: isinstance(x, Match) and x.line == 19_946 - 5 + 1)
            await _settled(index, len(rotated))
            read = index.read_bytes
            found = await session.locate("live.log", line=18_000)
            assert (found.line, found.offset, found.lines) == (18_000, starts_of(rotated)[17_999], 20_000)
            assert index.read_bytes - read <= 2 * STEP


async def _settled(index, size: int) -> None:
    """Wait until the cache holds an index of ``size`` bytes (the scan's last block is counted as it is matched)."""
    for _ in range(200):
        if any(x.size == size for x in index._indexes.values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no index reached {size} bytes: {[x.size for x in index._indexes.values()]}")


async def _metrics(server) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(server.http_url + "metrics", timeout=10) as answer:
            return bytes(answer.read())
    return await asyncio.to_thread(get)


def _value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert found, series
    return float(found.group(1))
