"""scan and locate over real sockets: a real server on port 0, real files, the Python collector."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bridge.aio.client import Match, SearchStream, connect
from bridge.core import messages as m
from bridge.errors import ErrorCode, StreamError


async def collect(search: SearchStream) -> list[Match]:
    return [item async for item in search if isinstance(item, Match)]


def grep_lines(data: bytes, needle: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, line number, text) of the lines holding ``needle``: the reference."""
    out, pos = [], 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if needle in line and pos < len(data):
            out.append((pos, number, line[:-1] if line.endswith(b"\r") else line))
        pos += len(line) + 1
    return out


async def test_literal_regex_and_case_over_the_wire(root: Path, start_server) -> None:
    """A literal, a regex and a case-insensitive search give the lines, their offsets, numbers and count."""
    (root / "app.log").write_bytes("start\nERROR disk full\nok\nerror: retry\r\nzoë ÉTÉ\nfin".encode())
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        search = session.search("app.log", "ERROR")
        assert [(x.offset, x.line, x.text) for x in await collect(search)] == [(6, 2, b"ERROR disk full")]
        assert search.count == 1 and search.end is not None and search.end.length == 53
        search = session.search("app.log", "error", ignore_case=True)
        assert [x.text for x in await collect(search)] == [b"ERROR disk full", b"error: retry"]
        search = session.search("app.log", "^(ok|fin)$", regex=True)
        assert [x.line for x in await collect(search)] == [3, 6]
        search = session.search("app.log", "été", ignore_case=True)
        assert [x.text.decode() for x in await collect(search)] == ["zoë ÉTÉ"]
        search = session.search("app.log", "o", count_only=True)
        assert await collect(search) == [] and search.count == 3
        search = session.search("app.log", "r", line_numbers=False, max_text=3)
        assert [(x.line, x.text, x.cut) for x in await collect(search)] == [
            (0, b"sta", True), (0, b"err", True)]


async def test_matches_across_pages_and_blocks(root: Path, start_server) -> None:
    """A 3 MiB log scanned in 256 KiB blocks: every match, whatever block boundary it straddles."""
    lines = [b"line %07d %s" % (i, b"needle" if i % 97 == 0 else b"hay" * (i % 7)) for i in range(120_000)]
    data = b"\n".join(lines) + b"\n"
    (root / "big.log").write_bytes(data)
    server = await start_server(root, scan_block_size=256 << 10)
    async with connect(server.ws_url) as session:
        got = await collect(session.search("big.log", "needle", window=2))
        assert [(x.offset, x.line, x.text) for x in got] == grep_lines(data, b"needle")
        # A range: lines numbered as in the file, the first line cut at the range's start.
        start, length = 1_000_003, 500_000
        got = await collect(session.search("big.log", "needle", offset=start, length=length))
        expected = [(o, n, t) for o, n, t in grep_lines(data, b"needle") if start <= o and o + 25 < start + length]
        assert [(x.offset, x.line, x.text) for x in got] == expected


async def test_line_longer_than_a_block(root: Path, start_server) -> None:
    """A 2 MiB line (blocks of 256 KiB): one match at the line's start, its text capped and cut."""
    long_line = b"a" * (2 << 20) + b"needle" + b"b" * 10
    (root / "long.log").write_bytes(b"first\n" + long_line + b"\nneedle last\n")
    server = await start_server(root, scan_block_size=256 << 10)
    async with connect(server.ws_url) as session:
        got = await collect(session.search("long.log", "needle", max_text=8))
    assert got == [Match(6, 2, b"a" * 8, True), Match(6 + len(long_line) + 1, 3, b"needle l", True)]


async def test_invalid_and_evil_patterns(root: Path, start_server) -> None:
    """A bad regex is bad_request with RE2's message; (a+)+$ on a long line ends (RE2 does not backtrack)."""
    (root / "evil.txt").write_bytes(b"a" * 1_000_000 + b"b\n" + b"aaa\n")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        with pytest.raises(StreamError) as refused:
            await collect(session.search("evil.txt", "(a", regex=True))
        assert refused.value.code is ErrorCode.BAD_REQUEST
        assert "missing )" in refused.value.message
        search = session.search("evil.txt", "(a+)+$", regex=True)
        got = await asyncio.wait_for(collect(search), 30)
        assert [x.line for x in got] == [2]
        # Other refusals: beyond the end, a folder, a mounted source.
        with pytest.raises(StreamError) as refused:
            await collect(session.search("evil.txt", "a", offset=10**9))
        assert refused.value.code is ErrorCode.BAD_REQUEST
        (root / "dir").mkdir()
        with pytest.raises(StreamError) as refused:
            await collect(session.search("dir", "a"))
        assert refused.value.code is ErrorCode.NOT_A_FILE
        with pytest.raises(StreamError) as refused:
            await collect(session.search("../x", "a"))
        assert refused.value.code is ErrorCode.FORBIDDEN


