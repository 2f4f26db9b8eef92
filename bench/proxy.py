"""A delay and bandwidth proxy for loopback link experiments.

Every chunk read from either side is written to the other side half the
round trip later, in order, and no faster than ``--rate`` megabits per
second in each direction: a chunk leaves the "wire" only when the chunks
before it have, at the link's rate (a serialisation delay), then travels
for half the round trip.  What is in flight is bounded like a router's
queue: past ``--queue`` bytes of one direction waiting for the wire, the
proxy stops reading that side, so TCP's flow control pushes back on the
sender as a real bottleneck would.

    python -m bench.proxy LISTEN_PORT TARGET_PORT RTT_MS [--rate MBIT] [--queue BYTES]
"""

from __future__ import annotations

import argparse
import asyncio

#: Chunks read at once: small enough that pacing at 10 Mbit/s stays smooth
#: (64 KiB is 52 ms of wire time there), large enough to keep up at loopback speed.
CHUNK = 64 * 1024


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
               rate: float | None, queue: int) -> None:
    """Copy reader to writer with ``delay`` seconds of latency and ``rate`` bytes/s of bandwidth."""
    loop = asyncio.get_running_loop()
    wire_free = loop.time()  # when the wire has sent everything queued so far
    waiting = 0  # bytes read but not yet on the wire
    room = asyncio.Event()
    room.set()

    def sent(size: int) -> None:
        nonlocal waiting
        waiting -= size
        if waiting <= queue:
            room.set()

    try:
        while chunk := await reader.read(CHUNK if rate else 256 * 1024):
            now = loop.time()
            if rate:
                wire_free = max(wire_free, now) + len(chunk) / rate
                departs = wire_free
            else:
                departs = now
            waiting += len(chunk)
            loop.call_at(departs, sent, len(chunk))
            loop.call_at(departs + delay, writer.write, chunk)
            if waiting > queue:
                room.clear()
                await room.wait()
    finally:
        await asyncio.sleep(max(0.0, wire_free - loop.time()) + delay)
        writer.close()


async def serve(listen: int, target: int, rtt_ms: float, rate_mbit: float | None, queue: int) -> None:
    delay = rtt_ms / 2000
    rate = rate_mbit * 1e6 / 8 if rate_mbit else None

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(client_reader, upstream_writer, delay, rate, queue),
                             pump(upstream_reader, client_writer, delay, rate, queue), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("listen", type=int)
    parser.add_argument("target", type=int)
    parser.add_argument("rtt_ms", type=float)
    parser.add_argument("--rate", type=float, help="bandwidth in Mbit/s each way (default: unlimited)")
    parser.add_argument("--queue", type=int, default=1 << 20,
                        help="bytes waiting for the wire before the proxy stops reading (default 1 MiB)")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.target, args.rtt_ms, args.rate, args.queue))


if __name__ == "__main__":
    main()
