"""The asyncio collector: connect, list, page, collect, download.

::

    async with bridge.connect("ws://127.0.0.1:8765/ws") as session:
        async for page in session.pages("logs/app.log"):
            handle(page.data)           # the page is acknowledged when the loop asks for the next

Like :mod:`bridge.server`, this module moves bytes; the rules live in
:class:`~bridge.protocol.CollectorProtocol`.

Replicas: ``connect([url1, url2, ...])`` connects to the first URL that
answers.  When the connection is lost, :meth:`Session.download` and
:meth:`Session.list` connect to the next replica and carry on (a download
resumes from its ``.part`` file with ``if_match``, so the replicas must
serve the same bytes: the same bucket or the same shared folder, see
docs/deploy.md).  Streams from :meth:`Session.pages` fail with
ConnectionClosedError instead; reopen them with ``offset`` and ``if_match``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import ssl as ssl_module
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from .. import __version__
from ..core import messages as m
from ..core.collector import (
    CollectorEvent,
    CollectorProtocol,
    ConnectionFailed,
    HitsReceived,
    ListingReceived,
    LocatedReceived,
    PageReceived,
    RequestFailed,
    StreamEnded,
    StreamEvent,
    StreamFailed,
    StreamOpened,
    Welcomed,
)
from ..core.limits import BULK_PAGE_SIZE, MAX_PAGE_SIZE, PAGE_OVERHEAD, SUBPROTOCOL
from ..errors import (
    ConnectionClosedError,
    ErrorCode,
    FileChangedError,
    PagebridgeError,
    ProtocolError,
    StreamError,
)
from ..scan.index import Location
from ..scan.lines import Match
from .beside import Beside, write_all
from .pump import Pump
from .receive import ViewConnection

if TYPE_CHECKING:
    from .pool import _PooledConnect

Page = m.Page
LiveEvent = m.Event

log = logging.getLogger("bridge.client")


def normalise_url(url: str) -> str:
    """Accept ws://, wss://, http:// and https:// URLs; default the path to /ws."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}; use ws, wss, http or https")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a directory listing."""

    name: str
    kind: str  # "file", "dir", "source" or "other"
    size: int | None
    mtime: float | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    path: Path
    bytes: int  # size of the complete file
    received: int  # bytes transferred by this call (less than bytes when resumed)
    etag: str | None
    resumed_from: int
    sha256: str | None = None