async def test_cancel_mid_scan_frees_the_server(root: Path, start_server) -> None:
    """A scan cancelled after its first hits stops; the connection and the pool serve the next request."""
    data = b"".join(b"match %d\n" % i for i in range(400_000))
    (root / "many.log").write_bytes(data)
    server = await start_server(root, scan_workers=1)
    async with connect(server.ws_url) as session:
        search = session.search("many.log", "match", window=1)
        first = [await search.__anext__() for _ in range(3)]
        assert [x.line for x in first] == [1, 2, 3]
        await search.aclose()
        connection = next(iter(server.connections))
        for _ in range(100):
            if not connection.handles:
                break
            await asyncio.sleep(0.02)
        assert connection.handles == {}
        assert connection.protocol.open_streams == 0
        # The worker is free again: another scan runs to its end.
        search = session.search("many.log", "match 39999", count_only=True)
        await collect(search)
        assert search.count == 11  # 39999 and 399990..399999


async def test_paused_scan_holds_no_worker(root: Path, start_server) -> None:
    """A scan whose consumer stops (no acks) waits for credit without a thread: pages and scans go on."""
    data = b"".join(b"x %d\n" % i for i in range(300_000))
    (root / "a.log").write_bytes(data)
    (root / "small.bin").write_bytes(os.urandom(100_000))
    server = await start_server(root, scan_workers=1)
    async with connect(server.ws_url) as session:
        paused = session.search("a.log", "x", window=1)
        await paused.__anext__()  # one hits message taken, never acknowledged
        assert await session.get_all_pages("small.bin") == (root / "small.bin").read_bytes()
        other = session.search("a.log", "x 299999", count_only=True)
        await collect(other)
        assert other.count == 1
        assert not paused.done
        await paused.aclose()


async def test_follow_scan_with_rotation(root: Path, start_server) -> None:
    """A followed scan filters appended lines live; after rotation, the new file's lines from line 1."""
    log = root / "app.log"
    log.write_bytes(b"keep 1\ndrop\n")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        search = session.search("app.log", "keep", follow=True)
        items = search.__aiter__()

        async def next_item() -> Match | m.Event:
            return await asyncio.wait_for(items.__anext__(), 10)

        assert await next_item() == Match(0, 1, b"keep 1", False)
        with open(log, "ab") as f:
            f.write(b"drop\nkeep 2\nkee")
        assert await next_item() == Match(17, 4, b"keep 2", False)
        with open(log, "ab") as f:
            f.write(b"p 3\n")  # the partial line completes
        assert await next_item() == Match(24, 5, b"keep 3", False)
        with open(log, "ab") as f:
            f.write(b"keep 4 unfinished")
        os.rename(log, root / "app.log.1")
        log.write_bytes(b"new\nkeep 5\n")
        event = await next_item()
        # The old file's last line (no newline) is complete once the file is rotated away.
        if isinstance(event, Match):
            assert event == Match(31, 6, b"keep 4 unfinished", False)
            event = await next_item()
        assert isinstance(event, m.Event) and (event.kind, event.offset) == ("rotated", 0)
        assert await next_item() == Match(4, 2, b"keep 5", False)
        await search.aclose()


async def test_follow_scan_truncation(root: Path, start_server) -> None:
    """copytruncate: a 'truncated' event, then line numbers start again at 1."""
    log = root / "app.log"
    log.write_bytes(b"keep a\n" * 3)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.search("app.log", "keep", follow=True) as search:
            items = search.__aiter__()
            got = [await asyncio.wait_for(items.__anext__(), 10) for _ in range(3)]
            assert [x.line for x in got if isinstance(x, Match)] == [1, 2, 3]
            with open(log, "r+b") as f:
                f.truncate(0)
            await asyncio.sleep(0.3)
            with open(log, "ab") as f:
                f.write(b"x\nkeep b\n")
            event = await asyncio.wait_for(items.__anext__(), 10)
            assert isinstance(event, m.Event) and event.kind == "truncated"
            assert await asyncio.wait_for(items.__anext__(), 10) == Match(2, 2, b"keep b", False)


async def test_locate(root: Path, start_server) -> None:
    """offset -> line and line -> offset, against counting; the totals; refusals."""
    data = b"".join(b"%d\n" % i * (i % 3) for i in range(20_000)) + b"tail"
    (root / "f.txt").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        total = data.count(b"\n") + 1
        for offset in (0, 1, 5, 1000, 65_535, 65_536, 100_000, len(data) - 1, len(data), len(data) + 10):
            found = await session.locate("f.txt", offset=offset)
            clamped = min(offset, len(data) - 1)
            assert (found.line, found.offset) == (data.count(b"\n", 0, clamped) + 1,
                                                  data.rfind(b"\n", 0, clamped) + 1)
            assert (found.lines, found.size) == (total, len(data))
        starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
        for line in (1, 2, 100, 5000, total, total + 5):
            found = await session.locate("f.txt", line=line)
            assert (found.line, found.offset) == (min(line, total), starts[min(line, total) - 1])
        assert (await session.locate("f.txt")).line == 1
        with pytest.raises(StreamError) as refused:
            await session.locate("missing.txt", line=1)
        assert refused.value.code is ErrorCode.NOT_FOUND
        with pytest.raises(StreamError) as refused:
            await session.locate("f.txt", line=0)
        assert refused.value.code is ErrorCode.BAD_REQUEST
        with pytest.raises(ValueError):
            await session.locate("f.txt", line=1, offset=1)


