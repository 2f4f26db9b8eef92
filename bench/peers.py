"""Reference systems measured beside pagebridge, each run as its own process.

``python -m bench.peers raw-ws-server FILE PORT [CHUNK]``: a raw websockets
sender (binary frames of CHUNK bytes, 256 KiB by default, no acks, no
msgpack): the ceiling of this stack.
``python -m bench.peers raw-ws-receive URL``: its receiver, hashing sha256
as it receives, printing ``<bytes> <sha256>``.
``python -m bench.peers pagebridge-receive URL PATH``: the pagebridge
collector doing the same (default settings), for an in-memory comparison.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time

CHUNK = 256 * 1024


async def raw_ws_server(path: str, port: int, chunk_size: int = CHUNK) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                await ws.send(chunk)
        await ws.close()

    def blank_page(connection, request):  # type: ignore[no-untyped-def]
        # A plain GET gets an empty page, so a browser benchmark can run on
        # this origin (same-origin WebSocket, no CSP, no cross-origin rules).
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return connection.respond(200, "raw sender\n")
        return None

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None,
                     process_request=blank_page) as server:
        print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


async def raw_ws_receive(url: str) -> None:
    from websockets.asyncio.client import connect

    digest = hashlib.sha256()
    size = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async with connect(url, compression=None, max_size=None) as ws:
        async for message in ws:
            digest.update(message)
            size += len(message)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}",
          f"cpu={time.process_time() - c0:.6f}")


async def pagebridge_receive(url: str, path: str, integrity: bool = True) -> None:
    from bridge.aio.client import Page, connect

    digest = hashlib.sha256()
    size = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async with connect(url) as session:
        async with session.pages(path, integrity=integrity) as stream:
            async for page in stream:
                if isinstance(page, Page):
                    digest.update(page.data)
                    size += len(page.data)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}",
          f"cpu={time.process_time() - c0:.6f}")


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "raw-ws-server":
        asyncio.run(raw_ws_server(args[0], int(args[1]), *(int(a) for a in args[2:3])))
    elif command == "raw-ws-receive":
        asyncio.run(raw_ws_receive(args[0]))
    elif command == "pagebridge-receive":
        asyncio.run(pagebridge_receive(args[0], args[1], integrity="--no-integrity" not in args))
    else:
        raise SystemExit(f"unknown command {command}")




# ---------------------------------------------------------------- more peers


def twisted_pb_server(path: str, port: int) -> None:
    """Twisted PB: a Root whose getFile(collector) pages the file with util.FilePager."""
    from twisted.internet import reactor
    from twisted.spread import pb, util

    class Root(pb.Root):
        def remote_getFile(self, collector):  # type: ignore[no-untyped-def]
            util.FilePager(collector, open(path, "rb"))

    listening = reactor.listenTCP(port, pb.PBServerFactory(Root()), interface="127.0.0.1")
    print(f"ready {listening.getHost().port}", flush=True)
    reactor.run()


def twisted_pb_receive(port: int) -> None:
    """Twisted PB's collector: hashes every page (remote_gotPage) until remote_endedPaging."""
    from twisted.internet import reactor
    from twisted.spread import pb

    digest = hashlib.sha256()
    state = {"size": 0}
    t0, c0 = time.perf_counter(), time.process_time()

    class Collector(pb.Referenceable):
        def remote_gotPage(self, page: bytes) -> None:
            digest.update(page)
            state["size"] += len(page)

        def remote_endedPaging(self) -> None:
            print(state["size"], digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}",
                  f"cpu={time.process_time() - c0:.6f}")
            reactor.stop()

    factory = pb.PBClientFactory()
    reactor.connectTCP("127.0.0.1", port, factory)
    factory.getRootObject().addCallback(lambda root: root.callRemote("getFile", Collector()))
    reactor.run()


async def aiohttp_server(path: str, port: int) -> None:
    """aiohttp serving the file with FileResponse (sendfile)."""
    from aiohttp import web

    async def handler(request):  # type: ignore[no-untyped-def]
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/data.bin", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    await asyncio.Future()


async def http_receive(port: int, out: str) -> None:
    """An HTTP download with aiohttp's client to a file, hashing beside receiving."""
    import aiohttp

    digest = hashlib.sha256()
    size = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/data.bin") as response:
            with open(out, "wb") as f:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    digest.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}",
          f"cpu={time.process_time() - c0:.6f}")


def raw_tcp_server(path: str, port: int) -> None:
    """Plain TCP: sendfile() the whole file to each client."""
    import socket

    server = socket.create_server(("127.0.0.1", port))
    print(f"ready {server.getsockname()[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        with conn, open(path, "rb") as f:
            conn.sendfile(f)


def raw_tcp_receive(port: int) -> None:
    """Plain TCP receiver: recv_into a buffer, hashing as it goes."""
    import socket

    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(256 * 1024)
    view = memoryview(buffer)
    t0, c0 = time.perf_counter(), time.process_time()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while n := sock.recv_into(buffer):
            digest.update(view[:n])
            size += n
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}",
          f"cpu={time.process_time() - c0:.6f}")


async def pagebridge_small_files(url: str, count: int) -> None:
    """Open-to-end time of a small file, ``count`` times on one connection: prints the latencies."""
    from bridge.aio.client import connect

    latencies = []
    async with connect(url) as session:
        for _ in range(count):
            t0 = time.perf_counter()
            await session.get_all_pages("small.bin")
            latencies.append(time.perf_counter() - t0)
    print(" ".join(f"{x:.6f}" for x in latencies))


def twisted_pb_small_files(port: int, count: int) -> None:
    """The same with Twisted PB's getAllPages-style paging of the small file."""
    from twisted.internet import defer, reactor
    from twisted.spread import pb

    latencies: list[float] = []

    class Collector(pb.Referenceable):
        def __init__(self, done: defer.Deferred) -> None:
            self.done = done

        def remote_gotPage(self, page: bytes) -> None:
            pass

        def remote_endedPaging(self) -> None:
            self.done.callback(None)

    @defer.inlineCallbacks
    def run(root):  # type: ignore[no-untyped-def]
        for _ in range(count):
            t0 = time.perf_counter()
            done: defer.Deferred = defer.Deferred()
            yield root.callRemote("getFile", Collector(done))
            yield done
            latencies.append(time.perf_counter() - t0)
        print(" ".join(f"{x:.6f}" for x in latencies))
        reactor.stop()

    factory = pb.PBClientFactory()
    reactor.connectTCP("127.0.0.1", port, factory)
    factory.getRootObject().addCallback(run)
    reactor.run()


def run_peer(argv: list[str]) -> None:
    command, *args = argv
    if command == "twisted-pb-server":
        twisted_pb_server(args[0], int(args[1]))
    elif command == "twisted-pb-receive":
        twisted_pb_receive(int(args[0]))
    elif command == "aiohttp-server":
        asyncio.run(aiohttp_server(args[0], int(args[1])))
    elif command == "http-receive":
        asyncio.run(http_receive(int(args[0]), args[1]))
    elif command == "raw-tcp-server":
        raw_tcp_server(args[0], int(args[1]))
    elif command == "raw-tcp-receive":
        raw_tcp_receive(int(args[0]))
    elif command == "pagebridge-small":
        asyncio.run(pagebridge_small_files(args[0], int(args[1])))
    elif command == "twisted-pb-small":
        twisted_pb_small_files(int(args[0]), int(args[1]))
    else:
        main()


if __name__ == "__main__":
    run_peer(sys.argv[1:])
