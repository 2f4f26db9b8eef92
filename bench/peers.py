"""Reference systems measured beside pagebridge, each run as its own process.

``python -m bench.peers raw-ws-server FILE PORT``: a raw websockets sender
(binary frames of 256 KiB, no acks, no msgpack): the ceiling of this stack.
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


async def raw_ws_server(path: str, port: int) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
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
    t0 = time.perf_counter()
    async with connect(url, compression=None, max_size=None) as ws:
        async for message in ws:
            digest.update(message)
            size += len(message)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}")


async def pagebridge_receive(url: str, path: str) -> None:
    from bridge.client import Page, connect

    digest = hashlib.sha256()
    size = 0
    t0 = time.perf_counter()
    async with connect(url) as session:
        async with session.pages(path) as stream:
            async for page in stream:
                if isinstance(page, Page):
                    digest.update(page.data)
                    size += len(page.data)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}")


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "raw-ws-server":
        asyncio.run(raw_ws_server(args[0], int(args[1])))
    elif command == "raw-ws-receive":
        asyncio.run(raw_ws_receive(args[0]))
    elif command == "pagebridge-receive":
        asyncio.run(pagebridge_receive(args[0], args[1]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
