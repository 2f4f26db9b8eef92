"""The asyncio server: WebSocket endpoint ``/ws`` and the viewer's files.

This module moves bytes and enforces budgets; it holds no protocol state.
Frames from the socket go into a :class:`~bridge.core.pager.PagerProtocol`
(through a :class:`~bridge.aio.pump.Pump`), its events become source and
listing work, and whatever the core queues goes back out.

What the shell adds to the core is bounded by construction
(docs/security.md, "Budgets"):

* a page is read from its source only when the connection's and the
  server's page budgets have room for it (:mod:`bridge.aio.budget`), and
  that room comes back once the page is written to the socket, which
  itself waits while the peer does not read;
* a peer whose write buffer stays full, or grows past a hard cap (a ping
  flood answered by pongs it never reads), is evicted;
* open sources (descriptors), queued listings and connections each have
  a limit, refused with ``busy`` or HTTP 503/429; handshakes beyond the
  unauthenticated connections' share wait for a slot, in order;
* browsers are accepted only from the same origin on a Host that is
  loopback or configured (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import socket
import ssl as ssl_module
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import __version__
from ..core import codecs
from ..core import messages as m
from ..core.limits import (
    DEFAULT_MAX_TEXT,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_STREAMS,
    MAX_WINDOW,
    SUBPROTOCOL,
)
from ..core.pager import (
    CloseConnection,
    CreditGranted,
    HelloReceived,
    ListRequested,
    LocateRequested,
    OpenRequested,
    PagerEvent,
    PagerProtocol,
    ScanRequested,
    StreamClosed,
)
from ..errors import (
    CancelledStreamError,
    CloseCode,
    ErrorCode,
    LocalProtocolError,
    PagebridgeError,
    ProtocolError,
    StreamError,
)
from ..http import SECURITY_HEADERS, WEB_ROOT, static_response
from ..logs import new_connection_id
from ..metrics import CONTENT_TYPE_LATEST, ServerMetrics, health_body, metrics_allowed, stream_kind
from ..scan.index import LineIndexCache
from ..scan.lines import OVERLAP
from ..scan.matcher import PatternError, compile_pattern
from ..sources.base import PageData, Pager, SourceEvent
from ..sources.catalog import AnyCatalog, Catalog, SourceFactory, local_root, open_catalog
from ..sources.paths import os_error
from ..sources.scan import BLOCK_SIZE, FileScan, locate
from ..sources.watch import watcher_kind
from .budget import ByteBudget, FailureLimiter, PageLease, Slots
from .pump import Pump

T = TypeVar("T")

log = logging.getLogger("bridge.server")

#: Pages up to this size are compressed on the event loop (well under a
#: millisecond); larger ones in a worker thread.
INLINE_COMPRESS = 16 * 1024

#: Largest frame a collector may send: its messages are small (a path is at
#: most 4096 characters), so anything bigger is abuse.
MAX_COLLECTOR_FRAME = 64 * 1024
#: A scan reports its progress (a ``hits`` without matches) at most this often.
SCAN_PROGRESS_INTERVAL = 0.1
#: Descriptors kept free for the listener, logs, the followers' inotify
#: instance (one per process whatever the number of folders watched:
#: bridge/sources/inotify.py) and libraries when the open-source budget is
#: derived from RLIMIT_NOFILE.
FD_HEADROOM = 64


@dataclass
class ServerConfig:
    """Everything that shapes a server.  Every limit is enforced; none is disabled by None."""

    #: A folder (its real path), or an object store URL (``s3://bucket/prefix``...).
    root: Path | str
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    insecure: bool = False
    origins: Sequence[str] = ()
    #: Host names (besides loopback addresses and ``localhost``) under which
    #: browsers may reach this server: the DNS-rebinding defence.
    allowed_hosts: Sequence[str] = ()
    web_root: Path | None = WEB_ROOT
    show_hidden: bool = False
    #: Refuse (and leave out of listings) files with more than one hard link:
    #: a hard link to a file outside the root cannot be told apart by its path.
    refuse_hard_links: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    max_page_size: int = MAX_PAGE_SIZE
    max_window: int = MAX_WINDOW
    max_streams: int = MAX_STREAMS
    max_connections: int = 1024
    #: Connections that have not (yet) said a valid hello: a small share of
    #: the cap, so tokenless sockets cannot crowd out token holders.
    max_unauthenticated: int = 128
    #: How long a handshake waits for one of those slots, in arrival order,
    #: before it is answered 503 (at most half of ``open_timeout``).
    preauth_wait: float = 2
    ssl: ssl_module.SSLContext | None = None
    ping_interval: float | None = 20
    ping_timeout: float | None = 20
    open_timeout: float = 10
    #: After a close, how long to wait for queued frames and the peer's close frame.
    close_timeout: float = 5
    #: websockets' write buffer high-water mark: send() waits above it.  It is
    #: memory per connection beyond the page budget, so it stays small; the
    #: kernel's socket buffer does the rest of the buffering.
    write_limit: int = 256 * 1024
    #: Threads that run scans and line counts, shared by all connections.
    #: Page streams never wait for them (they read in the default executor).
    scan_workers: int = 2
    #: Memory for the line indexes of recently used files (LRU).
    line_index_memory: int = 16 << 20
    #: Scans running at once in all (each holds a compiled pattern, whose
    #: automaton may grow to 4 MiB, and one block); beyond: ``busy``.
    max_scans: int = 32
    #: Bytes a scan reads at once (and the longest line matched whole);
    #: at least 256 KiB.
    scan_block_size: int = BLOCK_SIZE
    #: Bytes of pages between sources and sockets, per connection and in all.
    connection_page_budget: int = 8 * 2**20
    server_page_budget: int = 256 * 2**20
    #: A peer whose write buffer exceeds this (pongs to a ping flood...) is dropped at once.
    max_write_buffer: int = 16 * 2**20
    #: A peer whose write buffer stays above ``write_limit`` this long is closed (it stopped reading).
    write_timeout: float = 60
    #: Open sources (file descriptors) in all; None: derived from RLIMIT_NOFILE.
    max_open_sources: int | None = None
    #: Listings queued or running, per connection and in all; beyond: ``busy``.
    max_pending_requests: int = 4
    max_queued_listings: int = 64
    #: Threads for listings and other blocking catalog work (not shared with file reads).
    catalog_threads: int = 2
    #: Listen with SO_REUSEPORT, beside the other workers of ``serve --workers``.
    reuse_port: bool = False
    #: This process's worker number (0 for a lone server); shown by /healthz and in logs.
    worker: int = 0
    #: Options for the object store's file system (s3fs: key, secret, client_kwargs...).
    storage_options: dict[str, Any] | None = None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The host part of a Host header (``[::1]:80`` → ``::1``), lowercased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _fd_limit() -> int:
    """The soft RLIMIT_NOFILE, raised to the hard limit when allowed (as servers usually do)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


