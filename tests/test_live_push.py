"""Push sources: a subprocess paused by its collector's credits, fan-out with gaps, tail, --source."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bridge.aio.client import connect
from bridge.core import messages as m
from bridge.sources.push import LiveSource, mount_command, mount_live
from tests.conftest import REPO

WRITER = ("import sys\n"
          "n = 0\n"
          "while True:\n"
          "    sys.stdout.buffer.write(b'%09d\\n' % n)\n"
          "    n += 1\n")


def blocked_in_write(pid: int) -> bool:
    """True if the process sleeps inside write(2) on a pipe (Linux /proc)."""
    wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    return wchan == "pipe_write" or syscall == "1"  # 1 is write on x86_64


def written(pid: int) -> int:
    return int(next(line.split()[1] for line in Path(f"/proc/{pid}/io").read_text().splitlines()
                    if line.startswith("wchar:")))


async def test_subprocess_blocks_when_collector_stops_acking(root: Path, start_server) -> None:
    """A command source's child blocks in write(2) while its collector does not ack, and resumes after."""
    server = await start_server(root)
    mount_command(server, "counter", f"{sys.executable} -c \"{WRITER}\"")
    async with connect(server.ws_url) as session:
        async with session.pages("counter", window=2, page_size=4096) as stream:
            received = bytearray()
            async for page in stream:
                received += page.data
                if len(received) > 100_000:
                    break  # stop asking for pages: no more acks
            (child,) = psutil.Process().children()
            await asyncio.sleep(1.0)
            before = written(child.pid)
            await asyncio.sleep(0.5)
            assert written(child.pid) == before, "the child kept writing"
            assert blocked_in_write(child.pid)
            async for page in stream:  # acknowledge again
                received += page.data
                if len(received) > 2_000_000:
                    break
            assert written(child.pid) > before + 1_000_000
    numbers = [int(x) for x in bytes(received).split(b"\n")[:-1]]
    assert numbers[: 10] == list(range(10))
    assert numbers == list(range(len(numbers)))  # no gap for a single collector: it was paused


