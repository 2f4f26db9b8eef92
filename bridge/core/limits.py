"""Numbers both sides of the protocol agree on, and the per-page checksum.

Each limit carries its reasoning; docs/protocol.md states them for collectors
written elsewhere.
"""

from __future__ import annotations

import xxhash

PROTOCOL_VERSION = 1
SUBPROTOCOL = "pagebridge.v1"

#: Default page size.  Large pages amortise the per-message cost (msgpack
#: header, ack bookkeeping, an executor hop for the file read); 256 KiB is
#: where loopback throughput flattens out in bench/throughput.py while a
#: window of a few pages stays small.
DEFAULT_PAGE_SIZE = 256 * 1024
#: A page must fit in one WebSocket frame under the server's max_size.
MAX_PAGE_SIZE = 4 * 1024 * 1024
#: Page size collectors ask for when they read a whole file in bulk
#: (download, get_all_pages; the browser's getAllPages and download): a
#: quarter of the per-page work of 256 KiB pages on both sides, where
#: latency to the first byte does not matter (bench/README.md).
BULK_PAGE_SIZE = 1024 * 1024
#: Pages in flight per stream the server accepts.  256 pages of 256 KiB is
#: 64 MiB: enough for ~1 GB/s at 50 ms round trip.
MAX_WINDOW = 256
#: Streams open at once on one connection.
MAX_STREAMS = 64
#: Default and largest ``max_text`` of a scan: the bytes of each matching
#: line that travel (a ``hits`` message holds at most 2048 matches, so at
#: most 128 MiB... in theory; the server also caps a message at ~256 KiB).
DEFAULT_MAX_TEXT = 1024
MAX_TEXT = 64 * 1024
#: Overhead of a page message beyond its data, with room to spare: the map
#: header, keys, ints and the 8-byte checksum take under 100 bytes.
PAGE_OVERHEAD = 256


def page_check(data: bytes | memoryview) -> bytes:
    """The per-page checksum: XXH3-64 of the data, canonical (big-endian) bytes."""
    return xxhash.xxh3_64_digest(data)


