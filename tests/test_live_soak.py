"""Soak: a log rotated every ~1.5 s while a collector follows it; every line arrives exactly once.

Bounded in time: PAGEBRIDGE_SOAK_SECONDS (default 6 in CI; run longer by hand).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from bridge.aio.client import connect
from bridge.core import messages as m

SOAK_SECONDS = float(os.environ.get("PAGEBRIDGE_SOAK_SECONDS", "6"))


def write_and_rotate(log: Path, stop: threading.Event, counts: list[int], rotations: list[int]) -> None:
    """Write numbered lines (~5000/s); every 1.5 s rename the log away and create a new one."""
    n = 0
    generation = 0
    f = open(log, "ab", buffering=0)
    next_rotation = time.monotonic() + 1.5
    try:
        while not stop.is_set():
            for _ in range(50):
                f.write(b"%010d %s\n" % (n, b"x" * (n % 40)))
                n += 1
            time.sleep(0.01)
            if time.monotonic() >= next_rotation:
                generation += 1
                os.rename(log, log.with_name(f"{log.name}.{generation}"))
                f.write(b"%010d %s\n" % (n, b"late"))  # the writer's last line in the old file
                n += 1
                f.close()
                f = open(log, "ab", buffering=0)
                next_rotation = time.monotonic() + 1.5
    finally:
        f.close()
        counts.append(n)
        rotations.append(generation)


async def test_soak_rotation_every_line_exactly_once(root: Path, start_server) -> None:
    """Every line written during the soak arrives once, in order, across all rotations."""
    log = root / "soak.log"
    log.write_bytes(b"")
    server = await start_server(root)
    stop = threading.Event()
    counts: list[int] = []
    rotations: list[int] = []
    writer = threading.Thread(target=write_and_rotate, args=(log, stop, counts, rotations))
    received = bytearray()
    events: list[m.Event] = []
    async with connect(server.ws_url) as session:
        async with session.pages("soak.log", follow=True, text=True) as stream:
            writer.start()

            async def follow() -> None:
                async for item in stream:
                    if isinstance(item, m.Event):
                        events.append(item)
                    else:
                        received.extend(item.data)

            reader = asyncio.create_task(follow())
            await asyncio.sleep(SOAK_SECONDS)
            stop.set()
            await asyncio.to_thread(writer.join)
            deadline = time.monotonic() + 30
            while received.count(b"\n") < counts[0] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            reader.cancel()
    numbers = [int(line.split()[0]) for line in bytes(received).splitlines()]
    assert numbers == list(range(counts[0]))
    assert [e.kind for e in events] == ["rotated"] * rotations[0]
    assert rotations[0] >= int(SOAK_SECONDS / 1.5) - 1


def write_and_copytruncate(log: Path, stop: threading.Event, counts: list[int], copies: list[Path]) -> None:
    """Write numbered lines; every 1.5 s copy the log aside and truncate it in place (copytruncate)."""
    import shutil

    n = 0
    next_rotation = time.monotonic() + 1.5
    with open(log, "ab", buffering=0) as f:
        while not stop.is_set():
            for _ in range(50):
                f.write(b"%010d\n" % n)
                n += 1
            time.sleep(0.01)
            if time.monotonic() >= next_rotation:
                copy = log.with_name(f"{log.name}.{len(copies) + 1}")
                shutil.copyfile(log, copy)
                copies.append(copy)
                os.truncate(log, 0)
                next_rotation = time.monotonic() + 1.5
    counts.append(n)


async def test_soak_copytruncate_loses_only_inside_reported_windows(root: Path, start_server) -> None:
    """copytruncate: each generation arrives as an exact prefix of its copy; only its tail may be lost."""
    log = root / "ct.log"
    log.write_bytes(b"")
    server = await start_server(root)
    stop = threading.Event()
    counts: list[int] = []
    copies: list[Path] = []
    writer = threading.Thread(target=write_and_copytruncate, args=(log, stop, counts, copies))
    segments: list[bytearray] = [bytearray()]
    events: list[m.Event] = []
    async with connect(server.ws_url) as session:
        async with session.pages("ct.log", follow=True) as stream:
            writer.start()

            async def follow() -> None:
                async for item in stream:
                    if isinstance(item, m.Event):
                        events.append(item)
                        segments.append(bytearray())
                    else:
                        segments[-1].extend(item.data)

            reader = asyncio.create_task(follow())
            await asyncio.sleep(SOAK_SECONDS)
            stop.set()
            await asyncio.to_thread(writer.join)
            final = log.read_bytes()
            deadline = time.monotonic() + 30
            while (len(segments) <= len(copies) or len(segments[-1]) < len(final)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            reader.cancel()
    assert [e.kind for e in events] == ["truncated"] * len(copies)
    generations = [c.read_bytes() for c in copies] + [final]
    assert len(segments) == len(generations)
    for got, whole, event in zip(segments, generations, events + [None], strict=True):
        assert whole.startswith(bytes(got))  # in order, no duplicate, no gap inside the generation
        if event is not None:
            assert event.lost <= len(whole) - len(got)  # the reported loss never overstates
    assert bytes(segments[-1]) == final
    assert len(copies) >= int(SOAK_SECONDS / 1.5) - 1