async def test_fan_out_slow_collector_gets_gap_others_everything(root: Path, start_server) -> None:
    """50 collectors on one source: 49 fast ones get every byte, the slow one a 'gap', memory bounded."""
    chunk_count, chunk = 2000, 1024
    started = asyncio.Event()

    async def produce():
        """A live source with its own pace: about 1 MB/s, like a busy log."""
        await started.wait()
        for i in range(chunk_count):
            yield (b"%08d" % i) * (chunk // 8)
            await asyncio.sleep(0.001)

    source = LiveSource(produce, buffer_bytes=64 * 1024)
    server = await start_server(root)
    mount_live(server, "feed", source)
    expected = b"".join((b"%08d" % i) * (chunk // 8) for i in range(chunk_count))

    async def fast(session) -> bytes:
        out = bytearray()
        async with session.pages("feed", window=16) as stream:
            async for item in stream:
                assert not isinstance(item, m.Event), item
                out += item.data
        return bytes(out)

    async def slow(session) -> tuple[int, list[m.Event]]:
        got = 0
        events = []
        async with session.pages("feed", window=1, page_size=4096) as stream:
            async for item in stream:
                if isinstance(item, m.Event):
                    events.append(item)
                else:
                    got += len(item.data)
                    await asyncio.sleep(0.05)
                if events and got > 200_000:
                    break
        return got, events

    async with connect(server.ws_url) as session:
        tasks = [asyncio.create_task(fast(session)) for _ in range(49)]
        slow_task = asyncio.create_task(slow(session))
        while len(source.subscribers) < 50:
            await asyncio.sleep(0.01)
        peak = 0
        started.set()
        while not all(t.done() for t in tasks):
            peak = max(peak, sum(s.buffered for s in source.subscribers))
            await asyncio.sleep(0.005)
        results = [t.result() for t in tasks]
        got, events = await asyncio.wait_for(slow_task, 30)
    assert all(r == expected for r in results)
    assert events and events[0].kind == "gap" and events[0].lost > 0
    # Server-side memory for the source: at most one buffer (plus one read) per collector.
    assert 0 < peak <= 50 * (64 * 1024 + chunk)


async def test_disconnect_policy_ends_slow_collector(root: Path, start_server) -> None:
    """With on_overflow='disconnect' a collector that falls behind gets too_slow; a fast one goes on."""
    async def produce():
        for _ in range(1000):
            yield b"z" * 1024
            await asyncio.sleep(0.001)

    source = LiveSource(produce, buffer_bytes=8192, on_overflow="disconnect")
    server = await start_server(root)
    mount_live(server, "feed", source)
    from bridge.errors import StreamError

    async def fast(session) -> int:
        return len(await session.get_all_pages("feed", window=16))

    async with connect(server.ws_url) as session:
        fast_task = asyncio.create_task(fast(session))
        with pytest.raises(StreamError) as info:
            async with session.pages("feed", window=1, page_size=1024) as stream:
                async for _ in stream:
                    await asyncio.sleep(0.05)
        assert await asyncio.wait_for(fast_task, 30) == 1000 * 1024
    assert info.value.code.value == "too_slow"


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, timeout=timeout, cwd=REPO)


def test_serve_source_option_pages_a_command(root: Path, server_process) -> None:
    """serve --source NAME='command' mounts the command's output; cat reads it to the end."""
    url = server_process("--source", "numbers=seq 1 20000").start()
    result = run_cli("cat", url, "numbers")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"".join(b"%d\n" % i for i in range(1, 20001))
    listing = run_cli("ls", url)
    assert b"numbers" in listing.stdout


def test_tail_last_lines_reads_only_the_end(root: Path, server_process) -> None:
    """tail -n 3 prints the last three lines of a large file (and of one without a final newline)."""
    lines = b"".join(b"entry %07d\n" % i for i in range(400_000))
    (root / "big.log").write_bytes(lines)
    (root / "nofinal.log").write_bytes(b"a\nb\nc")
    server = server_process()
    url = server.start()
    read_before = psutil.Process(server.proc.pid).io_counters().read_chars
    result = run_cli("tail", "-n", "3", url, "big.log")
    assert result.stdout == b"entry 0399997\nentry 0399998\nentry 0399999\n"
    assert run_cli("tail", "-n", "2", url, "nofinal.log").stdout == b"b\nc"
    assert run_cli("tail", "-n", "10", url, "nofinal.log").stdout == b"a\nb\nc"
    # Reading backwards by blocks: the server read a few blocks, not 5 MB.
    io = psutil.Process(server.proc.pid).io_counters()
    assert io.read_chars - read_before < 1 * 2**20


def test_tail_follow_prints_appended_lines(root: Path, server_process) -> None:
    """tail -f prints the last lines, then each appended line as it is written."""
    log = root / "app.log"
    log.write_bytes(b"old 1\nold 2\n")
    url = server_process().start()
    child = subprocess.Popen([sys.executable, "-m", "bridge", "tail", "-f", "-n", "1", url, "app.log"],
                             stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"old 2\n"
        with open(log, "ab") as f:
            f.write(b"new 1\n")
        assert child.stdout.readline() == b"new 1\n"
    finally:
        child.kill()
        child.wait(10)


def test_never_acking_follower_keeps_server_memory_flat(root: Path, server_process, tmp_path: Path) -> None:
    """A follower that stops acknowledging while 1 GiB is appended: the server's RSS stays flat."""
    log = root / "grow.log"
    log.write_bytes(b"start\n")
    server = server_process()
    url = server.start()
    script = f"""
import asyncio, sys
from bridge.aio.client import connect
async def main():
    async with connect({url!r}) as s:
        async with s.pages("grow.log", follow=True, window=2) as stream:
            await stream.__anext__()
            print("following", flush=True)
            await asyncio.sleep(3600)  # never asks for the next page: no ack
asyncio.run(main())
"""
    follower = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert follower.stdout is not None and follower.stdout.readline() == b"following\n"
        proc = psutil.Process(server.proc.pid)
        rss_before = proc.memory_info().rss
        block = os.urandom(2**20)
        peak = rss_before
        with open(log, "ab") as f:
            for i in range(1024):
                f.write(block)
                if i % 64 == 0:
                    peak = max(peak, proc.memory_info().rss)
        time.sleep(1.0)
        peak = max(peak, proc.memory_info().rss)
        assert peak - rss_before < 16 * 2**20, (rss_before, peak)
        assert proc.io_counters().read_chars < 32 * 2**20  # it read what the credit allowed, no more
    finally:
        follower.kill()
        follower.wait(10)
        log.unlink()
