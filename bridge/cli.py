"""The ``pagebridge`` command: serve, ls, get, cat, tail, grep."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PagebridgeError
from .terminal import printable

#: The commands that move pages (and so tune the allocator for page buffers).
PAGE_COMMANDS = ("serve", "get", "cat", "tail")
DEMO_ROOT = Path(__file__).resolve().parent.parent / "demo"


def _urls(url: str) -> list[str]:
    """``URL1,URL2``: replicas, tried in order; a lost connection fails over to the next."""
    return [u.strip() for u in url.split(",") if u.strip()]


def _client_ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    cafile = getattr(args, "cafile", None)
    return ssl.create_default_context(cafile=cafile) if cafile else None


# ---------------------------------------------------------------- serve


def _source_specs(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    specs = []
    for spec in args.source or ():
        name, _, command = spec.partition("=")
        if not name or not command:
            print(f"pagebridge: --source wants NAME='command args', got {spec!r}", file=sys.stderr)
            return None
        specs.append((name, command))
    return specs


def cmd_serve(args: argparse.Namespace) -> int:
    from .aio.server import PageServer, run_server

    if args.workers < 1:
        print("pagebridge: --workers must be at least 1", file=sys.stderr)
        return 2
    sources = _source_specs(args)
    if sources is None:
        return 2
    if args.workers > 1 and args.worker_index is None:
        return _supervise(args)
    token = args.token if args.token is not None else os.environ.get("PAGEBRIDGE_TOKEN") or None
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    try:
        server = PageServer(
            args.root, host=args.host, port=args.port, token=token, insecure=args.insecure,
            origins=args.origin or (), allowed_hosts=args.allowed_host, show_hidden=args.hidden,
            refuse_hard_links=args.refuse_hard_links,
            ssl=context,
            max_connections=args.max_connections, max_streams=args.max_streams,
            ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
            open_timeout=args.handshake_timeout, write_timeout=args.write_timeout,
            server_page_budget=args.page_budget << 20, max_open_sources=args.max_open_files,
            reuse_port=args.worker_index is not None, worker=args.worker_index or 0)
    except ValueError as exc:
        print(f"pagebridge: {exc}", file=sys.stderr)
        return 2
    for name, command in sources:
        if args.relay_from:
            # A worker: the supervisor runs the command once; relay it from there.
            from .aio.workers import RELAY_TOKEN_ENV
            from .sources.relay import relay_factory

            server.mount(name, relay_factory(args.relay_from, os.environ.get(RELAY_TOKEN_ENV), name))
        else:
            from .sources.push import mount_command

            mount_command(server, name, command)
    if args.worker_index is not None:
        from .aio.workers import die_with_parent, watch_parent

        die_with_parent()
        watch_parent(os.getppid())

    def ready(server: PageServer) -> None:
        print(f"pagebridge {__version__} serving {server.catalog.describe()}", flush=True)
        print(f"  viewer:    {server.http_url}", flush=True)
        print(f"  websocket: {server.ws_url}", flush=True)
        if token:
            print("  a token is required (not shown)", flush=True)

    try:
        asyncio.run(run_server(server, on_ready=ready))
    except ValueError as exc:  # the root cannot be served (a missing bucket...)
        print(f"pagebridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pagebridge: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """``serve --workers N``: start N workers on one port and watch them (bridge/aio/workers.py)."""
    from .aio.workers import Supervisor, reuse_port_supported

    if not reuse_port_supported():
        print("pagebridge: --workers needs Linux (SO_REUSEPORT spreading connections over processes)",
              file=sys.stderr)
        return 2
    # The workers get this same command line, with --workers 1 and their own options after it
    # (argparse keeps the last value of an option).
    argv = [*args.argv, "--workers", "1"]
    supervisor = Supervisor(argv, args.workers, args.host, args.port, sources=args.source or ())

    def ready(sup: Supervisor) -> None:
        host = f"[{args.host}]" if ":" in args.host else args.host
        scheme = "https" if args.certfile else "http"
        print(f"pagebridge {__version__} serving {args.root} with {args.workers} workers "
              f"(pids {' '.join(map(str, sup.pids))})", flush=True)
        print(f"  viewer:    {scheme}://{host}:{sup.port}/", flush=True)
        print(f"  websocket: {scheme.replace('http', 'ws')}://{host}:{sup.port}/ws", flush=True)

    try:
        return asyncio.run(supervisor.run(on_ready=ready))
    except OSError as exc:
        print(f"pagebridge: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1


# ---------------------------------------------------------------- clients


async def _ls(args: argparse.Namespace) -> int:
    from .aio.client import connect

    async with connect(_urls(args.url), args.token, ssl=_client_ssl(args)) as session:
        entries = await session.list(args.path)
    for e in entries:
        size = "-" if e.size is None else str(e.size)
        mtime = "-" if e.mtime is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(e.mtime))
        # Names come from the server: never let one drive the terminal.
        name = printable(e.name) + ("/" if e.kind == "dir" else "")
        print(f"{size:>14}  {mtime}  {name}")
    return 0


async def _get(args: argparse.Namespace) -> int:
    from .aio.client import connect

    dest = Path(args.output or Path(args.path).name)
    bar: Any = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, file=sys.stderr)

    def progress(done: int, total: int | None) -> None:
        if bar is not None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    started, cpu = time.perf_counter(), time.process_time()
    async with connect(_urls(args.url), args.token, ssl=_client_ssl(args)) as session:
        try:
            result = await session.download(args.path, dest, resume=args.resume, progress=progress,
                                            sha256=args.sha256, durable=args.fsync,
                                            window=args.window, compress=args.compress)
        finally:
            if bar is not None:
                bar.close()
    if args.report:
        elapsed = time.perf_counter() - started
        print(f"pagebridge: {result.received} bytes in {elapsed:.3f} s "
              f"({result.received / elapsed / 2**20:.0f} MiB/s) elapsed={elapsed:.6f} "
              f"cpu={time.process_time() - cpu:.6f}", file=sys.stderr)
    if result.resumed_from and not args.quiet:
        print(f"pagebridge: resumed {dest} at byte {result.resumed_from}", file=sys.stderr)
    if args.sha256:
        print(f"{result.sha256}  {dest}")
    return 0


async def _cat(args: argparse.Namespace) -> int:
    from .aio.beside import WRITE_SIZE
    from .aio.client import Page, connect

    out = sys.stdout.buffer
    async with connect(_urls(args.url), args.token, ssl=_client_ssl(args)) as session:
        offset, length = args.offset, args.length
        if args.line is not None:
            if args.offset or args.length is not None:
                raise ValueError("--line and --lines replace --offset and --length")
            if args.line < 1 or (args.lines is not None and args.lines < 0):
                raise ValueError("--line starts at 1 and --lines is not negative")
            first = await session.locate(args.path, line=args.line)
            if args.line > first.lines:
                return 0  # past the last line: nothing, as sed -n would print
            offset, length = first.offset, None
            if args.lines is not None:
                after = await session.locate(args.path, line=args.line + args.lines)
                if args.line + args.lines <= after.lines:
                    length = after.offset - first.offset
        elif args.lines is not None:
            raise ValueError("--lines goes with --line")
        if length == 0:
            return 0
        # A bulk read: large pages, written WRITE_SIZE at a time (bridge/aio/beside.py).
        async with session.pages(args.path, offset, length, page_size=session.bulk_page_size) as stream:
            async for page in stream:
                if isinstance(page, Page):
                    data = page.data
                    for at in range(0, len(data), WRITE_SIZE):
                        out.write(data[at:at + WRITE_SIZE])
    out.flush()
    return 0


async def _grep(args: argparse.Namespace) -> int:
    from .aio.client import connect
    from .core.limits import MAX_TEXT

    if args.count and args.follow:
        raise ValueError("-c counts to the end of the file; it cannot be combined with --follow")
    pattern, regex = args.pattern, not args.fixed
    if regex:
        from .scan.posix import posix_to_re2

        pattern = posix_to_re2(pattern, extended=args.extended)
        if not any(c in "\\.+*?()|[]{}^$" for c in pattern):
            regex = False  # a plain word: the literal engine is faster
    out = sys.stdout.buffer
    async with connect(_urls(args.url), args.token, ssl=_client_ssl(args)) as session:
        search = session.search(args.path, pattern, regex=regex, ignore_case=args.ignore_case,
                                follow=args.follow, count_only=args.count, window=16,
                                line_numbers=args.line_number, max_text=MAX_TEXT, keep_cr=True)
        async with search:
            etag = search.opened.etag if search.opened else None
            async for batch in search.batches():
                if not isinstance(batch, list):
                    if batch.detail:
                        print(f"pagebridge: {batch.detail}", file=sys.stderr, flush=True)
                    continue
                lines = []
                for item in batch:
                    text = await _whole_line(session, args.path, item, etag) if item.cut else item.text
                    lines.append(b"%d:%s\n" % (item.line, text) if args.line_number else text + b"\n")
                # One write per batch: stdout may be unbuffered (PYTHONUNBUFFERED).
                out.write(b"".join(lines))
                if args.follow:
                    out.flush()
    if args.count:
        out.write(b"%d\n" % search.count)
    out.flush()
    return 0 if search.count else 1


async def _whole_line(session: Any, path: str, match: Any, etag: str | None) -> bytes:
    """A line longer than a scan's text cap, read in full (grep prints whole lines)."""
    from .aio.client import Page

    parts: list[bytes] = []
    async with session.pages(path, match.offset, if_match=etag) as stream:
        async for page in stream:
            if not isinstance(page, Page):
                continue
            data = bytes(page.data)
            end = data.find(b"\n")
            if end >= 0:
                parts.append(data[:end])
                break
            parts.append(data)
    return b"".join(parts)