class PageServer:
    """A pagebridge server.

    Use as ``async with PageServer(root) as server: await server.serve_forever()``
    or ``await server.start()`` / ``await server.close()``.  ``mount()``
    adds sources of your own next to the files under ``root``.
    """

    def __init__(self, root: str | os.PathLike[str], **options: Any) -> None:
        folder = local_root(root)
        self.config = ServerConfig(root=Path(os.path.realpath(folder)) if folder is not None
                                   else os.fspath(root), **options)
        config = self.config
        if config.token is not None and not config.token.strip():
            raise ValueError("the token is empty; set a real token or none at all")
        if not is_loopback(config.host) and config.token is None and not config.insecure:
            raise ValueError(
                f"refusing to serve {config.host} without a token: anyone who can reach it "
                "could read the files. Set a token (--token or PAGEBRIDGE_TOKEN) or pass --insecure.")
        if config.preauth_wait < 0:
            raise ValueError("preauth_wait must be at least 0")
        if config.scan_workers < 1:
            raise ValueError("scan_workers must be at least 1")
        if config.scan_block_size < 256 << 10:
            raise ValueError("scan_block_size must be at least 256 KiB")
        watcher_kind()  # a misspelt PAGEBRIDGE_WATCHER is refused here, not at the first follower
        fd_limit = _fd_limit()
        sockets = config.max_connections + config.max_unauthenticated
        sources = config.max_open_sources
        if sources is None:
            # (a locate holds a descriptor while it runs: at most one per scan worker)
            sources = fd_limit - sockets - FD_HEADROOM - 2 * config.catalog_threads - config.scan_workers
        if sources < 16 or sources + sockets + FD_HEADROOM > fd_limit:
            raise ValueError(
                f"the descriptor limit ({fd_limit}) is too low for {config.max_connections} "
                f"connections and {sources} open files; lower --max-connections or raise "
                "the limit (ulimit -n)")
        # A folder or an object store, chosen by the root (ValueError if neither can be served).
        self.catalog: AnyCatalog = open_catalog(config.root, show_hidden=config.show_hidden,
                                                storage_options=config.storage_options)
        self.metrics = ServerMetrics(worker=config.worker)
        self.connections: set[PagerConnection] = set()
        #: Sockets accepted and not yet closed (handshaking or connected).
        self.sockets_open = 0
        #: Slots for connections that have not (yet) said a valid hello.  A
        #: handshake beyond them waits for one, first come first served,
        #: within the handshake timeout (docs/security.md, "A burst of connections").
        self.preauth = ByteBudget(config.max_unauthenticated)
        self._preauth_holders: set[ServerConnection] = set()
        self.page_budget = ByteBudget(config.server_page_budget)
        self.source_slots = Slots(sources)
        self.listing_slots = Slots(config.max_queued_listings)
        self.hello_failures = FailureLimiter()
        self.catalog_pool = ThreadPoolExecutor(config.catalog_threads,
                                               thread_name_prefix="pagebridge-catalog")
        if isinstance(self.catalog, Catalog):
            self.catalog.executor = self.catalog_pool  # listings in the server's bounded pool
            self.catalog.refuse_links = config.refuse_hard_links
        self._server: Server | None = None
        #: Scans and line counts run here, a bounded pool of their own: each
        #: scan has at most one step queued or running, and a step is short.
        self.scan_pool = ThreadPoolExecutor(config.scan_workers, thread_name_prefix="pagebridge-scan")
        self.line_index = LineIndexCache(config.line_index_memory,
                                         on_count=self.metrics.line_index_counted)
        self.scan_slots = Slots(config.max_scans)

    def mount(self, path: str, factory: SourceFactory) -> None:
        """Serve ``factory(request)`` for opens of ``path`` (checked before files)."""
        self.catalog.mount(path, factory)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.catalog.close()  # the store's connections, opened by the check
            raise

    async def _start(self) -> None:
        config = self.config
        server = self
        await self.catalog.check()  # a missing bucket fails here, not at the first request

        class GuardedConnection(ServerConnection):
            """Counts sockets from accept to close; beyond the cap they are dropped at once."""

            #: Told when the peer stops (True) and resumes (False) reading our writes.
            on_writes_stalled: Callable[[bool], None] | None = None

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                server.sockets_open += 1
                super().connection_made(transport)
                if server.sockets_open > config.max_connections + config.max_unauthenticated:
                    log.warning("too many sockets (%d); dropping a new one", server.sockets_open)
                    assert isinstance(transport, asyncio.Transport)
                    transport.abort()

            def connection_lost(self, exc: Exception | None) -> None:
                server.sockets_open -= 1
                server.release_preauth(self)  # e.g. the handshake failed after taking the slot
                super().connection_lost(exc)

            # The transport calls these when its write buffer crosses
            # ``write_limit`` (up) and a quarter of it (down): the write
            # watchdog runs only in between, so a connection that keeps up
            # costs no timer at all.
            def pause_writing(self) -> None:
                super().pause_writing()
                if self.on_writes_stalled is not None:
                    self.on_writes_stalled(True)

            def resume_writing(self) -> None:
                super().resume_writing()
                if self.on_writes_stalled is not None:
                    self.on_writes_stalled(False)

        self._server = await serve(
            self._handle,
            config.host,
            config.port,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,  # pages are often incompressible; deflate would cost CPU for nothing
            process_request=self._process_request,
            create_connection=GuardedConnection,
            max_size=MAX_COLLECTOR_FRAME,
            max_queue=64,
            write_limit=config.write_limit,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            open_timeout=config.open_timeout,
            close_timeout=config.close_timeout,
            ssl=config.ssl,
            server_header=f"pagebridge/{__version__}",
            logger=logging.getLogger("bridge.websockets"),
            reuse_port=config.reuse_port or None,
        )

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def http_url(self) -> str:
        scheme = "https" if self.config.ssl else "http"
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http", "ws", 1) + "ws"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()  # closes connections with 1001 going away
            await self._server.wait_closed()
        self.scan_pool.shutdown(wait=False, cancel_futures=True)
        self.catalog_pool.shutdown(wait=False, cancel_futures=True)
        await self.catalog.close()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> PageServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ HTTP

    @property
    def unauthenticated(self) -> int:
        """Connections holding a pre-authentication slot (handshake accepted, no valid hello yet)."""
        return self.preauth.used

    def release_preauth(self, connection: ServerConnection) -> None:
        """Give back ``connection``'s pre-authentication slot (it said hello, or it is gone)."""
        if connection in self._preauth_holders:
            self._preauth_holders.discard(connection)
            self.preauth.release(1)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        response = self._check_request(connection, request)
        if response is not None or urlsplit(request.path).path != "/ws":
            return response
        # A burst of legitimate collectors (hundreds connecting at once) waits
        # here for a slot instead of being refused and retrying: each slot is
        # held only from this handshake to the collector's hello.  Sockets
        # that never say hello hold theirs until the hello timeout, and the
        # handshakes queued behind them are served in arrival order; the
        # queue is bounded by the socket cap.  A handshake that waited
        # ``preauth_wait`` is answered 503 with Retry-After, so the tail of a
        # burst larger than the server admits in that time backs off instead
        # of hitting the handshake timeout.
        try:
            async with asyncio.timeout(min(self.config.preauth_wait, self.config.open_timeout / 2)):
                await self.preauth.acquire(1)
        except TimeoutError:
            response = connection.respond(503, "too many connections waiting to authenticate\n")
            response.headers["Retry-After"] = "1"
            return response
        self._preauth_holders.add(connection)
        if len(self.connections) >= self.config.max_connections:
            self.release_preauth(connection)
            return connection.respond(503, "too many connections, try again later\n")
        return None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        for name in ("Host", "Origin"):
            if len(headers.get_all(name)) > 1:
                return connection.respond(400, f"more than one {name} header\n")
        path = urlsplit(request.path).path
        if path == "/healthz":
            return _plain(200, health_body(self.config.worker, len(self.connections)), "application/json")
        if path == "/metrics":
            if not metrics_allowed(connection.remote_address, headers, self.config.token):
                return connection.respond(403, "metrics are served on loopback, or with "
                                               "'Authorization: Bearer TOKEN'\n")
            return _plain(200, self.metrics.exposition(), CONTENT_TYPE_LATEST)
        if path != "/ws":
            return static_response(connection, self.config.web_root, path, method=request.method)
        origin = headers.get("Origin")
        if origin is not None:
            host = headers.get("Host")
            if host is None or not self._host_allowed(host):
                log.warning("refused a browser WebSocket for Host %s", (host or "")[:100])
                return connection.respond(
                    403, "this server is not reachable under that host name (see --allowed-host)\n")
            if not self._origin_allowed(origin, host):
                log.warning("refused WebSocket from origin %s", origin[:100])
                return connection.respond(403, f"origin {origin[:100]} is not allowed\n")
        if len(self.connections) >= self.config.max_connections:
            return connection.respond(503, "too many connections, try again later\n")
        peer = _peer_address(connection)
        wait = self.hello_failures.retry_after(peer)
        if wait > 0:
            response = connection.respond(429, "too many failed attempts; try again later\n")
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        return None

    def _host_allowed(self, host_header: str) -> bool:
        """DNS rebinding: a browser must have reached us under a name we answer to."""
        name = _host_name(host_header)
        if is_loopback(name) or name in (h.lower() for h in self.config.allowed_hosts):
            return True
        bound = self.config.host.lower()
        return name == bound and bound not in ("", "0.0.0.0", "::")

    def _origin_allowed(self, origin: str, host: str) -> bool:
        allowed = self.config.origins
        if "*" in allowed or origin in allowed:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host

    # ------------------------------------------------------------ WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small messages (acks, small files) must not wait for Nagle.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        new_connection_id()  # carried by every log record of this connection's tasks
        connection = PagerConnection(self, ws)
        self.connections.add(connection)
        self.metrics.connection_opened()
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            self.metrics.connection_closed()
            connection.count_errors()