async def test_line_numbers_of_a_range_use_the_index(root: Path, start_server) -> None:
    """A scan from an offset numbers lines as in the file; the index cache stays within its budget."""
    for i in range(30):
        (root / f"f{i}.txt").write_bytes(b"line\n" * (20_000 + i))
    server = await start_server(root, line_index_memory=64 << 10)
    async with connect(server.ws_url) as session:
        for i in range(30):
            got = await collect(session.search(f"f{i}.txt", "line", offset=50_000, length=10))
            assert [x.line for x in got] == [10_001, 10_002]
            assert (await session.locate(f"f{i}.txt", offset=10**9)).lines == 20_000 + i
            assert server.line_index.memory <= 64 << 10


async def test_scan_budget_refuses_with_busy(root: Path, start_server) -> None:
    """Beyond max_scans running at once, a scan is refused with busy; the next one after a scan ends runs."""
    (root / "a.log").write_bytes(b"x\n" * 100_000)
    server = await start_server(root, max_scans=2)
    async with connect(server.ws_url) as session:
        held = [session.search("a.log", "x", window=1) for _ in range(2)]
        for search in held:
            await search.__anext__()  # running (and paused: no acks)
        with pytest.raises(StreamError) as refused:
            await collect(session.search("a.log", "x"))
        assert refused.value.code is ErrorCode.BUSY
        await held[0].aclose()
        for _ in range(100):
            if server.scan_slots.used < 2:
                break
            await asyncio.sleep(0.02)
        search = session.search("a.log", "x", count_only=True)
        await collect(search)
        assert search.count == 100_000
        await held[1].aclose()


@pytest.mark.parametrize("simd", [True, False], ids=["stringzilla", "pure"])
async def test_count_only_equals_reference_and_grep(root: Path, start_server, simd: bool) -> None:
    """grep -c's wire path (count_only) over a real server: exact counts beside a reference and GNU grep,
    with lines holding the literal several times, CRLF, lines longer than a block, no final newline."""
    import random
    import shutil
    import subprocess

    from bridge.scan import matcher as matcher_module

    if simd and matcher_module.SIMD is None:
        pytest.skip("stringzilla is not installed (pagebridge[fast])")
    rng = random.Random(11)
    words = [b"alpha", b"Needle", b"needle", b"needleneedle", b"x", b"\r", "zoë".encode()]
    lines = [b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 9))) for _ in range(40_000)]
    # Lines longer than a 256 KiB block, the literal in the middle and near their ends.
    lines[5_000] = b"y" * (600 << 10) + b" needle " + b"y" * 1000
    lines[20_000] = b"z" * ((256 << 10) - 3) + b"needle" + b"z" * (300 << 10)
    # Longer than the 1 MiB blocks of a count with the default block size:
    # the literal straddles the first window's edge.
    lines[30_000] = b"w" * ((1 << 20) - 3) + b"needle" + b"w" * (1 << 20)
    data = b"\n".join(lines) + b"\r\nlast needle without newline"
    (root / "count.log").write_bytes(data)
    saved = matcher_module.SIMD
    matcher_module.SIMD = saved if simd else None
    cases = ((b"needle", False), (b"needleneedle", False), (b"NEEDLE", True), (b"zo\xc3\xab", False),
             (b"absent", False))
    try:
        for block in (256 << 10, None):  # 256 KiB blocks, and the default (1 MiB when counting a literal)
            server = await start_server(root, **({"scan_block_size": block} if block else {}))
            async with connect(server.ws_url) as session:
                for needle, ignore_case in cases:
                    search = session.search("count.log", needle.decode(), ignore_case=ignore_case,
                                            count_only=True)
                    assert await collect(search) == []
                    folded = (lambda b: b.lower()) if ignore_case else (lambda b: b)
                    expected = sum(1 for line in data.split(b"\n") if folded(needle) in folded(line))
                    assert search.count == expected, (block, needle)
                    if shutil.which("grep"):
                        flags = ["-c", "-F"] + (["-i"] if ignore_case else [])
                        theirs = subprocess.run(["grep", *flags, needle, str(root / "count.log")],
                                                capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
                        assert int(theirs.stdout) == search.count, (block, needle)
    finally:
        matcher_module.SIMD = saved


async def test_scan_progress_starts_at_its_offset(root: Path, start_server) -> None:
    """`scanned` is the scan's start as soon as it opened, before any hits."""
    (root / "r.log").write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.search("r.log", "line 9", offset=1000, length=2000) as search:
            assert search.opened is not None and search.opened.offset == 1000
            assert search.scanned == 1000
            await collect(search)
        # Ended: the whole range, even with no match in it (no progress report came).
        assert search.scanned == 3000
        async with session.search("r.log", "no such line", offset=1000, length=2000) as search:
            assert await collect(search) == []
        assert search.scanned == 3000 and search.count == 0