async def _tail(args: argparse.Namespace) -> int:
    from .aio.client import connect
    from .aio.tail import tail

    async with connect(_urls(args.url), args.token, ssl=_client_ssl(args)) as session:
        return await tail(session, args.path, lines=args.lines, follow=args.follow,
                          out=sys.stdout.buffer, err=sys.stderr)


def _run_client(coro_fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
                args: argparse.Namespace, *, failure: int = 1) -> int:
    try:
        return asyncio.run(coro_fn(args))
    except PagebridgeError as exc:
        print(f"pagebridge: {exc.code}: {printable(exc.message)}", file=sys.stderr)
        return failure
    except ValueError as exc:
        print(f"pagebridge: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output closed early (e.g. piped into head): not an error of ours.
        sys.stderr.close()
        return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pagebridge",
        description="Page files and live byte streams over WebSocket, acknowledged and verified.")
    parser.add_argument("--version", action="version", version=f"pagebridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve a folder (and the viewer) over WebSocket",
                           description="Serve ROOT: the viewer at http://HOST:PORT/, "
                                       "the protocol at ws://HOST:PORT/ws.")
    serve.add_argument("root", nargs="?", default=".",
                       help="folder to serve (default: .), or an object store URL: s3://bucket/prefix "
                            "(needs pagebridge[s3]), gs://, az://, memory://...")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks one)")
    serve.add_argument("--token", help="require this token (default: $PAGEBRIDGE_TOKEN)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback address without a token")
    serve.add_argument("--origin", action="append", metavar="ORIGIN",
                       help="also accept browsers from this origin (repeatable; '*' for any)")
    serve.add_argument("--allowed-host", action="append", metavar="NAME", default=[],
                       help="a host name browsers may use to reach this server, besides "
                            "localhost and loopback addresses (repeatable; the DNS-rebinding defence)")
    serve.add_argument("--hidden", action="store_true", help="list and serve dot files")
    serve.add_argument("--refuse-hard-links", action="store_true",
                       help="refuse files with more than one hard link (one may lead outside the folder)")
    serve.add_argument("--certfile", help="TLS certificate chain (PEM): serve https/wss")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--max-connections", type=int, default=1024, help="global limit")
    serve.add_argument("--max-streams", type=int, default=64, help="per-connection limit")
    serve.add_argument("--ping-interval", type=float, default=20, help="seconds between pings (default 20)")
    serve.add_argument("--ping-timeout", type=float, default=20,
                       help="drop a peer whose pong is this late, in seconds (default 20)")
    serve.add_argument("--handshake-timeout", type=float, default=10,
                       help="seconds a new connection has to complete its handshake and hello")
    serve.add_argument("--write-timeout", type=float, default=60,
                       help="close a peer that reads nothing for this many seconds (default 60)")
    serve.add_argument("--page-budget", type=int, default=256, metavar="MIB",
                       help="memory for pages between files and sockets, all connections "
                            "together, in MiB (default 256)")
    serve.add_argument("--max-open-files", type=int, default=None, metavar="N",
                       help="files open for streams at once (default: from ulimit -n)")
    serve.add_argument("--source", action="append", metavar="NAME='COMMAND ARGS'",
                       help="mount a live source: a command whose output is paged")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (Linux; default 1)")
    serve.add_argument("--log-json", action="store_true",
                       help="log JSON lines (with a connection id) to stderr")
    # Set by the supervisor of --workers for its workers; not for people.
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--relay-from", default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("url", help="server URL: ws://, wss://, http:// or https://; "
                                   "URL1,URL2,... for replicas (tried in order, failed over)")
        p.add_argument("--token", help="token (default: $PAGEBRIDGE_TOKEN)")
        p.add_argument("--cafile", help="trust this CA bundle for wss://")
        return p

    ls = client("ls", "list a folder on a server")
    ls.add_argument("path", nargs="?", default="", help="folder (default: the root)")
    ls.set_defaults(func=lambda a: _run_client(_ls, a))

    get = client("get", "download a file, verified, with resume")
    get.add_argument("path", help="file on the server")
    get.add_argument("-o", "--output", help="where to write it (default: its name, here)")
    get.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                     help="continue a partial download (default: on)")
    get.add_argument("--sha256", action="store_true",
                     help="print the sha256 of the downloaded file (hashed while receiving)")
    get.add_argument("--fsync", action="store_true", help="fsync the file before renaming it")
    get.add_argument("--window", type=int, default=None, help="pages in flight (default: adaptive)")
    get.add_argument("--compress", action="store_true",
                     help="ask for zstd-compressed pages (slow links; needs pagebridge[compress])")
    get.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    get.add_argument("--report", action="store_true",
                     help="print the transfer time and rate (connect to verified file) on stderr")
    get.set_defaults(func=lambda a: _run_client(_get, a))

    cat = client("cat", "write a file (or a byte range, or some lines of it) to stdout")
    cat.add_argument("path", help="file on the server")
    cat.add_argument("--offset", type=int, default=0, help="first byte")
    cat.add_argument("--length", type=int, default=None, help="number of bytes")
    cat.add_argument("--line", type=int, default=None, metavar="N",
                     help="start at line N (1-based; the server counts lines and keeps an index)")
    cat.add_argument("--lines", type=int, default=None, metavar="K",
                     help="with --line: print K lines (default: to the end)")
    cat.set_defaults(func=lambda a: _run_client(_cat, a))

    tail = client("tail", "print the end of a file; with -f, follow it as it grows")
    tail.add_argument("path", help="file on the server")
    tail.add_argument("-n", "--lines", type=int, default=10, help="lines to show (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended")
    tail.set_defaults(func=lambda a: _run_client(_tail, a))

    grep = sub.add_parser(
        "grep", help="print the lines of a file on a server that match a pattern",
        description="Search PATH on the server at URL, as GNU grep searches a file: the same "
                    "output and exit status (0 a line matched, 1 none, 2 an error). Patterns "
                    "are basic regular expressions by default (-E extended, -F fixed strings), "
                    "run by RE2 on the server: no back-references.")
    syntax = grep.add_mutually_exclusive_group()
    syntax.add_argument("-F", "--fixed-strings", dest="fixed", action="store_true",
                        help="PATTERN is a fixed string")
    syntax.add_argument("-E", "--extended-regexp", dest="extended", action="store_true",
                        help="PATTERN is an extended regular expression")
    syntax.add_argument("-G", "--basic-regexp", dest="basic", action="store_true",
                        help="PATTERN is a basic regular expression (the default)")
    grep.add_argument("-i", "--ignore-case", action="store_true", help="ignore case distinctions")
    grep.add_argument("-c", "--count", action="store_true", help="print only the number of matching lines")
    grep.add_argument("-n", "--line-number", action="store_true", help="prefix each line with its number")
    grep.add_argument("--follow", action="store_true",
                      help="keep printing the matching lines appended to the file (a live filter)")
    grep.add_argument("pattern", help="what to look for")
    grep.add_argument("url", help="server URL: ws://, wss://, http:// or https://")
    grep.add_argument("path", help="file on the server")
    grep.add_argument("--token", help="token (default: $PAGEBRIDGE_TOKEN)")
    grep.add_argument("--cafile", help="trust this CA bundle for wss://")
    grep.set_defaults(func=lambda a: _run_client(_grep, a, failure=2))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    from .logs import configure

    configure(verbose=args.verbose, json_lines=getattr(args, "log_json", False),
              worker=getattr(args, "worker_index", None) or 0)
    if args.command in PAGE_COMMANDS:
        from .tuning import keep_freed_memory

        # The programs own their process: page buffers are reused instead of
        # faulted in afresh (bridge.tuning; measured in bench/README.md).
        keep_freed_memory()
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
