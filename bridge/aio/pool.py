"""Shared connections: many sessions' streams over a few WebSockets.

A connection costs both sides a few milliseconds of CPU (TCP and WebSocket
handshakes, ``hello``, tasks, the close: bench/README.md "Connections"),
while a stream on an open connection costs a few messages.  The protocol
multiplexes up to ``max_streams`` streams per connection (the server says
how many in ``welcome``), so a process that runs many collectors at once
should open few connections and many streams::

    async with bridge.Pool("ws://host:8765/ws", max_connections=4) as pool:
        async def collect(name):
            async with pool.connect() as session:     # no handshake: a view on the pool
                return await session.get_all_pages(name)
        results = await asyncio.gather(*(collect(n) for n in names))

or, without managing a pool, ``bridge.connect(url, shared=True)``: sessions
of the same event loop with the same URL(s), token and options share one
pool (:func:`shared_pool`), whose idle connections close after
``idle_timeout``.

The rules, each enforced here:

* a connection carries at most ``min(streams_per_connection,
  welcome.max_streams)`` streams at once, and of those at most
  ``transfers_per_connection`` transfers (streams that do not follow: a
  download, ``get_all_pages``, a scan to the end); a new stream goes on
  the first connection with room (packing, so few connections stay open),
  a new connection is opened when all are full, and beyond
  ``max_connections`` a stream waits (first come, first served among its
  kind) until one ends;
* a connection that fails fails only its own streams (each raises
  ConnectionClosedError); the next streams go on a new connection;
* closing a session cancels its own streams, never the others'; closing
  the pool closes every connection.

Replicas (a list of URLs) work as for :func:`~bridge.aio.client.connect`: a
new connection goes to the first replica that answers, and
:meth:`Session.download` resumes on another connection when its own is lost.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import logging
import ssl as ssl_module
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Generic, TypeVar

from ..core import messages as m
from ..core.limits import MAX_STREAMS
from ..errors import CancelledStreamError, ConnectionClosedError
from ..scan.index import Location
from ..scan.lines import Match
from .client import Entry, PageStream, SearchStream, Session, _Connect, _StreamHandle

log = logging.getLogger("bridge.pool")

#: Connections a pool opens at most, by default: 16 x 64 streams is 1 024
#: streams at once, and 16 connections cost ~0.1 s of CPU to open.
DEFAULT_MAX_CONNECTIONS = 16

#: Transfers (streams that do not follow) a connection carries at once, by
#: default.  Each running transfer keeps about one page in flight on its way
#: to a consumer that may not be reading yet; 16 per connection (256 in a
#: default pool) keeps that memory warm and reused, where 64 per connection
#: made 1 000 concurrent 1 MiB collectors 0.58-0.86x a single stream
#: (bench/README.md, "1000 collectors after the third round").  Followers
#: mostly wait for the file to grow, so they are counted only against
#: ``streams_per_connection``.
DEFAULT_TRANSFERS_PER_CONNECTION = 16


class Pool:
    """A bounded set of connections to one server, shared by many sessions.

    Args:
        url, token, ssl, open_timeout, max_window_bytes: as for
            :func:`~bridge.aio.client.connect`.
        max_connections: connections open at once, at most.
        streams_per_connection: streams per connection, at most (the
            server's ``max_streams`` caps it too); None: the server's.
        transfers_per_connection: of those, streams that do not follow
            (downloads, reads to the end, scans that end), at most; None:
            as many as ``streams_per_connection``.
        idle_timeout: a connection with no stream and no request for this
            long is closed (None: kept until :meth:`close`).

    Use it in one event loop; :meth:`connect` gives sessions.
    """

    def __init__(self, url: str | Sequence[str], token: str | None = None, *,
                 ssl: ssl_module.SSLContext | None = None, open_timeout: float = 10,
                 max_window_bytes: int = 32 * 1024 * 1024,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 streams_per_connection: int | None = None,
                 transfers_per_connection: int | None = DEFAULT_TRANSFERS_PER_CONNECTION,
                 idle_timeout: float | None = 5.0) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if streams_per_connection is not None and streams_per_connection < 1:
            raise ValueError("streams_per_connection must be at least 1")
        if transfers_per_connection is not None and transfers_per_connection < 1:
            raise ValueError("transfers_per_connection must be at least 1")
        self._connector = _Connect(url, token, ssl, open_timeout, max_window_bytes)
        self.max_connections = max_connections
        self.streams_per_connection = streams_per_connection
        self.transfers_per_connection = transfers_per_connection
        self.idle_timeout = idle_timeout
        #: Open connections (welcomed), in the order they were opened.
        self._links: list[Session] = []
        self._opening = 0
        #: Streams waiting for room, first come first served within each kind
        #: (key: is it a transfer); a waiter is woken with the connection whose
        #: room was held for it, or None to look again.
        self._waiters: dict[bool, collections.deque[asyncio.Future[Session | None]]] = {
            False: collections.deque(), True: collections.deque()}
        #: The transfers running on each connection.
        self._transfers: dict[Session, set[_StreamHandle]] = {}
        #: Room held for woken waiters that have not run yet: [streams, transfers].
        self._held: dict[Session, list[int]] = {}
        self._idle: dict[Session, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # ------------------------------------------------------------ public

    @property
    def urls(self) -> list[str]:
        return list(self._connector.urls)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._links)

    @property
    def streams(self) -> int:
        """Streams open now, on all connections."""
        return sum(len(link.streams) for link in self._links)

    def connect(self) -> _PooledConnect:
        """A session on this pool: ``async with pool.connect() as session`` (or ``await``).

        Opening it costs no round trip once a connection is open; its
        streams and requests go on the pool's connections.
        """
        return _PooledConnect(self)

    async def close(self) -> None:
        """Close every connection (their streams fail with ConnectionClosedError)."""
        self._closed = True
        self._wake_all(ConnectionClosedError("the pool is closed"))
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        links, self._links = self._links, []
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ links

    def _capacity(self, link: Session) -> int:
        welcome = link.welcome
        limit = welcome.max_streams if welcome is not None else 1
        if self.streams_per_connection is not None:
            limit = min(limit, self.streams_per_connection)
        return limit

    @staticmethod
    def _alive(link: Session) -> bool:
        return link._error is None and not link._reader.done()

    def _free(self, link: Session, transfer: bool) -> int:
        """Streams of this kind the connection can take now (room held for woken waiters excluded)."""
        held = self._held.get(link, (0, 0))
        free = self._capacity(link) - len(link.streams) - held[0]
        if transfer and self.transfers_per_connection is not None:
            free = min(free, self.transfers_per_connection - len(self._transfers.get(link, ())) - held[1])
        return free

    def _room(self, transfer: bool) -> Session | None:
        """The first live connection with room for one more stream of this kind."""
        for link in self._links:
            if self._free(link, transfer) > 0 and self._alive(link):
                return link
        return None

    async def _link_for_stream(self, transfer: bool) -> Session:
        """A connection with room for a stream; returns with no await after the check.

        The caller opens its stream at once (``Session.pages`` is
        synchronous) and reports it with :meth:`_started`, so the room found
        is still there.
        """
        while True:
            if self._closed:
                raise ConnectionClosedError("the pool is closed")
            link = self._room(transfer)
            if link is not None:
                self._busy(link)
                return link
            self._open_for(len(self._waiters[transfer]) + 1, transfer)
            held = await self._wait(transfer)
            if held is not None:
                self._release(held, transfer)  # the room is free again, and this caller is first to look

    def _started(self, link: Session, stream: _StreamHandle, transfer: bool) -> None:
        if transfer:
            self._transfers.setdefault(link, set()).add(stream)

    def _expected_capacity(self, transfer: bool) -> int:
        """Streams of a kind a connection being opened will take (the server's limit is known once one is)."""
        limit = self._capacity(self._links[0]) if self._links else self.streams_per_connection or MAX_STREAMS
        if transfer and self.transfers_per_connection is not None:
            limit = min(limit, self.transfers_per_connection)
        return limit

    def _open_for(self, waiting: int, transfer: bool) -> None:
        """Open connections for ``waiting`` streams of a kind beyond those being opened, within the bound."""
        expected = self._expected_capacity(transfer)
        while (waiting > self._opening * expected
               and len(self._links) + self._opening < self.max_connections):
            self._start_opening()

    async def _link_for_request(self) -> Session:
        """The live connection with the fewest requests in progress (opening one if none)."""
        while True:
            if self._closed:
                raise ConnectionClosedError("the pool is closed")
            live = [link for link in self._links if self._alive(link)]
            if live:
                link = min(live, key=lambda link: len(link._requests))
                self._busy(link)
                return link
            if self._opening == 0:
                self._start_opening()
            held = await self._wait(False)  # woken once a connection is up
            if held is not None:
                self._release(held, False)

    async def _wait(self, transfer: bool) -> Session | None:
        """Wait for room: the connection whose room is held for this caller, or None."""
        waiter: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[transfer]
        queue.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                held = waiter.result()
                if held is not None:
                    self._release(held, transfer)
                self._wake()  # woken just as we were cancelled: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)

    def _hold(self, link: Session, transfer: bool) -> None:
        held = self._held.setdefault(link, [0, 0])
        held[0] += 1
        held[1] += transfer

    def _release(self, link: Session, transfer: bool) -> None:
        held = self._held.get(link)
        if held is not None:
            held[0] -= 1
            held[1] -= transfer
            if held == [0, 0]:
                del self._held[link]

    def _wake(self) -> None:
        """Wake the first waiters of each kind for which a connection has room, holding it for them."""
        for transfer, queue in self._waiters.items():
            while queue:
                link = self._room(transfer)
                if link is None:
                    break
                waiter = queue.popleft()
                if not waiter.done():
                    self._hold(link, transfer)
                    waiter.set_result(link)

    def _wake_all(self, error: BaseException | None = None) -> None:
        for queue in self._waiters.values():
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)

    def _start_opening(self) -> None:
        self._opening += 1
        task = asyncio.get_running_loop().create_task(self._open_link(), name="pool-connect")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_link(self) -> None:
        connector = self._connector
        try:
            ws, protocol, url = await connector.open_link()
            link = Session(ws, protocol, url=url)
            try:
                await link._start()
            except BaseException:
                await link.close()
                raise
        except asyncio.CancelledError:
            self._opening -= 1
            raise
        except Exception as exc:
            self._opening -= 1
            # Those waiting asked for a connection that cannot be made; they
            # would each try again and fail the same way.
            self._wake_all(exc)
            return
        self._opening -= 1
        if self._closed:
            await link.close()
            return
        link.on_stream_done = lambda stream: self._stream_done(link, stream)
        link._reader.add_done_callback(lambda _: self._link_lost(link))
        self._links.append(link)
        self._wake()
        for transfer, queue in self._waiters.items():
            self._open_for(len(queue), transfer)
        self._maybe_idle(link)

    def _stream_done(self, link: Session, stream: _StreamHandle) -> None:
        transfers = self._transfers.get(link)
        if transfers is not None:
            transfers.discard(stream)
        self._wake()
        self._maybe_idle(link)

    def _link_lost(self, link: Session) -> None:
        with contextlib.suppress(ValueError):
            self._links.remove(link)
        self._transfers.pop(link, None)
        self._held.pop(link, None)
        handle = self._idle.pop(link, None)
        if handle is not None:
            handle.cancel()
        link.pump.abort()  # the reader ended (or was cancelled with the loop): drop the socket too
        if not self._closed:
            # Waiters may now open a new connection in its place.
            self._wake_all()

    def _busy(self, link: Session) -> None:
        handle = self._idle.pop(link, None)
        if handle is not None:
            handle.cancel()

    def _maybe_idle(self, link: Session) -> None:
        """Start the idle timer of a connection that has nothing to do."""
        if self.idle_timeout is None or link.streams or link._requests or link in self._idle:
            return
        self._idle[link] = asyncio.get_running_loop().call_later(self.idle_timeout, self._close_idle, link)

    def _close_idle(self, link: Session) -> None:
        self._idle.pop(link, None)
        if link.streams or link._requests or link not in self._links:
            return
        self._links.remove(link)
        task = asyncio.get_running_loop().create_task(link.close(), name="pool-close-idle")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _request_done(self, link: Session) -> None:
        self._maybe_idle(link)


class PooledSession(Session):
    """A session whose streams and requests go on a :class:`Pool`'s connections.

    It offers what :class:`~bridge.aio.client.Session` offers (``pages``,
    ``get_all_pages``, ``download``, ``search``, ``locate``, ``list``),
    with the same flow control and checks per stream.  It has no connection
    of its own: ``ws``, ``protocol`` and ``pump`` are not set, and
    :attr:`welcome` is the one of the first connection.  Closing it cancels
    its own streams that are still open.
    """

    def __init__(self, pool: Pool) -> None:  # no super().__init__(): no connection of its own
        self.pool = pool
        self.url = pool._connector.url
        self._connector = pool._connector
        self._open: set[_PooledStream[Any]] = set()
        self._closed = False

    @property
    def welcome(self) -> m.Welcome | None:
        links = self.pool._links
        return links[0].welcome if links else None

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosedError("the session is closed")

    async def flush(self) -> None:
        """Nothing to flush: each stream's connection sends its own messages."""

    async def _fail_over(self) -> None:
        """The lost connection has left the pool: the next stream goes on another."""

    # ------------------------------------------------------------ streams and requests

    def pages(self, path: str, offset: int = 0, length: int | None = None, *,
              window: int | None = None, page_size: int | None = None,
              if_match: str | None = None, follow: bool = False, text: bool = False,
              sha256: bool = False, integrity: bool = True, compress: bool = False) -> PageStream:
        """As :meth:`Session.pages`; the stream is opened on a connection with room
        when first awaited (it waits for one while the pool is full)."""
        self._check_open()
        stream = PooledPageStream(self, lambda link: link.pages(
            path, offset, length, window=window, page_size=page_size, if_match=if_match, follow=follow,
            text=text, sha256=sha256, integrity=integrity, compress=compress), transfer=not follow)
        self._open.add(stream)
        return stream

    def search(self, path: str, pattern: str, *, regex: bool = False, ignore_case: bool = False,
               offset: int = 0, length: int | None = None, follow: bool = False,
               window: int = 8, max_text: int | None = None, count_only: bool = False,
               line_numbers: bool = True, keep_cr: bool = False) -> SearchStream:
        """As :meth:`Session.search`, on a connection of the pool."""
        self._check_open()
        stream = PooledSearchStream(self, lambda link: link.search(
            path, pattern, regex=regex, ignore_case=ignore_case, offset=offset, length=length,
            follow=follow, window=window, max_text=max_text, count_only=count_only,
            line_numbers=line_numbers, keep_cr=keep_cr), transfer=not follow)
        self._open.add(stream)
        return stream

    async def _list(self, path: str) -> builtins.list[Entry]:
        self._check_open()
        link = await self.pool._link_for_request()
        try:
            return await link._list(path)
        finally:
            self.pool._request_done(link)

    async def locate(self, path: str, *, offset: int | None = None, line: int | None = None) -> Location:
        self._check_open()
        link = await self.pool._link_for_request()
        try:
            return await link.locate(path, offset=offset, line=line)
        finally:
            self.pool._request_done(link)

    async def close(self) -> None:
        """Cancel this session's open streams; the connections stay with the pool."""
        self._closed = True
        streams, self._open = self._open, set()
        for stream in streams:
            await stream.aclose()

    def _done(self, stream: _PooledStream[Any]) -> None:
        self._open.discard(stream)


S = TypeVar("S", bound=_StreamHandle)


class _PooledStream(Generic[S]):
    """What both pooled stream kinds share: the real stream, opened on one of
    the pool's connections when first awaited, and its state mirrored.

    The pooled classes do not run their base class's ``__init__``: there is
    no stream of their own until the pool finds room; ``id``, ``opened``,
    ``end`` and ``done`` mirror the inner stream's after every step.
    """

    _pooled: PooledSession
    _open_on: Callable[[Session], S]
    _transfer: bool
    _inner: S | None
    _what = "stream"
    id: int
    opened: m.Opened | None
    end: m.End | None
    done: bool

    def _start_pooled(self, session: PooledSession, open_on: Callable[[Session], S], transfer: bool) -> None:
        self._pooled = session
        self._open_on = open_on
        self._transfer = transfer
        self._inner = None
        self.id = -1
        self.opened = None
        self.end = None
        self.done = False

    async def _bind(self) -> S:
        if self._inner is None:
            if self.done:
                raise CancelledStreamError(f"the {self._what} was closed before it started")
            pool = self._pooled.pool
            try:
                link = await pool._link_for_stream(self._transfer)
            except BaseException:
                self.done = True  # never opened: nothing to cancel
                self._pooled._done(self)
                raise
            self._inner = self._open_on(link)  # no await since the room was found
            pool._started(link, self._inner, self._transfer)
            self.id = self._inner.id
        return self._inner

    def _sync(self, inner: S) -> None:
        self.opened, self.end, self.done = inner.opened, inner.end, inner.done
        if self.done:
            self._pooled._done(self)

    async def wait_opened(self) -> m.Opened:
        inner = self._inner or await self._bind()
        try:
            return await inner.wait_opened()
        finally:
            self._sync(inner)

    async def aclose(self) -> None:
        self.done = True
        self._pooled._done(self)
        if self._inner is not None:
            await self._inner.aclose()


class PooledPageStream(_PooledStream[PageStream], PageStream):
    """A :class:`PageStream` opened on a pool's connection when first awaited."""

    def __init__(self, session: PooledSession, open_on: Callable[[Session], PageStream], *,
                 transfer: bool = True) -> None:
        self._start_pooled(session, open_on, transfer)

    async def __anext__(self) -> m.Page | m.Event:
        inner = self._inner or await self._bind()
        try:
            return await inner.__anext__()
        finally:
            self._sync(inner)


class PooledSearchStream(_PooledStream[SearchStream], SearchStream):
    """A :class:`SearchStream` started on a pool's connection when first awaited."""

    _what = "scan"

    def __init__(self, session: PooledSession, open_on: Callable[[Session], SearchStream], *,
                 transfer: bool = True) -> None:
        self._start_pooled(session, open_on, transfer)
        self.count = 0
        self.scanned = 0

    def _sync(self, inner: SearchStream) -> None:
        self.count, self.scanned = inner.count, inner.scanned
        super()._sync(inner)

    async def __anext__(self) -> Match | m.Event:
        inner = self._inner or await self._bind()
        try:
            return await inner.__anext__()
        finally:
            self._sync(inner)

    async def batches(self) -> AsyncIterator[builtins.list[Match] | m.Event]:
        inner = self._inner or await self._bind()
        try:
            async for batch in inner.batches():
                self._sync(inner)
                yield batch
        finally:
            self._sync(inner)


class _PooledConnect:
    """``await pool.connect()`` or ``async with pool.connect() as session``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.session: PooledSession | None = None

    async def _connect(self) -> PooledSession:
        if self.pool._closed:
            raise ConnectionClosedError("the pool is closed")
        return PooledSession(self.pool)

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def __aenter__(self) -> PooledSession:
        self.session = await self._connect()
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()


#: One pool per event loop and (urls, token, ssl, options), for connect(shared=True).
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Pool]] = \
    weakref.WeakKeyDictionary()


def shared_pool(url: str | Sequence[str], token: str | None = None, *,
                ssl: ssl_module.SSLContext | None = None, open_timeout: float = 10,
                max_window_bytes: int = 32 * 1024 * 1024) -> Pool:
    """The running loop's pool for these URL(s), token and options (created on first use).

    Its connections close after being idle for the default ``idle_timeout``
    (and when the loop ends); :func:`~bridge.aio.client.connect` with
    ``shared=True`` uses it.
    """
    loop = asyncio.get_running_loop()
    probe = _Connect(url, token, ssl, open_timeout, max_window_bytes)
    key = (tuple(probe.urls), probe.token, id(ssl) if ssl is not None else None, open_timeout,
           max_window_bytes)
    pools = _SHARED.setdefault(loop, {})
    pool = pools.get(key)
    if pool is None or pool._closed:
        pool = pools[key] = Pool(url, token, ssl=ssl, open_timeout=open_timeout,
                                 max_window_bytes=max_window_bytes)
    return pool


__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_TRANSFERS_PER_CONNECTION", "Pool", "PooledPageStream", "PooledSearchStream", "PooledSession",
           "shared_pool"]
