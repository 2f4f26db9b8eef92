"""Push sources: bytes that arrive by themselves, paged with pause and resume.

Twisted's push producers (``IPushProducer``) are paused and resumed by
their consumer.  Here a :class:`LiveSource` reads its producer (an async
iterator, a subprocess's stdout, a socket) only while some collector has
room for more, so when every collector stops acknowledging the producer is
no longer read: a subprocess then blocks in write(2) on its full pipe.

Fan-out: any number of collectors subscribe to one source.  Each has a
bounded buffer (``buffer_bytes``).  The source goes at the pace of the
fastest collector (and pauses only when no collector has room, so a lone
collector is paused, never dropped); a collector whose buffer is full misses
what arrives meanwhile and receives a ``gap`` event naming the bytes it lost (or, with
``on_overflow="disconnect"``, its stream ends with ``too_slow``).  So a
slow collector never slows the others, and server memory stays at most
``buffer_bytes`` per collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..core import messages as m
from ..errors import ErrorCode, StreamError
from .base import Pager, SourceEvent, SourceInfo

#: Per-collector buffer: with 64 KiB a subprocess blocks soon after its
#: collector stops acknowledging (the pipe holds another 64 KiB).
DEFAULT_BUFFER = 256 * 1024
READ_SIZE = 64 * 1024


class Subscriber(Pager):
    """One collector's view of a LiveSource: its buffer, its gaps."""

    live = True

    def __init__(self, source: LiveSource, text: bool = False) -> None:
        super().__init__()
        self.source = source
        self.text = text
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.offset = source.produced  # source byte count of the next byte for this collector
        self.lost = 0  # bytes dropped since the last gap event
        self.ended = False
        self.overflowed = False
        self._ready = asyncio.Event()

    async def start(self) -> SourceInfo:
        self.source.subscribe(self)
        return SourceInfo()

    def offer(self, data: bytes) -> None:
        """The source produced ``data``: keep it, or count it as lost.

        A collector with room takes the whole read (so its buffer may exceed
        ``buffer_bytes`` by one read); a full one loses it.
        """
        if not self.has_room:
            self.lost += len(data)
            self.overflowed = True
        else:
            self.chunks.append(data)
            self.buffered += len(data)
        self._ready.set()

    @property
    def has_room(self) -> bool:
        return self.buffered < self.source.buffer_bytes

    async def next_page(self, size: int) -> bytes | SourceEvent | None:
        while True:
            if self.lost and not self.chunks:
                if self.source.on_overflow == "disconnect":
                    raise StreamError("this collector was too slow for the live source",
                                      ErrorCode.TOO_SLOW)
                lost, self.lost = self.lost, 0
                self.offset += lost
                return SourceEvent("gap", self.offset, lost,
                                   f"{lost} bytes were dropped: this collector fell behind")
            if self.chunks:
                page = self._take(size)
                self.source.wake()  # room again: the source may read on
                return page
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()

    def _take(self, size: int) -> bytes:
        parts = []
        taken = 0
        while self.chunks and taken < size:
            chunk = self.chunks.popleft()
            if taken + len(chunk) > size:
                chunk, rest = chunk[: size - taken], chunk[size - taken:]
                self.chunks.appendleft(rest)
            parts.append(chunk)
            taken += len(chunk)
        self.buffered -= taken
        self.offset += taken
        return b"".join(parts)

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    def close(self) -> None:
        self.source.unsubscribe(self)
        self.chunks.clear()
        self.buffered = 0


class LiveSource:
    """A producer paged to any number of collectors.

    Args:
        produce: an async iterator factory: called once, when the first
            collector subscribes; it is read only while a collector has room.
        buffer_bytes: per-collector buffer.
        on_overflow: ``"gap"`` (default: drop and say so) or ``"disconnect"``.
    """

    def __init__(self, produce: Callable[[], AsyncIterator[bytes]], *,
                 buffer_bytes: int = DEFAULT_BUFFER, on_overflow: str = "gap") -> None:
        if on_overflow not in ("gap", "disconnect"):
            raise ValueError("on_overflow must be 'gap' or 'disconnect'")
        self.produce = produce
        self.buffer_bytes = buffer_bytes
        self.on_overflow = on_overflow
        self.subscribers: set[Subscriber] = set()
        self.produced = 0
        self.finished = False
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def pager(self, request: m.Open | None = None) -> Subscriber:
        """A new collector's pager (use as a mount factory)."""
        return Subscriber(self, text=bool(request and request.text))

    def subscribe(self, subscriber: Subscriber) -> None:
        subscriber.offset = self.produced
        self.subscribers.add(subscriber)
        if self.finished:
            subscriber.end()
        if self._task is None:
            self._task = asyncio.create_task(self._pump())
        self.wake()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self.wake()

    def wake(self) -> None:
        self._room.set()

    async def _pump(self) -> None:
        iterator = self.produce()
        try:
            while True:
                # Pause: read nothing while no collector has room (or none is there).
                while not any(s.has_room for s in self.subscribers):
                    self._room.clear()
                    await self._room.wait()
                try:
                    data = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                if not data:
                    continue
                self.produced += len(data)
                for subscriber in list(self.subscribers):
                    subscriber.offer(data)
        finally:
            self.finished = True
            for subscriber in list(self.subscribers):
                subscriber.end()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def iterate(source: AsyncIterator[bytes]) -> Callable[[], AsyncIterator[bytes]]:
    """Wrap an existing async iterator as a LiveSource producer."""
    return lambda: source


def command_output(command: str | list[str], *, read_size: int = READ_SIZE) -> Callable[[], AsyncIterator[bytes]]:
    """A producer reading a subprocess's stdout.  The child starts with the first collector.

    While nobody has room the pipe is not read, so the child blocks on its
    write: the subprocess is paused by the operating system itself.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)

    async def produce() -> AsyncIterator[bytes]:
        # limit: asyncio's own read-ahead stays at one read_size.
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, limit=read_size)
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(read_size):
                yield chunk
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
                if proc.returncode is None:
                    proc.kill()

    return produce


def mount_live(server: Any, name: str, source: LiveSource) -> None:
    """Serve ``source`` to collectors that open ``name``."""
    server.mount(name, source.pager)


def mount_command(server: Any, name: str, command: str, **options: Any) -> LiveSource:
    """``pagebridge serve --source NAME='command args'``: page a command's output."""
    source = LiveSource(command_output(command), **options)
    mount_live(server, name, source)
    return source


__all__ = ["LiveSource", "Subscriber", "command_output", "iterate", "mount_command", "mount_live"]
