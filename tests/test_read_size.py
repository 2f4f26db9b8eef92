"""The collector's transport reads up to READ_SIZE per call on plain TCP (fewer parser passes per page)."""

from __future__ import annotations

from pathlib import Path

from bridge.aio.client import READ_SIZE, connect


async def test_plain_tcp_transport_reads_a_mebibyte_per_call(root: Path, start_server) -> None:
    """After connect, the selector transport's recv size is READ_SIZE and a transfer is still exact."""
    data = bytes(range(256)) * 8192
    (root / "f").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        assert getattr(session.ws.transport, "max_size", None) == READ_SIZE == 1 << 20
        assert await session.get_all_pages("f") == data
