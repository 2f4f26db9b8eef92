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

A source runs on demand: a run starts with the first collector and ends
when the producer does; its collectors then get ``end``, or an
``io_error`` if the producer failed (a command that could not start,
exited non-zero or was killed); the next collector starts a new run
(docs/protocol.md section 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
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
#: After a failed run, seconds before the next collector may start another.
RESTART_DELAY = 1.0

log = logging.getLogger("bridge.sources.push")


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
        self.error: StreamError | None = None  # why the source's run ended, if it failed
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
                if self.error is not None:
                    raise self.error
                return None
            self._ready.clear()
            await self._ready.wait()

    async def ready(self) -> None:
        """Wait for data, a gap to report or the end (no server budget is held meanwhile)."""
        while not (self.chunks or self.lost or self.ended):
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

    def end(self, error: StreamError | None = None) -> None:
        """The source's run ended: after what is buffered, ``end`` (or ``error``)."""
        self.ended = True
        self.error = error
        self._ready.set()

    def close(self) -> None:
        self.source.unsubscribe(self)
        self.chunks.clear()
        self.buffered = 0


class LiveSource:
    """A producer paged to any number of collectors.

    A *run* of the producer starts when a collector subscribes and none is
    running, and lasts until the producer is exhausted or fails.  Its
    collectors then receive what is buffered for them followed by ``end``
    (the producer finished) or an ``io_error`` saying why it failed (for a
    command: could not start, exit status, signal).  The next collector to
    subscribe starts a new run; after a failed run, no sooner than
    ``restart_delay`` seconds after the failure, so a broken command is not
    restarted in a tight loop by collectors that reconnect at once.

    Args:
        produce: an async iterator factory, called once per run; it is read
            only while a collector has room.  It ends a run by returning, or
            by raising (a StreamError is passed on as it is; anything else
            becomes a generic ``io_error``, the details in the log).
        buffer_bytes: per-collector buffer.
        on_overflow: ``"gap"`` (default: drop and say so) or ``"disconnect"``.
        restart_delay: seconds between a failed run and the next one.
    """

    def __init__(self, produce: Callable[[], AsyncIterator[bytes]], *,
                 buffer_bytes: int = DEFAULT_BUFFER, on_overflow: str = "gap",
                 restart_delay: float = RESTART_DELAY) -> None:
        if on_overflow not in ("gap", "disconnect"):
            raise ValueError("on_overflow must be 'gap' or 'disconnect'")
        self.produce = produce
        self.buffer_bytes = buffer_bytes
        self.on_overflow = on_overflow
        self.restart_delay = restart_delay
        self.subscribers: set[Subscriber] = set()
        self.produced = 0
        self.runs = 0  # runs started so far
        self.last_error: StreamError | None = None  # how the last finished run failed, if it did
        self._not_before = 0.0  # loop time before which no new run starts (after a failure)
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def pager(self, request: m.Open | None = None) -> Subscriber:
        """A new collector's pager (use as a mount factory)."""
        return Subscriber(self, text=bool(request and request.text))

    def subscribe(self, subscriber: Subscriber) -> None:
        subscriber.offset = self.produced
        self.subscribers.add(subscriber)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self.wake()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self.wake()

    def wake(self) -> None:
        self._room.set()

    async def _run(self) -> None:
        """One run: produce until exhausted or failed, then end its collectors."""
        error: StreamError | None = None
        try:
            delay = self._not_before - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.runs += 1
            await self._pump()
        except asyncio.CancelledError:
            error = StreamError("the source was stopped by the server", ErrorCode.IO_ERROR)
            raise
        except StreamError as exc:
            error = exc
        except Exception:
            log.exception("live source failed")
            error = StreamError("the source failed; see the server's log", ErrorCode.IO_ERROR)
        finally:
            self.last_error = error
            if error is not None:
                self._not_before = asyncio.get_running_loop().time() + self.restart_delay
            self._task = None
            ending, self.subscribers = self.subscribers, set()
            for subscriber in ending:
                subscriber.end(error)

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
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def close(self) -> None:
        """Stop the running run, if any (its collectors get an ``io_error``)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def iterate(source: AsyncIterator[bytes]) -> Callable[[], AsyncIterator[bytes]]:
    """Wrap an existing async iterator as a LiveSource producer."""
    return lambda: source


def command_output(command: str | list[str], *, read_size: int = READ_SIZE) -> Callable[[], AsyncIterator[bytes]]:
    """A producer reading a subprocess's stdout: one child per run of the source.

    While nobody has room the pipe is not read, so the child blocks on its
    write: the subprocess is paused by the operating system itself.  The run
    ends when the child has closed its stdout *and* exited: exit status 0 is
    a normal end; a child that cannot be started, exits non-zero or is killed
    by a signal fails the run with an ``io_error`` naming the program (its
    base name only: no server path in messages), the status or the signal.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    program = os.path.basename(argv[0]) if argv else "?"

    async def produce() -> AsyncIterator[bytes]:
        try:
            # limit: asyncio's own read-ahead stays at one read_size.
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                limit=read_size)
        except OSError as exc:
            log.warning("command %r could not start: %s", argv[:1], exc)
            raise StreamError(f"command {program!r} could not start: {exc.strerror or exc}",
                              ErrorCode.IO_ERROR) from None
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(read_size):
                yield chunk
            status = await proc.wait()
        finally:
            if proc.returncode is None:  # the run was stopped: stop the child
                proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
                if proc.returncode is None:
                    proc.kill()
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            raise StreamError(f"command {program!r} was killed by signal {name}", ErrorCode.IO_ERROR)
        if status > 0:
            raise StreamError(f"command {program!r} exited with status {status}", ErrorCode.IO_ERROR)

    return produce


def mount_live(server: Any, name: str, source: LiveSource) -> None:
    """Serve ``source`` to collectors that open ``name``."""
    server.mount(name, source.pager)


def mount_command(server: Any, name: str, command: str | list[str], **options: Any) -> LiveSource:
    """``pagebridge serve --source NAME='command args'``: page a command's output."""
    source = LiveSource(command_output(command), **options)
    mount_live(server, name, source)
    return source


__all__ = ["LiveSource", "Subscriber", "command_output", "iterate", "mount_command", "mount_live"]
