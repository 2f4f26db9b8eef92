"""The protocol's rules as docs/protocol.md states them, checked on a real server with a raw
WebSocket collector (no pagebridge client in the way)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.client import connect as ws_connect

from bridge.core import SUBPROTOCOL
from bridge.core import messages as m
from bridge.sources.catalog import MAX_LISTING


class Raw:
    """A hand-driven collector: send dicts, receive decoded messages."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, **body: Any) -> None:
        await self.ws.send(msgpack.packb(body, use_bin_type=True))

    async def recv(self, timeout: float = 5) -> m.Message:
        return m.decode(await asyncio.wait_for(self.ws.recv(), timeout))


async def raw(server: Any) -> tuple[Any, Raw]:
    ws = await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    peer = Raw(ws)
    await peer.send(t="hello")
    assert isinstance(await peer.recv(), m.Welcome)
    return ws, peer


async def test_end_arrives_without_credit(root: Path, start_server) -> None:
    """A collector that never acks still gets 'end' once it holds every byte: end takes no credit."""
    (root / "f").write_bytes(b"a" * 2000)
    server = await start_server(root)
    ws, peer = await raw(server)
    async with ws:
        await peer.send(t="open", stream=1, path="f", window=2, page_size=1000)
        got = [await peer.recv() for _ in range(4)]
    assert [msg.TYPE for msg in got] == ["opened", "page", "page", "end"]
    assert got[3] == m.End(1, 2, 2000, got[3].digest)


async def test_listing_paths_are_normalised(root: Path, start_server) -> None:
    """'./dirA', 'dirA/.', '.' and '' come back as 'dirA', 'dirA', '' and ''."""
    (root / "dirA").mkdir()
    (root / "dirA" / "x").write_bytes(b"x")
    server = await start_server(root)
    ws, peer = await raw(server)
    async with ws:
        answers = {}
        for rid, path in enumerate(["./dirA", "dirA/.", ".", ""], start=1):
            await peer.send(t="list", id=rid, path=path)
            listing = await peer.recv()
            assert isinstance(listing, m.Listing) and listing.id == rid
            answers[path] = (listing.path, listing.truncated)
    assert answers == {"./dirA": ("dirA", False), "dirA/.": ("dirA", False), ".": ("", False),
                       "": ("", False)}


async def test_negative_list_id_is_refused(root: Path, start_server) -> None:
    """list with id -1 gets bad_request for that id; the connection serves on."""
    server = await start_server(root)
    ws, peer = await raw(server)
    async with ws:
        await peer.send(t="list", id=-1, path="")
        error = await peer.recv()
        await peer.send(t="list", id=2, path="")
        listing = await peer.recv()
    assert isinstance(error, m.Error) and (error.code, error.id) == ("bad_request", -1)
    assert isinstance(listing, m.Listing) and listing.id == 2


async def test_no_message_reveals_a_server_path(root: Path, start_server) -> None:
    """Opening the root or a folder answers not_a_file without the served folder's real path."""
    (root / "sub").mkdir()
    server = await start_server(root)
    ws, peer = await raw(server)
    async with ws:
        errors = []
        for sid, path in enumerate(["", ".", "sub", "sub/"], start=1):
            await peer.send(t="open", stream=sid, path=path)
            errors.append(await peer.recv())
    for error in errors:
        assert isinstance(error, m.Error) and error.code == "not_a_file", error
        assert str(root) not in error.message and str(root.parent) not in error.message
    assert errors[0].message == "/ is a directory, not a regular file"
    assert errors[2].message == "sub is a directory, not a regular file"


async def test_listing_over_the_cap_is_truncated(root: Path, start_server) -> None:
    """A folder with more than MAX_LISTING entries is listed up to the cap, with truncated: true."""
    big = root / "big"
    big.mkdir()
    for i in range(MAX_LISTING + 5):
        (big / f"{i:06d}").touch()
    server = await start_server(root)
    ws, peer = await raw(server)
    async with ws:
        await peer.send(t="list", id=1, path="big")
        listing = await peer.recv(timeout=30)
    assert isinstance(listing, m.Listing)
    assert (len(listing.entries), listing.truncated) == (MAX_LISTING, True)
    assert [e["name"] for e in listing.entries] == [f"{i:06d}" for i in range(MAX_LISTING)]
