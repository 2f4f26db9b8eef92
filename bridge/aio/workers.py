"""``pagebridge serve --workers N``: N server processes on one port.

The process started by the command becomes a *supervisor* that serves
nothing itself:

* It picks the port (resolving port 0 with a bound, non-listening
  placeholder socket that holds the port until the workers listen on it),
  then starts N workers: ``python -m bridge serve ...`` again, each a full
  server (catalog, viewer, ``/metrics``), each listening on the same
  address with ``SO_REUSEPORT``, so that Linux spreads new connections
  across them.  A connection stays with the worker that accepted it.
* Push sources (``--source NAME='command'``) run once, here: the
  supervisor mounts them on a private server of its own on 127.0.0.1
  (random port, random token given to the workers in their environment),
  and every worker mounts each NAME as a *relay* (:mod:`bridge.sources.relay`)
  that opens NAME on the supervisor for each of its collectors.  So the
  command starts once, with the first collector of any worker, and each
  collector is one subscriber of the one source: pause, ``gap`` and
  ``too_slow`` behave as with one process.
* Metrics: every worker gets the same ``PROMETHEUS_MULTIPROC_DIR`` (a
  fresh folder, removed at exit), so the ``/metrics`` of any worker adds up
  all of them (see :mod:`bridge.metrics`).
* Lifetime: SIGTERM or SIGINT to the supervisor stops every worker
  (SIGTERM, then SIGKILL after a grace period).  Workers die with the
  supervisor even if it is killed outright (Linux's parent-death signal,
  and each worker also watches its parent).  A worker that dies is started
  again; if workers keep dying at start-up, the supervisor gives up and
  exits with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Environment variable carrying the token of the supervisor's private server.
RELAY_TOKEN_ENV = "PAGEBRIDGE_RELAY_TOKEN"
#: How long stopping workers may take before they are killed.
STOP_GRACE = 10.0
#: How long a worker has to print its address.
START_TIMEOUT = 60.0
#: A worker that dies within this many seconds of its start counts as a failed start.
QUICK_DEATH = 5.0
#: Failed starts in a row after which the supervisor gives up.
MAX_FAILED_STARTS = 3


def reuse_port_supported() -> bool:
    """SO_REUSEPORT with load balancing across listeners: Linux (3.9 and later)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def placeholder_socket(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT: it resolves port 0
    and holds the port for the workers, and, not listening, is never handed a connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def die_with_parent() -> None:
    """In a worker: get SIGTERM when the supervisor dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def watch_parent(parent: int, interval: float = 1.0) -> None:
    """In a worker: SIGTERM itself when the supervisor is gone (where prctl is not available).

    A daemon thread, so it works whatever the event loop is doing.
    """
    import threading

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="pagebridge-parent-watch", daemon=True).start()


@dataclass
class Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    failed_starts: int = 0
    drain: asyncio.Task[None] | None = None


@dataclass
class Supervisor:
    """Starts, watches and stops the workers.  See the module docstring.

    Args:
        argv: the ``serve`` command line the workers are started with
            (without ``--workers``); the supervisor appends ``--port``,
            ``--worker-index`` and, with push sources, ``--relay-from``.
        workers: how many.
        host, port: the address every worker listens on.
        sources: ``NAME='command'`` specs, run here and relayed.
    """

    argv: Sequence[str]
    workers: int
    host: str
    port: int
    sources: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._workers = [Worker(i) for i in range(self.workers)]
        self._stopping = False
        self._failed: int | None = None
        self._metrics_dir: str | None = None
        self._relay_root: str | None = None
        self._relay: Any = None
        self._done: asyncio.Future[None] | None = None

    async def run(self, on_ready: Any = None) -> int:
        """Serve until SIGINT/SIGTERM (or the workers cannot be kept running); the exit status."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop_soon)
        placeholder = placeholder_socket(self.host, self.port)
        self.port = placeholder.getsockname()[1]
        self._metrics_dir = tempfile.mkdtemp(prefix="pagebridge-metrics-")
        self.env = {**os.environ, **self.env, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir,
                    "PYTHONUNBUFFERED": "1"}
        relay_args: list[str] = []
        try:
            if self.sources:
                relay_args = await self._start_relay()
            try:
                await asyncio.gather(*(self._start(w, relay_args) for w in self._workers))
            except RuntimeError as exc:
                print(f"pagebridge: {exc}", file=sys.stderr, flush=True)
                return self._failed or 1
            placeholder.close()  # the workers hold the port now
            if on_ready is not None:
                on_ready(self)
            watchers = [asyncio.ensure_future(self._watch(w, relay_args)) for w in self._workers]
            await self._done
            for watcher in watchers:
                watcher.cancel()
            return self._failed or 0
        finally:
            placeholder.close()
            self._stopping = True
            await self._stop_workers()
            if self._relay is not None:
                await self._relay.close()
            for folder in (self._metrics_dir, self._relay_root):
                if folder:
                    shutil.rmtree(folder, ignore_errors=True)

    def _stop_soon(self) -> None:
        self._stopping = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc is not None]

    async def _start_relay(self) -> list[str]:
        """Mount the push sources on a private server on 127.0.0.1; the workers relay them."""
        from ..sources.push import mount_command
        from .server import PageServer

        token = secrets.token_urlsafe(32)
        self._relay_root = tempfile.mkdtemp(prefix="pagebridge-relay-")
        # Each relayed collector is one connection here: the server's default limits
        # (1024 connections, within the descriptor limit) bound them, for all workers together.
        self._relay = PageServer(self._relay_root, host="127.0.0.1", port=0, token=token, web_root=None)
        for spec in self.sources:
            name, _, command = spec.partition("=")
            mount_command(self._relay, name, command)
        await self._relay.start()
        self.env[RELAY_TOKEN_ENV] = token
        return ["--relay-from", self._relay.ws_url]

    async def _start(self, worker: Worker, relay_args: list[str]) -> None:
        cmd = [sys.executable, "-m", "bridge", *self.argv, "--port", str(self.port),
               "--worker-index", str(worker.index), *relay_args]
        worker.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=self.env)
        worker.started = time.monotonic()
        assert worker.proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = await worker.proc.stdout.readline()
                    if not line:
                        code = await worker.proc.wait()
                        self._failed = code or 1
                        raise RuntimeError(f"worker {worker.index} exited at start-up (status {code})")
                    if b"websocket:" in line:
                        break
        except TimeoutError:
            raise RuntimeError(f"worker {worker.index} did not start within {START_TIMEOUT:.0f} s") from None
        # Keep reading what it prints, so a full pipe never blocks it.
        worker.drain = asyncio.ensure_future(self._drain(worker.proc.stdout))

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def _watch(self, worker: Worker, relay_args: list[str]) -> None:
        """Start a worker again when it dies; give up when it keeps dying at start."""
        while not self._stopping:
            assert worker.proc is not None
            code = await worker.proc.wait()
            if self._stopping:
                return
            self._forget(worker.proc.pid)
            quick = time.monotonic() - worker.started < QUICK_DEATH
            worker.failed_starts = worker.failed_starts + 1 if quick else 0
            print(f"pagebridge: worker {worker.index} (pid {worker.proc.pid}) exited with status {code}; "
                  "starting it again", file=sys.stderr, flush=True)
            if worker.failed_starts >= MAX_FAILED_STARTS:
                print(f"pagebridge: worker {worker.index} keeps failing; stopping", file=sys.stderr, flush=True)
                self._failed = 1
                self._stop_soon()
                return
            await asyncio.sleep(min(5.0, 0.5 * 2 ** worker.failed_starts))
            try:
                await self._start(worker, relay_args)
            except RuntimeError as exc:
                print(f"pagebridge: {exc}", file=sys.stderr, flush=True)

    def _forget(self, pid: int) -> None:
        """Drop a dead worker's live gauges from the shared metrics."""
        if self._metrics_dir:
            with contextlib.suppress(Exception):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(pid, self._metrics_dir)  # type: ignore[no-untyped-call]

    async def _stop_workers(self) -> None:
        running = [w for w in self._workers if w.proc is not None and w.proc.returncode is None]
        for worker in running:
            assert worker.proc is not None
            with contextlib.suppress(ProcessLookupError):
                worker.proc.terminate()
        for worker in running:
            assert worker.proc is not None
            try:
                await asyncio.wait_for(worker.proc.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
        for worker in self._workers:
            if worker.drain is not None:
                worker.drain.cancel()


__all__ = ["RELAY_TOKEN_ENV", "Supervisor", "die_with_parent", "placeholder_socket", "reuse_port_supported",
           "watch_parent"]
