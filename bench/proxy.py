"""A delay proxy for loopback round-trip experiments.

Every chunk read from either side is written to the other side ``delay``
seconds later (half the round trip each way), in order.  It buffers what is
in flight, like a long link would hold it.

    python -m bench.proxy LISTEN_PORT TARGET_PORT RTT_MS
"""

from __future__ import annotations

import asyncio
import sys


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        while chunk := await reader.read(256 * 1024):
            loop.call_later(delay, writer.write, chunk)
    finally:
        await asyncio.sleep(delay)
        writer.close()


async def serve(listen: int, target: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(client_reader, upstream_writer, delay),
                             pump(upstream_reader, client_writer, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
