"""What a server counts, and the ``/metrics`` and ``/healthz`` answers.

:class:`ServerMetrics` holds the server's Prometheus metrics (through
``prometheus_client``) and offers one small method per thing that happens,
which the server shell calls: a connection opens or closes, a stream opens,
sends a page, waits for credit, ends; an error is sent.  Each server owns a
registry of its own, so several servers in one process (the tests) never mix
their counts.

With ``pagebridge serve --workers N`` the supervisor gives every worker the
same ``PROMETHEUS_MULTIPROC_DIR`` before they start (prometheus_client reads
it when it is imported): each worker then writes its values to files there,
and whichever worker answers a scrape adds up every worker's
(``MultiProcessCollector``), so ``/metrics`` shows the totals of the whole
server whichever worker the kernel hands the scrape to.  Gauges are summed
over live workers only; a worker that died is forgotten by the supervisor
(``mark_process_dead``).

Who may read ``/metrics``: a peer on the loopback interface whose request
carries no ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header (a reverse
proxy on the same host would otherwise make every visitor look local), or
anyone presenting the server's token as ``Authorization: Bearer TOKEN``.
``/healthz`` is open to all (load balancers probe it) and says nothing but
that this process serves, and which worker it is.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The *_created series (one timestamp per label set) double the output and
# say nothing an operator needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Kinds of stream, the ``kind`` label: a file, a followed file, an object
#: in object storage, a mounted (push) source, a scan.
STREAM_KINDS = ("file", "follow", "object", "source", "scan")

#: Headers a reverse proxy adds: their presence means the loopback peer is a
#: proxy speaking for someone else.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def multiprocess_dir() -> str | None:
    """The shared folder of a multi-worker server, when this process is one of its workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class ServerMetrics:
    """The metrics of one server (one worker), with a call for each event.

    Args:
        worker: this process's worker number (0 for a lone server).
    """

    def __init__(self, *, worker: int = 0) -> None:
        self.worker = worker
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.connections = Gauge("pagebridge_connections", "Open collector connections.",
                                 registry=reg, multiprocess_mode="livesum")
        self.connections_total = Counter("pagebridge_connections_accepted", "Collector connections accepted.",
                                         registry=reg)
        self.streams = Gauge("pagebridge_streams", "Open streams, by kind.", ["kind"], registry=reg,
                             multiprocess_mode="livesum")
        self.streams_total = Counter("pagebridge_streams_opened", "Streams opened, by kind.", ["kind"],
                                     registry=reg)
        self.pages = Counter("pagebridge_pages_sent", "Pages sent, by kind of stream.", ["kind"],
                             registry=reg)
        self.bytes = Counter("pagebridge_bytes_sent", "Bytes of page data sent, by kind of stream.",
                             ["kind"], registry=reg)
        self.credit_wait = Counter("pagebridge_credit_wait_seconds",
                                   "Time streams spent waiting for the collector's credit, by kind.",
                                   ["kind"], registry=reg)
        self.errors = Counter("pagebridge_errors", "Error messages sent to collectors, by code.", ["code"],
                              registry=reg)
        self.followers = Gauge("pagebridge_followers", "Streams following a growing file.", registry=reg,
                               multiprocess_mode="livesum")
        self.scans = Gauge("pagebridge_scans", "Scans running.", registry=reg, multiprocess_mode="livesum")
        self.listings = Counter("pagebridge_listings", "Folder listings answered.", registry=reg)
        self.line_index_bytes = Counter(
            "pagebridge_line_index_bytes", "Bytes counted for line indexes: 'read' by the index itself "
            "(a pass of its own), 'scanned' taken from the blocks a scan read anyway.", ["how"], registry=reg)
        self._line_index = {how: self.line_index_bytes.labels(how) for how in ("read", "scanned")}
        # Label children resolved once: a page is counted on every send.
        self._pages = {kind: self.pages.labels(kind) for kind in STREAM_KINDS}
        self._bytes = {kind: self.bytes.labels(kind) for kind in STREAM_KINDS}
        self._waits = {kind: self.credit_wait.labels(kind) for kind in STREAM_KINDS}
        self._streams = {kind: self.streams.labels(kind) for kind in STREAM_KINDS}
        self._opened = {kind: self.streams_total.labels(kind) for kind in STREAM_KINDS}

    # ------------------------------------------------------------ events

    def connection_opened(self) -> None:
        self.connections.inc()
        self.connections_total.inc()

    def connection_closed(self) -> None:
        self.connections.dec()

    def stream_opened(self, kind: str) -> None:
        self._streams[kind].inc()
        self._opened[kind].inc()
        if kind == "follow":
            self.followers.inc()
        elif kind == "scan":
            self.scans.inc()

    def stream_closed(self, kind: str) -> None:
        self._streams[kind].dec()
        if kind == "follow":
            self.followers.dec()
        elif kind == "scan":
            self.scans.dec()

    def page_sent(self, kind: str, size: int) -> None:
        self._pages[kind].inc()
        self._bytes[kind].inc(size)

    def credit_waited(self, kind: str, seconds: float) -> None:
        self._waits[kind].inc(seconds)

    def error_sent(self, code: str) -> None:
        self.errors.labels(str(code)).inc()

    def listed(self) -> None:
        self.listings.inc()

    def line_index_counted(self, how: str, size: int) -> None:
        """The line index counted ``size`` bytes, ``how`` = "read" (its own read) or "scanned"."""
        self._line_index[how].inc(size)

    # ------------------------------------------------------------ answers

    def exposition(self) -> bytes:
        """The Prometheus text of this server, or of every worker in multi-worker mode."""
        shared = multiprocess_dir()
        if shared:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def stream_kind(request: Any, pager: Any) -> str:
    """The ``kind`` label of a stream, from its request and its pager's class."""
    if getattr(request, "t", None) == "scan" or type(request).__name__ == "Scan":
        return "scan"
    if getattr(request, "follow", False):
        return "follow"
    name = type(pager).__name__
    if name == "ObjectPager":
        return "object"
    if name in ("FilePager",):
        return "file"
    return "source"


def metrics_allowed(remote: Any, headers: Any, token: str | None) -> bool:
    """May this HTTP request read /metrics?  (Loopback without a proxy in between, or the token.)"""
    if token is not None:
        auth = headers.get("Authorization") or ""
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if any(headers.get(name) is not None for name in FORWARDING_HEADERS):
        return False
    host = remote[0] if isinstance(remote, tuple) and remote else remote
    if not isinstance(host, str):
        return False  # a Unix socket or an unknown peer: only with the token
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def health_body(worker: int, connections: int) -> bytes:
    """The /healthz answer: this process serves."""
    return json.dumps({"status": "ok", "worker": worker, "pid": os.getpid(),
                       "connections": connections}).encode() + b"\n"


__all__ = ["CONTENT_TYPE_LATEST", "FORWARDING_HEADERS", "STREAM_KINDS", "ServerMetrics",
           "health_body", "metrics_allowed", "multiprocess_dir", "stream_kind"]
