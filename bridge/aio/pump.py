"""The pump: one WebSocket's I/O around a sans-I/O protocol, for both shells.

A :class:`Pump` owns what a connection needs at run time and nothing about
streams: the read loop that feeds frames to the core, the lock that keeps
outgoing frames in the core's order, the tasks started on the connection's
behalf (each owned here and cancelled when the connection ends, like a
``TaskGroup`` whose members may fail alone), and the close, with the code the
core decided and a bounded wait.

Both :class:`bridge.aio.server.PagerConnection` and
:class:`bridge.aio.client.Session` run on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, Protocol, TypeVar

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from ..errors import CloseCode
from .wire import FrameWriter

log = logging.getLogger("bridge.pump")

Event = TypeVar("Event")
Event_co = TypeVar("Event_co", covariant=True)
T = TypeVar("T")


class SansIOProtocol(Protocol[Event_co]):
    """What the pump needs of a core protocol (PagerProtocol, CollectorProtocol)."""

    @property
    def close_code(self) -> CloseCode | None: ...

    @property
    def close_reason(self) -> str: ...

    @property
    def has_data_to_send(self) -> bool: ...

    def data_to_send(self) -> Sequence[bytes | memoryview]: ...

    def receive(self, frame: bytes) -> Sequence[Event_co]: ...

    def receive_text(self) -> Sequence[Event_co]: ...


class Pump(Generic[Event]):
    """Moves frames between ``ws`` and ``protocol``; owns the connection's tasks.

    Args:
        ws: an open websockets connection (server or client side).
        protocol: the sans-I/O core of this side.
        on_events: called with the events of each received frame, in order;
            it must not block (start tasks with :meth:`spawn`).
        close_timeout: how long a close may wait for queued frames and the
            peer's close frame before the transport is aborted.  A peer
            that does not read cannot hold a connection (and its buffers)
            open beyond it.
    """

    def __init__(self, ws: Connection, protocol: SansIOProtocol[Event],
                 on_events: Callable[[Sequence[Event]], None], *, close_timeout: float = 5.0,
                 name: str = "connection") -> None:
        self.ws = ws
        self.protocol = protocol
        self.on_events = on_events
        self.close_timeout = close_timeout
        self.name = name
        self._send_lock = asyncio.Lock()
        # A server writes its frames itself (bridge/aio/wire.py) where it can.
        self._writer = FrameWriter.for_connection(ws)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # ------------------------------------------------------------ tasks

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Start a task owned by this connection: cancelled and awaited when it ends."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None \
                and not isinstance(exc, ConnectionClosed):
            log.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)

    @property
    def task_count(self) -> int:
        return len(self._tasks)

    async def shutdown(self, reason: str) -> None:
        """Cancel every owned task and wait for each to finish its clean-up."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel(reason)
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ output

    async def flush(self) -> None:
        """Send what the core queued, in its order."""
        if not self.protocol.has_data_to_send:
            return
        async with self._send_lock:
            frames = self.protocol.data_to_send()
            if self._writer is not None:
                await self._writer.send(frames)
                return
            for frame in frames:
                await self.ws.send(frame)

    def flush_soon(self) -> None:
        """Flush from code that cannot await (the task is owned; a closed socket is ignored)."""
        if self.protocol.has_data_to_send and not self._closing:
            self.spawn(self._flush_quietly(), name=f"{self.name}-flush")

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.flush()

    # ------------------------------------------------------------ input

    def feed(self, frame: str | bytes) -> None:
        """Hand one received frame to the core and its events to ``on_events``."""
        if isinstance(frame, str):
            events = self.protocol.receive_text()
        else:
            events = self.protocol.receive(frame)
        if events:
            self.on_events(events)

    async def run(self, *, first_frame_timeout: float | None = None,
                  on_first_frame_timeout: Callable[[], Sequence[Event]] | None = None) -> None:
        """Read until the connection ends or the core fails it; then close it.

        ``first_frame_timeout`` bounds the wait for the peer's first frame
        (the server's hello timeout); when it passes,
        ``on_first_frame_timeout()`` fails the core, whose close code is used.
        """
        ws = self.ws
        try:
            if first_frame_timeout is not None:
                try:
                    async with asyncio.timeout(first_frame_timeout):
                        first = await ws.recv()
                except TimeoutError:
                    if on_first_frame_timeout is not None:
                        self.on_events(on_first_frame_timeout())
                else:
                    self.feed(first)
                    await self.flush()
            while self.protocol.close_code is None:
                frame = await ws.recv()
                self.feed(frame)
                await self.flush()
        except ConnectionClosed:
            pass
        if self.protocol.close_code is not None:
            await self.close(self.protocol.close_code, self.protocol.close_reason)

    # ------------------------------------------------------------ closing

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send what is queued and a close frame, waiting at most ``close_timeout``.

        A peer that reads nothing would keep queued frames (and pongs) in
        our write buffer forever; past the timeout the transport is aborted.
        """
        if self._closing:
            return
        self._closing = True
        try:
            async with asyncio.timeout(self.close_timeout):
                with contextlib.suppress(ConnectionClosed):
                    await self.flush()
                    await self.ws.close(code, reason[:120])
        except TimeoutError:
            log.info("%s: peer did not complete the close in %.1f s; aborting", self.name,
                     self.close_timeout)
            self.abort()

    def abort(self) -> None:
        """Drop the connection now, discarding whatever is buffered."""
        transport = self.ws.transport
        if transport is not None:
            transport.abort()


__all__ = ["Pump", "SansIOProtocol"]