class _StreamHandle:
    """What a page stream and a scan share on the client: the queue of what the
    core delivered for the stream, waiting for ``opened``, cancelling."""

    _kind = "stream"

    def __init__(self, session: Session, sid: int) -> None:
        self._session = session
        self.id = sid
        # Bounded by the credit window: the core fails a stream whose server
        # sends beyond it.
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._held_seq: int | None = None
        self.opened: m.Opened | None = None
        self.end: m.End | None = None
        self.done = False

    async def wait_opened(self) -> m.Opened:
        """Wait for the server's ``opened`` (raises the stream's error if refused)."""
        if self.opened is None:
            item = await self._next_item()
            if not isinstance(item, m.Opened):  # pragma: no cover - the core orders them
                raise ProtocolError(f"{self._kind} did not start with 'opened'")
            self.opened = item
            self._on_opened(item)
        return self.opened

    def _on_opened(self, opened: m.Opened) -> None:
        """What a subclass learns from ``opened``."""

    async def _next_item(self) -> Any:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self.done = True
            raise item
        return item

    async def aclose(self) -> None:
        """Cancel the stream if it has not ended."""
        if not self.done:
            self.done = True
            self._session._forget(self.id)
            with contextlib.suppress(ConnectionClosed):
                await self._session.pump.flush()

    async def __aenter__(self) -> Self:
        await self.wait_opened()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PageStream(_StreamHandle):
    """An open stream: iterate it for pages (``Page`` with ``.offset`` and ``.data``).

    A page is acknowledged when the loop asks for the next one, so a slow
    loop body slows the server.  In follow mode, live :class:`LiveEvent`
    items (rotation, truncation...) are yielded between pages.  Leaving an
    ``async with`` block or calling :meth:`aclose` early cancels the stream.

    A page's ``data`` is a read-only view of the connection's receive
    buffer (no copy; bridge/aio/receive.py): holding it keeps that buffer,
    up to 4 MiB shared with the pages around it, alive.  To keep a little
    of a page for long, keep ``bytes(page.data[a:b])``.

    This is the client shell's whole handle on a stream: the queue of what
    the core delivered, and the page the consumer holds.  Order, credits and
    integrity live in :class:`~bridge.core.collector.CollectorProtocol`.
    """

    @property
    def etag(self) -> str | None:
        return self.opened.etag if self.opened else None

    @property
    def sha256(self) -> bytes | None:
        """The verified sha256 of the stream, when it was requested and has ended."""
        return self.end.sha256 if self.end else None

    def __aiter__(self) -> PageStream:
        return self

    async def __anext__(self) -> m.Page | m.Event:
        session = self._session
        if self._held_seq is not None:
            # The consumer asked for more: it has taken the previous page.
            session.protocol.consumed(self.id, self._held_seq, time.monotonic())
            self._held_seq = None
            # A lost connection is reported by the reader, as this stream's
            # ConnectionClosedError (next in its queue), not by the ack's send.
            with contextlib.suppress(ConnectionClosed):
                await session.pump.flush()
        if self.done:
            raise StopAsyncIteration
        await self.wait_opened()
        item = await self._next_item()
        if isinstance(item, m.Page):
            self._held_seq = item.seq
            return item
        if isinstance(item, m.End):
            self.end = item
            self.done = True
            raise StopAsyncIteration
        return cast(m.Event, item)  # a live event

    async def consume_beside(self, consume: Callable[[list[m.Page]], None], *,
                             batch_bytes: int = 2 << 20, backlog: int = 3) -> int:
        """Hand every page to ``consume(pages)`` in a worker thread beside the event loop.

        For a consumer that hashes, parses or writes: the event loop keeps
        reading the socket while it works.  ``consume`` gets the pages in
        order, in lists of about ``batch_bytes`` (one thread hand-off per
        list, not per page).  A page counts as taken, and is acknowledged,
        when it joins a list; at most ``backlog`` lists wait, so a slow
        ``consume`` slows the server.  Live events are not passed on.

        Returns the number of bytes consumed; raises the stream's error or
        the one ``consume`` raised.
        """
        beside: Beside[m.Page] = Beside(consume, size=lambda page: len(page.data),
                                        batch_bytes=batch_bytes, backlog=backlog)
        total = 0
        try:
            async for item in self:
                if isinstance(item, m.Page):
                    await beside.put(item)
                    total += len(item.data)
            await beside.drain()
        finally:
            await beside.close()
        return total


class SearchStream(_StreamHandle):
    """A running scan: iterate it for :class:`~bridge.scan.Match` items.

    The matches of one ``hits`` message are acknowledged when the loop asks
    for the match after its last one, so a slow loop slows the server's scan
    (it stops reading the file).  A followed scan also yields
    :class:`LiveEvent` items (``rotated``, ``truncated``...; line numbers
    restart at 1 after those two).  After the loop, :attr:`count` is the
    number of matching lines.  Leaving an ``async with`` block or calling
    :meth:`aclose` early cancels the scan.
    """

    _kind = "scan"

    def __init__(self, session: Session, sid: int) -> None:
        super().__init__(session, sid)
        self._batch: deque[Match] = deque()
        #: Matching lines so far (exact once the scan ended).
        self.count = 0
        #: Offset up to which the file has been scanned.
        self.scanned = 0

    def _on_opened(self, opened: m.Opened) -> None:
        self.scanned = opened.offset

    def __aiter__(self) -> SearchStream:
        return self

    async def __anext__(self) -> Match | m.Event:
        session = self._session
        while True:
            if self._batch:
                return self._batch.popleft()
            if self._held_seq is not None:
                # Every match of the last hits message was taken: acknowledge it.
                session.protocol.consumed(self.id, self._held_seq, time.monotonic())
                self._held_seq = None
                await session.pump.flush()
            if self.done:
                raise StopAsyncIteration
            await self.wait_opened()
            item = await self._next_item()
            if isinstance(item, m.Hits):
                self._held_seq = item.seq
                self.scanned = item.scanned
                if item.count is not None:
                    self.count = item.count
                else:
                    self.count += len(item.matches)
                self._batch.extend(Match(d["offset"], d["line"], d["text"], d["cut"])
                                   for d in item.matches)
                continue
            if isinstance(item, m.End):
                self.end = item
                self.count = item.count if item.count is not None else self.count
                if self.opened is not None:
                    # `end.length` is what the scan read: it may be past the
                    # last progress report (none at all when nothing matched).
                    self.scanned = max(self.scanned, self.opened.offset + item.length)
                self.done = True
                raise StopAsyncIteration
            return cast(m.Event, item)  # a followed file changed

    async def batches(self) -> AsyncIterator[list[Match] | m.Event]:
        """The matches a ``hits`` message at a time (and live events), for consumers of many.

        Same flow control as iterating the stream: a batch is acknowledged
        when the next one is asked for.  Empty progress reports are skipped.
        """
        while True:
            if self._batch:
                batch = list(self._batch)
                self._batch.clear()
                yield batch
                continue
            try:
                item = await self.__anext__()
            except StopAsyncIteration:
                return
            if isinstance(item, Match):
                batch = [item, *self._batch]
                self._batch.clear()
                yield batch
            else:
                yield item