def _plain(status: int, body: bytes, content_type: str) -> Response:
    """A small HTTP answer (health, metrics) with the viewer's security headers."""
    headers = Headers(SECURITY_HEADERS)
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    return Response(status, "OK" if status == 200 else "Error", headers, body)


def _peer_address(connection: ServerConnection) -> str:
    peer = connection.transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


@dataclass(slots=True)
class StreamHandle:
    """All the shell keeps about a stream: the task paging it and its credit signal."""

    task: asyncio.Task[None]
    credit: asyncio.Event


class PagerConnection:
    """One collector's connection: the core, the pump, one handle per stream."""

    def __init__(self, server: PageServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        config = server.config
        self.protocol = PagerProtocol(
            token=config.token, server_name=f"pagebridge/{__version__}",
            page_size=config.page_size, max_page_size=config.max_page_size,
            max_window=config.max_window, max_streams=config.max_streams)
        self.peer = _peer_address(ws)
        self.pump: Pump[PagerEvent] = Pump(ws, self.protocol, self._on_events,
                                           close_timeout=config.close_timeout,
                                           name=f"conn-{self.peer}-{id(self):x}")
        self.handles: dict[int, StreamHandle] = {}
        self.lease = PageLease(ByteBudget(config.connection_page_budget), server.page_budget)
        self.requests = Slots(config.max_pending_requests)
        self.authenticated = False

    async def run(self) -> None:
        server = self.server
        if self.ws.subprotocol != SUBPROTOCOL:
            self.protocol.fail(ProtocolError(f"the WebSocket subprotocol must be {SUBPROTOCOL!r}"))
        self._stalled_since: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        if hasattr(self.ws, "on_writes_stalled"):
            self.ws.on_writes_stalled = self._writes_stalled
        if self.ws.transport.get_write_buffer_size() > server.config.write_limit:
            self._writes_stalled(True)
        try:
            await self.pump.run(
                first_frame_timeout=server.config.open_timeout,
                on_first_frame_timeout=lambda: self.protocol.fail(ProtocolError(
                    "no hello within the handshake timeout", ErrorCode.UNAUTHORIZED),
                    CloseCode.POLICY_VIOLATION))
        finally:
            server.release_preauth(self.ws)
            await self.pump.shutdown("the collector disconnected")

    def _writes_stalled(self, stalled: bool) -> None:
        """The transport's write buffer went above ``write_limit`` (True) or back down (False)."""
        if not stalled:
            self._stalled_since = None
            return
        if self._stalled_since is None:
            self._stalled_since = time.monotonic()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = self.pump.spawn(self._watch_writes(), name="write-watchdog")

    async def _watch_writes(self) -> None:
        """Evict a peer that stopped reading: its write buffer is ours to pay for.

        Runs only while the write buffer is above ``write_limit`` (see
        ``GuardedConnection.pause_writing``).  websockets waits in send()
        then, so pages stop; but pongs (a ping flood) and close frames are
        written regardless.  Past ``max_write_buffer`` the connection is
        dropped at once; stalled for ``write_timeout`` it is closed.
        """
        config = self.server.config
        transport = self.ws.transport
        interval = min(1.0, config.write_timeout / 4)
        while self._stalled_since is not None and not transport.is_closing():
            size = transport.get_write_buffer_size()
            if size > config.max_write_buffer:
                log.warning("%s: %d bytes unread by the peer; dropping it", self.pump.name, size)
                self.pump.abort()
                return
            if time.monotonic() - self._stalled_since > config.write_timeout:
                log.warning("%s: the peer read nothing for %.0f s; closing", self.pump.name,
                            config.write_timeout)
                await self.pump.close(CloseCode.POLICY_VIOLATION, "the collector stopped reading")
                self.pump.abort()
                return
            await asyncio.sleep(interval)

    def _on_events(self, events: Sequence[PagerEvent]) -> None:
        for event in events:
            if isinstance(event, CreditGranted):
                handle = self.handles.get(event.stream)
                if handle is not None:
                    handle.credit.set()
            elif isinstance(event, OpenRequested):
                credit = asyncio.Event()
                sid = event.request.stream
                task = self.pump.spawn(self._page(event.request, credit), name=f"stream-{sid}")
                self.handles[sid] = StreamHandle(task, credit)
            elif isinstance(event, StreamClosed):
                closed = self.handles.pop(event.stream, None)
                if closed is not None:
                    closed.task.cancel(event.error.message)
            elif isinstance(event, ScanRequested):
                credit = asyncio.Event()
                sid = event.request.stream
                task = self.pump.spawn(self._scan(event.request, credit), name=f"scan-{sid}")
                self.handles[sid] = StreamHandle(task, credit)
            elif isinstance(event, ListRequested):
                self._start_list(event)
            elif isinstance(event, LocateRequested):
                self._start_locate(event.request)
            elif isinstance(event, HelloReceived):
                self.authenticated = True
                self.server.release_preauth(self.ws)
                log.info("%s: collector connected: %s", self.pump.name, (event.agent or "?")[:80])
            elif isinstance(event, CloseConnection):
                if event.code == CloseCode.POLICY_VIOLATION and not self.authenticated:
                    self.server.hello_failures.failed(self.peer)
        self.count_errors()

    def count_errors(self) -> None:
        """Add the error messages the core queued to the server's metrics."""
        for code, count in self.protocol.take_error_counts().items():
            self.server.metrics.errors.labels(code).inc(count)

    # ------------------------------------------------------------ listings

    def _start_list(self, request: ListRequested) -> None:
        server = self.server
        if not self.requests.take():
            self.protocol.reject_request(request.id, ErrorCode.BUSY, (
                f"this connection already has {self.requests.limit} requests in progress"))
            self.pump.flush_soon()
            return
        if not server.listing_slots.take():
            self.requests.give()
            self.protocol.reject_request(request.id, ErrorCode.BUSY,
                                         "the server is busy with other listings; try again later")
            self.pump.flush_soon()
            return
        self.pump.spawn(self._list(request), name=f"list-{request.id}")

    async def _list(self, request: ListRequested) -> None:
        try:
            path, entries, truncated = await self.server.catalog.list(request.path)
            self.server.metrics.listed()
        except StreamError as exc:
            self.protocol.reject_request(request.id, exc.code, exc.message)
        except Exception:
            log.exception("listing %r failed", request.path[:200])
            self.protocol.reject_request(request.id, ErrorCode.INTERNAL, "")
        else:
            self.protocol.answer_list(request.id, path, entries, truncated)
        finally:
            self.requests.give()
            self.server.listing_slots.give()
        self.count_errors()
        await self.pump.flush()

    # ------------------------------------------------------------ streams

    async def _page(self, request: m.Open, credit: asyncio.Event) -> None:
        """Page one stream: read only on credit and when the budgets have room."""
        sid = request.stream
        protocol = self.protocol
        pager: Pager | None = None
        error: PagebridgeError | None = None
        slots = self.server.source_slots
        has_slot = slots.take()
        metrics = self.server.metrics
        kind: str | None = None
        try:
            if not has_slot:
                raise StreamError("the server has too many open files; try again later",
                                  ErrorCode.BUSY)
            pager, name = await self.server.catalog.make_pager(request)
            info = await pager.start()
            pager.bind(protocol.accept_open(sid, path=name, size=info.size, length=info.length,
                                            mtime=info.mtime, etag=info.etag))
            kind = stream_kind(request, pager)
            metrics.stream_opened(kind)
            if not pager.prompt or pager.live or protocol.credits(sid) == 0:
                await self.pump.flush()
            # Otherwise `opened` leaves with the first page, in one write.
            await self._pump_pages(sid, pager, credit, kind)
        except asyncio.CancelledError as exc:
            error = CancelledStreamError(str(exc.args[0]) if exc.args else "stream stopped")
            raise
        except ConnectionClosed:
            error = CancelledStreamError("the collector disconnected")
        except LocalProtocolError as exc:
            log.error("stream %d (%s): %s", sid, request.path[:200], exc.message)
            error = exc
            self._fail(sid, ErrorCode.INTERNAL, "")
        except PagebridgeError as exc:
            error = exc
            self._fail(sid, exc.code, exc.message)
        except OSError as exc:
            error = os_error(exc, request.path)
            self._fail(sid, ErrorCode.IO_ERROR, f"reading {request.path} failed: {exc.strerror}")
        except Exception as exc:
            log.exception("stream %d (%s) failed", sid, request.path[:200])
            error = StreamError(f"internal error: {type(exc).__name__}", ErrorCode.INTERNAL)
            self._fail(sid, ErrorCode.INTERNAL, "")
        finally:
            self.handles.pop(sid, None)
            if kind is not None:
                metrics.stream_closed(kind)
            if pager is not None:
                pager.finish(error)
            if has_slot:
                slots.give()

    async def _pump_pages(self, sid: int, pager: Pager, credit: asyncio.Event, kind: str) -> None:
        """Read, send, repeat: each page holds budget from its read until it is written.

        One page may be read ahead while the previous one is being written,
        when the budgets have room at once; a stream without credit holds no
        page at all.  A live source (a followed file, a push source) waits
        for data in ``ready()`` before taking budget, so idle followers hold
        none.
        """
        protocol = self.protocol
        lease = self.lease
        metrics = self.server.metrics
        page_size = protocol.page_size_of(sid)
        compression = protocol.compression_of(sid)
        codec = codecs.make(compression) if compression is not None else None

        async def produce() -> tuple[PageData | SourceEvent | None, bytes | None]:
            """The next page, and with compression the page compressed (None when that did not pay)."""
            data = await pager.next_page(page_size)
            if codec is None or not data or isinstance(data, SourceEvent):
                return data, None
            # zstd releases the GIL: a large page is compressed in a thread
            # while the loop writes the previous one.
            if len(data) <= INLINE_COMPRESS:
                return data, codec.compress(data)
            return data, await asyncio.to_thread(codec.compress, data)

        ahead: asyncio.Future[tuple[PageData | SourceEvent | None, bytes | None]] | None = None  # budget held
        held = 0  # page budgets held by this loop
        try:
            while True:
                if ahead is not None:
                    (data, packed), ahead = await ahead, None
                else:
                    if pager.exhausted:
                        break  # end takes no credit
                    if protocol.credits(sid) == 0:
                        waited = time.perf_counter()
                        while protocol.credits(sid) == 0:
                            credit.clear()
                            await credit.wait()
                        metrics.credit_waited(kind, time.perf_counter() - waited)
                    # A live source waits for its writer in ready(), holding
                    # nothing; budget is taken only for an actual read.
                    await pager.ready()
                    await lease.acquire(page_size)
                    held += 1
                    data, packed = await produce()
                # One budget unit is held for `data` from here until it is written.
                if isinstance(data, SourceEvent):
                    # A live source changed (rotation...): tell the collector; no credit used.
                    protocol.send_event(sid, data.kind, data.offset, lost=data.lost,
                                        detail=data.detail)
                elif not data:
                    break
                else:
                    # The header goes into room the pager left before the data (no copy).
                    protocol.send_page(sid, data, packed=packed, spaced=pager.spaced(data))
                    metrics.page_sent(kind, len(data))
                    del data, packed
                    if (not pager.live and protocol.credits(sid) > 0 and not pager.exhausted
                            and lease.try_acquire(page_size)):
                        held += 1
                        # Read (and compress) the next page while this one is written.
                        ahead = asyncio.ensure_future(produce())
                    elif pager.exhausted:
                        break  # the last page: `end` (below) leaves with it, in one write
                await self.pump.flush()  # returns once the socket took the frame (it drains)
                lease.release(page_size)
                held -= 1
            protocol.end_stream(sid)
            await self.pump.flush()
        finally:
            if ahead is not None:
                ahead.cancel()
            for _ in range(held):
                lease.release(page_size)

    def _start_locate(self, request: m.Locate) -> None:
        """A locate is a request like a listing: it counts toward the same per-connection limit."""
        if not self.requests.take():
            self.protocol.reject_request(request.id, ErrorCode.BUSY, (
                f"this connection already has {self.requests.limit} requests in progress"))
            self.pump.flush_soon()
            return
        self.pump.spawn(self._locate(request), name=f"locate-{request.id}")

    async def _locate(self, request: m.Locate) -> None:
        server = self.server

        def work() -> tuple[str, Any]:
            catalog = _files(server.catalog)
            relative, shown = catalog.file_path(request.path)
            return relative, locate(relative, shown, server.line_index, offset=request.offset,
                                    line=request.line, root=catalog.root,
                                    refuse_links=catalog.refuse_links)
        try:
            name, found = await _in_pool(server.scan_pool, work)
        except StreamError as exc:
            self.protocol.reject_request(request.id, exc.code, exc.message)
        except OSError as exc:
            self.protocol.reject_request(request.id, ErrorCode.IO_ERROR,
                                         f"reading {request.path[:200]} failed: {exc.strerror}")
        except Exception:
            log.exception("locate %r failed", request.path[:200])
            self.protocol.reject_request(request.id, ErrorCode.INTERNAL, "")
        else:
            self.protocol.answer_locate(request.id, name, etag=found.etag, size=found.size,
                                        line=found.line, offset=found.offset, lines=found.lines)
        finally:
            self.requests.give()
        await self.pump.flush()

    async def _scan(self, request: m.Scan, credit: asyncio.Event) -> None:
        """Scan one file in the scan pool, a step at a time; send hits on credit."""
        sid = request.stream
        protocol = self.protocol
        server = self.server
        scan: FileScan | None = None
        step: Future[Any] | None = None

        async def run(fn: Callable[[], T]) -> T:
            nonlocal step
            step = server.scan_pool.submit(fn)
            return await asyncio.wrap_future(step)

        async def wait_credit() -> None:
            while protocol.credits(sid) == 0:
                credit.clear()
                await credit.wait()

        # A scan holds an open file like a page stream (same budget), and a
        # compiled pattern and a block: scans have a budget of their own.
        slots = server.source_slots
        has_slot = slots.take()
        has_scan = has_slot and server.scan_slots.take()
        try:
            if not has_slot:
                raise StreamError("the server has too many open files; try again later",
                                  ErrorCode.BUSY)
            if not has_scan:
                raise StreamError(f"the server is running {server.scan_slots.limit} scans; "
                                  "try again later", ErrorCode.BUSY)
            try:
                matcher = compile_pattern(request.pattern, regex=request.regex,
                                          ignore_case=request.ignore_case)
            except PatternError as exc:
                raise StreamError(f"invalid pattern: {exc}", ErrorCode.BAD_REQUEST) from None

            def start() -> tuple[FileScan, Any, str]:
                catalog = _files(server.catalog)
                name, shown = catalog.file_path(request.path)
                opened = FileScan(name, name=shown, matcher=matcher, root=catalog.root,
                                  refuse_links=catalog.refuse_links, offset=request.offset,
                                  length=request.length, follow=request.follow,
                                  max_text=DEFAULT_MAX_TEXT if request.max_text is None
                                  else request.max_text,
                                  number_lines=request.line_numbers, count_only=request.count_only,
                                  keep_cr=request.keep_cr, index=server.line_index,
                                  block_size=server.config.scan_block_size,
                                  overlap=min(OVERLAP, server.config.scan_block_size // 4))
                try:
                    return opened, opened.open(), name
                except BaseException:
                    opened.close()
                    raise

            active, info, name = await run(start)
            scan = active
            protocol.accept_open(sid, path=name, size=info.size, length=info.length,
                                 mtime=info.mtime, etag=info.etag)
            await self.pump.flush()
            count_only = request.count_only
            reported = time.monotonic()
            caught_up = False
            while True:
                batch = await run(active.step)
                now = time.monotonic()
                if batch.matches:
                    await wait_credit()
                    protocol.send_hits(sid, batch.scanned, [
                        {"offset": offset, "line": line, "text": text, "cut": cut}
                        for offset, line, text, cut in batch.matches])
                    reported = now
                elif (now - reported >= SCAN_PROGRESS_INTERVAL or (batch.idle and not caught_up)) \
                        and protocol.credits(sid) > 0 and not batch.done:
                    # Progress, only when credit allows: it is never worth waiting for.
                    protocol.send_hits(sid, batch.scanned, [], active.count if count_only else None)
                    reported = now
                caught_up = batch.idle
                if batch.event is not None:
                    event = batch.event
                    protocol.send_event(sid, event.kind, event.offset, lost=event.lost,
                                        detail=event.detail)
                if batch.done:
                    protocol.end_stream(sid, scanned=batch.scanned, count=active.count)
                    await self.pump.flush()
                    return
                await self.pump.flush()
                if batch.idle:
                    await active.wait_for_change()
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            pass
        except LocalProtocolError as exc:
            log.error("scan %d (%s): %s", sid, request.path[:200], exc.message)
            self._fail(sid, ErrorCode.INTERNAL, "")
        except PagebridgeError as exc:
            self._fail(sid, exc.code, exc.message)
        except OSError as exc:
            self._fail(sid, ErrorCode.IO_ERROR, f"reading {request.path[:200]} failed: {exc.strerror}")
        except Exception:
            log.exception("scan %d (%s) failed", sid, request.path[:200])
            self._fail(sid, ErrorCode.INTERNAL, "")
        finally:
            self.handles.pop(sid, None)
            if scan is not None:
                _close_after(step, scan.close)
            if has_slot:
                slots.give()
            if has_scan:
                server.scan_slots.give()

    def _fail(self, sid: int, code: ErrorCode, message: str) -> None:
        self.protocol.fail_stream(sid, code, message)
        self.pump.flush_soon()


def _files(catalog: AnyCatalog) -> Catalog:
    """The catalog of a folder on disk: scans and locate read files (not objects)."""
    if not isinstance(catalog, Catalog):
        raise StreamError("this server pages objects from a store, not files: scan and locate "
                          "need a folder on its disk", ErrorCode.NOT_A_FILE)
    return catalog


async def _in_pool(pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
    return await asyncio.wrap_future(pool.submit(fn))


def _close_after(step: Future[Any] | None, close: Callable[[], None]) -> None:
    """Close a scan once its last step has returned (a cancelled task does not stop a thread).

    The close runs on the event loop (a followed file's watcher lives there).
    """
    loop = asyncio.get_running_loop()

    def later(_: object = None) -> None:
        try:
            loop.call_soon_threadsafe(close)
        except RuntimeError:  # the loop is gone (the server stopped): close here
            close()

    if step is None or step.done():
        close()
    else:
        step.add_done_callback(later)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def run_server(server: PageServer, *, on_ready: Callable[[PageServer], None] | None = None) -> None:
    """Start, report, serve until SIGINT/SIGTERM, then close gracefully."""
    import signal

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _resolve, stop)
    async with server:
        if on_ready is not None:
            on_ready(server)
        await stop


__all__ = ["PageServer", "PagerConnection", "ServerConfig", "run_server", "WEB_ROOT"]
