"""The ``pagebridge`` command: serve, ls, get, cat, tail."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PagebridgeError

DEMO_ROOT = Path(__file__).resolve().parent.parent / "demo"


def _client_ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    cafile = getattr(args, "cafile", None)
    return ssl.create_default_context(cafile=cafile) if cafile else None


# ---------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from .aio.server import PageServer, run_server

    token = args.token if args.token is not None else os.environ.get("PAGEBRIDGE_TOKEN") or None
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    try:
        server = PageServer(
            args.root, host=args.host, port=args.port, token=token, insecure=args.insecure,
            origins=args.origin or (), show_hidden=args.hidden, ssl=context,
            max_connections=args.max_connections, max_streams=args.max_streams,
            ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
            open_timeout=args.handshake_timeout)
    except ValueError as exc:
        print(f"pagebridge: {exc}", file=sys.stderr)
        return 2
    for spec in args.source or ():
        name, _, command = spec.partition("=")
        if not name or not command:
            print(f"pagebridge: --source wants NAME='command args', got {spec!r}", file=sys.stderr)
            return 2
        from .sources.push import mount_command

        mount_command(server, name, command)

    def ready(server: PageServer) -> None:
        print(f"pagebridge {__version__} serving {server.config.root}", flush=True)
        print(f"  viewer:    {server.http_url}", flush=True)
        print(f"  websocket: {server.ws_url}", flush=True)
        if token:
            print("  a token is required (not shown)", flush=True)

    try:
        asyncio.run(run_server(server, on_ready=ready))
    except OSError as exc:
        print(f"pagebridge: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- clients


async def _ls(args: argparse.Namespace) -> int:
    from .aio.client import connect

    async with connect(args.url, args.token, ssl=_client_ssl(args)) as session:
        entries = await session.list(args.path)
    for e in entries:
        size = "-" if e.size is None else str(e.size)
        mtime = "-" if e.mtime is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(e.mtime))
        name = e.name + ("/" if e.kind == "dir" else "")
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

    started = time.perf_counter()
    async with connect(args.url, args.token, ssl=_client_ssl(args)) as session:
        try:
            result = await session.download(args.path, dest, resume=args.resume, progress=progress,
                                            sha256=args.sha256, durable=args.fsync,
                                            window=args.window)
        finally:
            if bar is not None:
                bar.close()
    if args.report:
        elapsed = time.perf_counter() - started
        print(f"pagebridge: {result.received} bytes in {elapsed:.3f} s "
              f"({result.received / elapsed / 2**20:.0f} MiB/s) elapsed={elapsed:.6f}", file=sys.stderr)
    if result.resumed_from and not args.quiet:
        print(f"pagebridge: resumed {dest} at byte {result.resumed_from}", file=sys.stderr)
    if args.sha256:
        print(f"{result.sha256}  {dest}")
    return 0


async def _cat(args: argparse.Namespace) -> int:
    from .aio.client import Page, connect

    out = sys.stdout.buffer
    async with connect(args.url, args.token, ssl=_client_ssl(args)) as session:
        async with session.pages(args.path, args.offset, args.length) as stream:
            async for page in stream:
                if isinstance(page, Page):
                    out.write(page.data)
    out.flush()
    return 0


async def _tail(args: argparse.Namespace) -> int:
    from .aio.client import connect
    from .aio.tail import tail

    async with connect(args.url, args.token, ssl=_client_ssl(args)) as session:
        return await tail(session, args.path, lines=args.lines, follow=args.follow,
                          out=sys.stdout.buffer, err=sys.stderr)


def _run_client(coro_fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
                args: argparse.Namespace) -> int:
    try:
        return asyncio.run(coro_fn(args))
    except PagebridgeError as exc:
        print(f"pagebridge: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"pagebridge: {exc}", file=sys.stderr)
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
    serve.add_argument("root", nargs="?", default=".", help="folder to serve (default: .)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks one)")
    serve.add_argument("--token", help="require this token (default: $PAGEBRIDGE_TOKEN)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback address without a token")
    serve.add_argument("--origin", action="append", metavar="ORIGIN",
                       help="also accept browsers from this origin (repeatable; '*' for any)")
    serve.add_argument("--hidden", action="store_true", help="list and serve dot files")
    serve.add_argument("--certfile", help="TLS certificate chain (PEM): serve https/wss")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--max-connections", type=int, default=1024, help="global limit")
    serve.add_argument("--max-streams", type=int, default=64, help="per-connection limit")
    serve.add_argument("--ping-interval", type=float, default=20, help="seconds between pings (default 20)")
    serve.add_argument("--ping-timeout", type=float, default=20,
                       help="drop a peer whose pong is this late, in seconds (default 20)")
    serve.add_argument("--handshake-timeout", type=float, default=10,
                       help="seconds a new connection has to complete its handshake and hello")
    serve.add_argument("--source", action="append", metavar="NAME='COMMAND ARGS'",
                       help="mount a live source: a command whose output is paged")
    serve.set_defaults(func=cmd_serve)

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("url", help="server URL: ws://, wss://, http:// or https://")
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
    get.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    get.add_argument("--report", action="store_true",
                     help="print the transfer time and rate (connect to verified file) on stderr")
    get.set_defaults(func=lambda a: _run_client(_get, a))

    cat = client("cat", "write a file (or a byte range of it) to stdout")
    cat.add_argument("path", help="file on the server")
    cat.add_argument("--offset", type=int, default=0, help="first byte")
    cat.add_argument("--length", type=int, default=None, help="number of bytes")
    cat.set_defaults(func=lambda a: _run_client(_cat, a))

    tail = client("tail", "print the end of a file; with -f, follow it as it grows")
    tail.add_argument("path", help="file on the server")
    tail.add_argument("-n", "--lines", type=int, default=10, help="lines to show (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended")
    tail.set_defaults(func=lambda a: _run_client(_tail, a))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