class Session:
    """A connection to a pagebridge server; see :func:`connect`."""

    def __init__(self, ws: ClientConnection, protocol: CollectorProtocol, *,
                 connector: _Connect | None = None, url: str | None = None) -> None:
        #: Where to connect again when the connection is lost (several replicas).
        self._connector = connector
        #: Called with the stream when one of this connection's streams has
        #: ended, failed or been cancelled, so its slot on the server is free
        #: (a Pool listens).
        self.on_stream_done: Callable[[PageStream | SearchStream], None] | None = None
        self._attach(ws, protocol, url)

    def _attach(self, ws: ClientConnection, protocol: CollectorProtocol, url: str | None) -> None:
        """Take a new connection: fresh protocol state, streams and reader."""
        #: The URL this session is connected to.
        self.url = url
        self.ws = ws
        self.protocol = protocol
        self.pump: Pump[CollectorEvent] = Pump(ws, protocol, self._on_events, name="session")
        self.streams: dict[int, PageStream | SearchStream] = {}
        self._requests: dict[int, asyncio.Future[Any]] = {}
        self._welcome: asyncio.Future[m.Welcome] = asyncio.get_running_loop().create_future()
        self._error: PagebridgeError | None = None
        # The session owns its reader; close() awaits it.
        self._reader = asyncio.get_running_loop().create_task(self._run(), name="session-reader")

    @property
    def can_fail_over(self) -> bool:
        """True when this session knows other replicas to connect to."""
        return self._connector is not None and len(self._connector.urls) > 1

    async def _fail_over(self) -> None:
        """The connection was lost: connect to the next replica that answers.

        Raises ConnectionClosedError if none does.
        """
        assert self._connector is not None
        lost = self.url
        await self.close()
        ws, protocol, url = await self._connector.open_link(after=lost)
        log.warning("connection to %s lost; continuing on %s", lost, url)
        self._attach(ws, protocol, url)
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    @property
    def welcome(self) -> m.Welcome | None:
        return self.protocol.welcome

    @property
    def bulk_page_size(self) -> int | None:
        """The page size bulk reads ask for: :data:`~bridge.core.limits.BULK_PAGE_SIZE`,
        at most the server's ``max_page_size`` (None before the welcome: the server's default)."""
        welcome = self.welcome
        return None if welcome is None else min(BULK_PAGE_SIZE, welcome.max_page_size)

    def _bulk(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the bulk page size unless the caller chose one."""
        if options.get("page_size") is None and (size := self.bulk_page_size) is not None:
            return {**options, "page_size": size}
        return options

    async def flush(self) -> None:
        await self.pump.flush()

    async def _start(self) -> None:
        await self.pump.flush()
        await self._welcome

    async def _run(self) -> None:
        try:
            await self.pump.run()
        finally:
            self._on_events(self.protocol.connection_lost(self._close_reason()))
            await self.pump.shutdown("the session closed")

    def _close_reason(self) -> str:
        rcvd = self.ws.protocol.close_rcvd
        if rcvd is None:
            return "the connection to the server was lost"
        return f"the server closed the connection ({rcvd.code} {rcvd.reason})".strip()

    def _forget(self, sid: int) -> None:
        """The consumer is done with ``sid``: cancel it in the core, drop the handle."""
        self.protocol.cancel(sid)
        stream = self.streams.pop(sid, None)
        if stream is not None and self.on_stream_done is not None:
            self.on_stream_done(stream)

    def _on_events(self, events: Sequence[CollectorEvent]) -> None:
        for event in events:
            if isinstance(event, PageReceived):
                self._to_stream(event.page.stream, event.page)
            elif isinstance(event, HitsReceived):
                self._to_stream(event.hits.stream, event.hits)
            elif isinstance(event, StreamOpened):
                self._to_stream(event.opened.stream, event.opened)
            elif isinstance(event, StreamEvent):
                self._to_stream(event.event.stream, event.event)
            elif isinstance(event, StreamEnded):
                self._to_stream(event.end.stream, event.end, last=True)
            elif isinstance(event, StreamFailed):
                self._to_stream(event.stream, event.error, last=True)
            elif isinstance(event, ListingReceived):
                future = self._requests.pop(event.listing.id, None)
                if future is not None and not future.done():
                    future.set_result(event.listing)
            elif isinstance(event, LocatedReceived):
                future = self._requests.pop(event.located.id, None)
                if future is not None and not future.done():
                    future.set_result(event.located)
            elif isinstance(event, RequestFailed):
                future = self._requests.pop(event.id, None)
                if future is not None and not future.done():
                    future.set_exception(event.error)
            elif isinstance(event, Welcomed):
                if not self._welcome.done():
                    self._welcome.set_result(event.welcome)
            elif isinstance(event, ConnectionFailed):
                self._fail_requests(event.error)

    def _fail_requests(self, error: PagebridgeError) -> None:
        if self._error is None:
            self._error = error
        if not self._welcome.done():
            self._welcome.set_exception(self._error)
        for future in self._requests.values():
            if not future.done():
                future.set_exception(self._error)
        self._requests.clear()

    def _to_stream(self, sid: int, item: Any, *, last: bool = False) -> None:
        stream = self.streams.pop(sid, None) if last else self.streams.get(sid)
        if stream is not None:
            stream._queue.put_nowait(item)
            if last and self.on_stream_done is not None:
                self.on_stream_done(stream)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------ public API

    async def list(self, path: str = "") -> list[Entry]:
        """Entries of a directory (``""`` is the served root).

        With several replicas, a lost connection is retried on the next one.
        """
        for failover in range(self._failovers_allowed() + 1):
            try:
                return await self._list(path)
            except ConnectionClosedError:
                if failover == self._failovers_allowed():
                    raise
                await self._fail_over()
        raise AssertionError("unreachable")

    def _failovers_allowed(self) -> int:
        """Connections to other replicas one call may make: each replica once more."""
        return len(self._connector.urls) if self.can_fail_over and self._connector is not None else 0

    async def _list(self, path: str) -> builtins.list[Entry]:
        self._check_open()
        rid = self.protocol.request_list(path)
        future: asyncio.Future[m.Listing] = asyncio.get_running_loop().create_future()
        self._requests[rid] = future
        await self.pump.flush()
        listing = await future
        return [Entry(e.get("name", ""), e.get("kind", "other"), e.get("size"), e.get("mtime"))
                for e in listing.entries]

    def search(self, path: str, pattern: str, *, regex: bool = False, ignore_case: bool = False,
               offset: int = 0, length: int | None = None, follow: bool = False,
               window: int = 8, max_text: int | None = None, count_only: bool = False,
               line_numbers: bool = True, keep_cr: bool = False) -> SearchStream:
        """Search a file on the server for the lines matching ``pattern``.

        ::

            async for match in session.search("app.log", "timeout", ignore_case=True):
                print(match.line, match.text.decode(errors="replace"))

        Args:
            pattern: a literal, or with ``regex`` a regular expression in RE2
                syntax (no backreferences; a bad one raises StreamError
                ``bad_request`` with the engine's message).
            ignore_case: Unicode case folding.
            offset, length: the byte range to scan (line numbers stay the file's).
            follow: keep matching the lines appended to the file (a live filter).
            window: ``hits`` messages in flight.
            max_text: bytes of each line's text to receive (default 1024).
            count_only: receive only the count (``grep -c``): iterate to the
                end, then read :attr:`SearchStream.count`.
            line_numbers: False saves the server counting lines (``line`` is 0).
            keep_cr: keep the ``\\r`` of a line that ends with ``\\r\\n`` in its text.
        """
        self._check_open()
        sid = self.protocol.scan(path, pattern, regex=regex, ignore_case=ignore_case, offset=offset,
                                 length=length, follow=follow, window=window, max_text=max_text,
                                 count_only=count_only, line_numbers=line_numbers,
                                 keep_cr=keep_cr)
        stream = SearchStream(self, sid)
        self.streams[sid] = stream
        self.pump.flush_soon()
        return stream

    async def locate(self, path: str, *, offset: int | None = None,
                     line: int | None = None) -> Location:
        """Which line holds byte ``offset``, or where line ``line`` starts (and the total).

        The server counts the file's lines the first time (and keeps a
        sparse index of them, so later look-ups read at most 64 KiB).  A
        line beyond the last answers the last; with neither argument, line 1.
        """
        self._check_open()
        rid = self.protocol.request_locate(path, offset=offset, line=line)
        future: asyncio.Future[m.Located] = asyncio.get_running_loop().create_future()
        self._requests[rid] = future
        await self.pump.flush()
        found = await future
        return Location(found.line, found.offset, found.lines, found.size, found.etag)

    def pages(self, path: str, offset: int = 0, length: int | None = None, *,
              window: int | None = None, page_size: int | None = None,
              if_match: str | None = None, follow: bool = False, text: bool = False,
              sha256: bool = False, integrity: bool = True, compress: bool = False) -> PageStream:
        """Open a stream of pages.

        Args:
            offset, length: the byte range to page (random access).
            window: pages in flight; 1 is stop-and-wait, ``None`` adapts to
                the round trip (see docs/protocol.md).
            if_match: refuse with FileChangedError unless the file's etag is this.
            follow: keep paging what is appended (live files).
            sha256: ask the server for the sha256 of the stream, checked at the end.
            integrity: False turns the XXH3 checks off (for measuring their cost).
            compress: ask for compressed pages (zstd; needs the ``compress``
                extra): worth it on slow links, a cost on fast ones.  Pages
                arrive decompressed and verified as usual.
        """
        self._check_open()
        sid = self.protocol.open(path, offset=offset, length=length, window=window,
                                 page_size=page_size, if_match=if_match, follow=follow,
                                 text=text, sha256=sha256, integrity=integrity, compress=compress)
        stream = PageStream(self, sid)
        self.streams[sid] = stream
        # pages() is not a coroutine (it returns an async iterator), so the
        # open request is sent by an owned flush task, at once.
        self.pump.flush_soon()
        return stream

    async def get_all_pages(self, path: str, offset: int = 0, length: int | None = None,
                            **options: Any) -> bytearray:
        """The whole stream (Twisted's getAllPages), verified, as one bytearray.

        Memory: one buffer the size of the result plus the pages in flight;
        when the size is known up front the buffer is allocated once.
        """
        async with self.pages(path, offset, length, **self._bulk(options)) as stream:
            assert stream.opened is not None
            expected = stream.opened.length
            buffer = bytearray(expected) if expected is not None else bytearray()
            view = memoryview(buffer)
            filled = 0
            async for page in stream:
                if not isinstance(page, m.Page):
                    continue
                end = filled + len(page.data)
                if expected is not None and end <= expected:
                    view[filled:end] = page.data
                else:
                    view.release()
                    del buffer[filled:]
                    buffer += page.data
                    view = memoryview(buffer)
                filled = end
            view.release()
            if filled != len(buffer):
                del buffer[filled:]
            # A bytearray is returned as is: converting to bytes would copy, and
            # hold the file twice in memory at the end.
            return buffer

    async def download(self, path: str, dest: str | os.PathLike[str], *, resume: bool = True,
                       progress: Callable[[int, int | None], None] | None = None,
                       sha256: bool = False, durable: bool = False,
                       **options: Any) -> DownloadResult:
        """Download ``path`` to ``dest``: via a temporary file, verified, renamed atomically.

        With ``resume`` a partial temporary file (``dest`` + ``.part``, with
        its etag beside it in ``.part.etag``) left by an interrupted call is
        continued from its length, and only if the server's file still has the
        same etag; otherwise FileChangedError, and the partial file is kept
        untouched for the caller to decide.

        With several replicas (``connect([url1, url2])``), a connection lost
        mid-download is resumed the same way on the next replica that
        answers; ``received`` and ``resumed_from`` in the result then count
        from the start of this call.

        Args:
            progress: ``progress(done_bytes, total_bytes)`` after each page.
            sha256: also compute the sha256 of the whole file on disk (the
                resumed part included) and return it in the result.
            durable: fsync the file before renaming it.
            options: passed to :meth:`pages` (window, page_size...).

        Writing (and hashing) runs in one worker thread beside the receiving,
        with at most a few pages queued, so the event loop keeps reading the
        socket while the disk and the hash catch up.
        """
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        etag_file = dest.with_name(dest.name + ".part.etag")
        started_at = part.stat().st_size if resume and part.exists() and etag_file.exists() else 0
        for failover in range(self._failovers_allowed() + 1):
            try:
                result = await self._download(path, dest, resume=resume or failover > 0, progress=progress,
                                              sha256=sha256, durable=durable, **options)
            except ConnectionClosedError:
                if failover == self._failovers_allowed():
                    raise
                await self._fail_over()
                continue
            if failover:
                result = dataclasses.replace(result, received=result.bytes - started_at,
                                             resumed_from=started_at)
            return result
        raise AssertionError("unreachable")

    async def _download(self, path: str, dest: Path, *, resume: bool,
                        progress: Callable[[int, int | None], None] | None,
                        sha256: bool, durable: bool, **options: Any) -> DownloadResult:
        """One attempt of :meth:`download`, on the current connection."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        etag_file = dest.with_name(dest.name + ".part.etag")
        offset = 0
        if_match = None
        if resume and part.exists() and etag_file.exists():
            offset = part.stat().st_size
            if_match = etag_file.read_text().strip() or None
        elif part.exists():
            part.unlink()
        try:
            stream = self.pages(path, offset, if_match=if_match, **self._bulk(options))
            opened = await stream.wait_opened()
        except FileChangedError as exc:
            raise FileChangedError(f"{exc.message}; {part} was left as it is (delete it to "
                                   "start over)") from None
        total = opened.size
        if not offset:
            part.parent.mkdir(parents=True, exist_ok=True)
            etag_file.write_text(opened.etag or "")
        writer = _FileWriter(part, offset, sha256=sha256)
        received = 0
        try:
            await writer.start()
            async for page in stream:
                if isinstance(page, m.Page):
                    await writer.write(page.data)
                    received += len(page.data)
                    if progress is not None:
                        progress(offset + received, total)
            digest = await writer.finish(durable=durable)
        finally:
            await writer.close()
            await stream.aclose()
        size = offset + received
        if total is not None and size != total:
            raise StreamError(f"{path}: got {size} bytes, expected {total}", ErrorCode.INTEGRITY)
        os.replace(part, dest)
        etag_file.unlink(missing_ok=True)
        return DownloadResult(dest, size, received, opened.etag, offset, digest)

    async def close(self) -> None:
        await self.pump.close()
        with contextlib.suppress(Exception):
            await self._reader

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


class _FileWriter:
    """Writes (and optionally hashes) pages beside the event loop, in order.

    Pages go to the worker thread in batches (:class:`~bridge.aio.beside.Beside`);
    there each page is written, then hashed while it is still in the cache.
    """

    def __init__(self, path: Path, offset: int, *, sha256: bool) -> None:
        self.path = path
        self.offset = offset
        self.hash = hashlib.sha256() if sha256 else None
        self._beside: Beside[bytes | memoryview] = Beside(self._write, name="pagebridge-writer")
        self._fd: int | None = None

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (0 if self.offset else os.O_TRUNC),
                     0o666)
        self._fd = fd
        if self.hash is not None and self.offset:
            with open(self.path, "rb") as f:
                while chunk := f.read(min(1 << 20, self.offset - f.tell())):
                    self.hash.update(chunk)
        # Only cut what is beyond the offset.  Truncating a file to 0 (even a
        # new, empty one) makes ext4 write the whole download back when it
        # is closed (auto_da_alloc: a quarter second per 512 MiB, in close).
        if os.fstat(fd).st_size != self.offset:
            os.ftruncate(fd, self.offset)
        os.lseek(fd, self.offset, os.SEEK_SET)

    def _write(self, batch: list[bytes | memoryview]) -> None:
        assert self._fd is not None
        for data in batch:
            write_all(self._fd, (data,))
            if self.hash is not None:
                self.hash.update(data)

    def _finish(self, durable: bool) -> None:
        if durable and self._fd is not None:
            os.fsync(self._fd)

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    async def start(self) -> None:
        await self._beside.run(self._open)

    async def write(self, data: bytes | memoryview) -> None:
        await self._beside.put(data)

    async def finish(self, *, durable: bool) -> str | None:
        await self._beside.drain()
        await self._beside.run(self._finish, durable)
        return self.hash.hexdigest() if self.hash is not None else None

    async def close(self) -> None:
        await self._beside.close()
        self._close()


#: The variables websockets' proxy lookup (``urllib.request.getproxies``) reads
#: on Linux, in both cases.  :func:`_proxy_for` caches its answer per value
#: of these, instead of scanning the whole environment twice per connection
#: (about a tenth of a connection's CPU on the client).
_PROXY_VARIABLES = tuple(name for scheme in ("ws", "wss", "socks", "https", "http", "all", "no")
                         for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"))


def _proxy_for(url: str) -> str | Literal[True] | None:
    """The proxy for ``url`` as websockets would choose it (None: direct), cached."""
    if not sys.platform.startswith("linux"):
        return True  # macOS and Windows also read system settings: let websockets ask each time
    environ = os.environ
    return _resolved_proxy(url, tuple(environ.get(name) for name in _PROXY_VARIABLES))


@functools.lru_cache(maxsize=64)
def _resolved_proxy(url: str, variables: tuple[str | None, ...]) -> str | None:
    if not any(variables):
        return None
    return get_proxy(parse_uri(url))


class _Connect:
    """``await connect(...)`` or ``async with connect(...) as session``."""

    def __init__(self, url: str | Sequence[str], token: str | None, ssl: ssl_module.SSLContext | None,
                 open_timeout: float, max_window_bytes: int) -> None:
        self.urls = [normalise_url(u) for u in ([url] if isinstance(url, str) else url)]
        if not self.urls:
            raise ValueError("connect() needs at least one URL")
        self.url = self.urls[0]
        self.token = token if token is not None else os.environ.get("PAGEBRIDGE_TOKEN")
        self.ssl = ssl
        self.open_timeout = open_timeout
        self.max_window_bytes = max_window_bytes
        self.session: Session | None = None

    async def open_link(self, *, after: str | None = None) -> tuple[ClientConnection, CollectorProtocol, str]:
        """A connection to the first replica that answers, trying them in order.

        ``after``: start with the URL after this one (the one just lost), and
        come back to it last.  Unreachable and busy replicas (and other HTTP
        5xx answers) are skipped; a refusal (403...) is the same on every
        replica and is raised at once.
        """
        start = (self.urls.index(after) + 1) % len(self.urls) if after in self.urls else 0
        failures = []
        for i in range(len(self.urls)):
            url = self.urls[(start + i) % len(self.urls)]
            try:
                ws = await self._dial(url)
            except ConnectionClosedError as exc:
                failures.append(exc.message)
                continue
            except PagebridgeError as exc:
                # A busy replica (503/429 past open_timeout) is skipped; a refusal
                # (403...) would be the same on every replica: raised at once.
                if exc.code not in (ErrorCode.BUSY, ErrorCode.INTERNAL) or i == len(self.urls) - 1:
                    raise
                failures.append(f"{url}: {exc.message}")
                continue
            protocol = CollectorProtocol(token=self.token, agent=f"pagebridge-py/{__version__}",
                                         max_window_bytes=self.max_window_bytes, clock=time.monotonic)
            return ws, protocol, url
        if len(failures) == 1:
            raise ConnectionClosedError(failures[0])
        raise ConnectionClosedError("no replica answers: " + "; ".join(failures))

    async def _connect(self) -> Session:
        ws, protocol, url = await self.open_link()
        session = Session(ws, protocol, connector=self, url=url)
        try:
            await session._start()
        except BaseException:
            await ws.close()
            raise
        return session

    async def _dial(self, url: str) -> ClientConnection:
        kwargs: dict[str, Any] = {}
        if url.startswith("wss:") and self.ssl is not None:
            kwargs["ssl"] = self.ssl
        deadline = time.monotonic() + self.open_timeout
        backoff = 0.05
        while True:
            try:
                return await ws_connect(
                    url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=None, max_size=MAX_PAGE_SIZE + PAGE_OVERHEAD + (8 << 20),
                    open_timeout=self.open_timeout, user_agent_header=f"pagebridge/{__version__}",
                    max_queue=16,  # more frames wait in the kernel, not in our RSS
                    proxy=_proxy_for(url),
                    # Received bytes are read in place and pages are views of them.
                    create_connection=ViewConnection, **kwargs)
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = exc.response.body.decode(errors="replace").strip()
                # 503 (the server is at a connection budget) and 429 (too many
                # failed attempts) say "later": wait as told, within open_timeout.
                retry_after = exc.response.headers.get("Retry-After")
                wait = float(retry_after) if retry_after and retry_after.isdigit() else backoff
                if status in (429, 503) and time.monotonic() + wait < deadline:
                    await asyncio.sleep(wait)
                    backoff = min(backoff * 2, 1.0)
                    continue
                code = {403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
                        429: ErrorCode.BUSY, 503: ErrorCode.BUSY}.get(status, ErrorCode.INTERNAL)
                raise PagebridgeError(f"server refused the connection: HTTP {status} {body}",
                                      code) from None
            except (OSError, TimeoutError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or "timed out"
                raise ConnectionClosedError(f"cannot connect to {url}: {reason}") from None

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def __aenter__(self) -> Session:
        self.session = await self._connect()
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()


def connect(url: str | Sequence[str], token: str | None = None, *,
            ssl: ssl_module.SSLContext | None = None,
            open_timeout: float = 10, max_window_bytes: int = 32 * 1024 * 1024,
            shared: bool = False) -> _Connect | _PooledConnect:
    """Connect to a pagebridge server, or to the first of its replicas that answers.

    Args:
        url: ws://, wss://, http:// or https:// (the path defaults to /ws); or
            a list of them, replicas serving the same files: the session
            fails over to the next one when its connection is lost (see the
            module's docstring).
        token: sent in ``hello``; defaults to the PAGEBRIDGE_TOKEN variable.
        ssl: an SSLContext for wss:// (e.g. trusting a private CA).
        max_window_bytes: cap of the adaptive window, per stream.
        shared: share connections with the other ``shared`` sessions of this
            event loop that have the same URL(s), token and options (a
            :class:`~bridge.aio.pool.Pool`): opening the session costs no
            handshake, its streams go on connections with room.  For
            processes that run many collectors at once.
    """
    if shared:
        from .pool import shared_pool
        return shared_pool(url, token, ssl=ssl, open_timeout=open_timeout,
                           max_window_bytes=max_window_bytes).connect()
    return _Connect(url, token, ssl, open_timeout, max_window_bytes)


async def sha256_of(path: str | os.PathLike[str]) -> str:
    """sha256 of a local file, hashed in a thread (for checks and the CLI)."""
    def run() -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    return await asyncio.to_thread(run)


__all__ = ["DownloadResult", "Entry", "LiveEvent", "Location", "Match", "Page", "PageStream",
           "SearchStream", "Session", "connect", "normalise_url", "sha256_of"]
