"""Shared connections (bridge.Pool, connect(shared=True)) against a real server: many
sessions' streams over few connections, exact bytes, limits, failures kept to their own
connection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

import bridge
from bridge.aio.client import connect
from bridge.aio.pool import Pool
from bridge.core import messages as m
from bridge.errors import ConnectionClosedError


def files(root: Path, count: int) -> dict[str, bytes]:
    made = {}
    for i in range(count):
        data = os.urandom(1000 + i * 7919)
        (root / f"f{i}").write_bytes(data)
        made[f"f{i}"] = data
    return made


class Peak:
    """Samples the server's connections and streams on every loop turn."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.connections = 0
        self.streams = 0
        self.task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            conns = list(self.server.connections)
            self.connections = max(self.connections, len(conns))
            self.streams = max([self.streams, *(len(c.handles) for c in conns)])
            await asyncio.sleep(0)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_many_sessions_share_few_connections_with_exact_bytes(root: Path, start_server) -> None:
    """60 sessions x 2 streams over a pool of 3 connections of at most 4 streams: every byte right."""
    data = files(root, 30)
    server = await start_server(root, max_streams=4)
    peak = Peak(server)
    async with Pool(server.ws_url, max_connections=3) as pool:
        async def collect(i: int) -> list[bytes]:
            async with pool.connect() as session:
                a = session.get_all_pages(f"f{i % 30}", page_size=4096)
                b = session.get_all_pages(f"f{(i * 7) % 30}", window=2, page_size=1024)
                return [bytes(x) for x in await asyncio.gather(a, b)]
        results = await asyncio.gather(*(collect(i) for i in range(60)))
        assert pool.connections <= 3
    await peak.stop()
    for i, (a, b) in enumerate(results):
        assert a == data[f"f{i % 30}"] and b == data[f"f{(i * 7) % 30}"]
    assert peak.connections == 3  # the pool grew to its bound, and no further
    assert 1 <= peak.streams <= 4


async def test_streams_wait_for_room_when_the_pool_is_full(root: Path, start_server) -> None:
    """With 1 connection of 2 streams, a third stream opens only once one of the two ends."""
    data = files(root, 3)
    server = await start_server(root)
    async with Pool(server.ws_url, max_connections=1, streams_per_connection=2) as pool:
        session = await pool.connect()
        first = session.pages("f0", window=1, page_size=100)
        second = session.pages("f1", window=1, page_size=100)
        await first.wait_opened()
        await second.wait_opened()
        third = asyncio.ensure_future(session.get_all_pages("f2"))
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not third.done() and pool.streams == 2 and len(server.connections) == 1
        await first.aclose()
        assert bytes(await asyncio.wait_for(third, 10)) == data["f2"]
        got = bytearray()
        async for page in second:
            assert isinstance(page, m.Page)
            got += page.data
        assert bytes(got) == data["f1"]
        await session.close()


async def test_transfers_are_limited_per_connection_and_followers_are_not(root: Path, start_server) -> None:
    """One connection taking 2 transfers: a third transfer waits for one to end, while
    followers (which mostly wait for the file to grow) still open beside them; a waiting
    follower is not held up by waiting transfers ahead of it."""
    data = files(root, 4)
    server = await start_server(root)
    async with Pool(server.ws_url, max_connections=1, streams_per_connection=4,
                    transfers_per_connection=2) as pool:
        session = await pool.connect()
        first = session.pages("f0", window=1, page_size=100)
        second = session.pages("f1", window=1, page_size=100)
        await first.wait_opened()
        await second.wait_opened()
        third = asyncio.ensure_future(session.get_all_pages("f2"))
        fourth = asyncio.ensure_future(session.get_all_pages("f3"))
        follower = session.pages("f0", window=1, page_size=100, follow=True)
        await asyncio.wait_for(follower.wait_opened(), 10)  # beside two transfers, with two waiting
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not third.done() and not fourth.done()
        assert pool.streams == 3 and len(server.connections) == 1
        second_follower = session.pages("f1", window=1, page_size=100, follow=True)
        await asyncio.wait_for(second_follower.wait_opened(), 10)  # the fourth and last slot
        assert pool.streams == 4
        await first.aclose()  # frees a transfer's slot and a stream's: the third goes, first come
        assert pool._room(True) is None  # (held for the third until it runs: no stream overtakes it)
        assert bytes(await asyncio.wait_for(third, 10)) == data["f2"]
        assert not fourth.done()
        await second.aclose()
        assert bytes(await asyncio.wait_for(fourth, 10)) == data["f3"]
        await follower.aclose()
        await second_follower.aclose()
        await session.close()
        assert pool._held == {} and all(not t for t in pool._transfers.values())


async def test_the_default_pool_runs_16_transfers_per_connection(root: Path, start_server) -> None:
    """40 concurrent downloads over a default pool limited to 2 connections: at most 16 run
    on each at once (so 32 in all), every byte right."""
    data = files(root, 40)
    server = await start_server(root)
    peak = Peak(server)
    async with Pool(server.ws_url, max_connections=2) as pool:
        assert pool.transfers_per_connection == bridge.aio.pool.DEFAULT_TRANSFERS_PER_CONNECTION == 16
        session = await pool.connect()
        results = await asyncio.gather(*(session.get_all_pages(f"f{i}", window=1, page_size=4096)
                                         for i in range(40)))
    await peak.stop()
    assert [bytes(r) for r in results] == [data[f"f{i}"] for i in range(40)]
    assert peak.connections == 2 and peak.streams == 16


async def test_a_lost_connection_fails_only_its_streams(root: Path, start_server) -> None:
    """Dropping one of two shared connections fails its two streams; the other two finish, and
    the next stream goes on a live one."""
    data = files(root, 5)
    server = await start_server(root)
    async with Pool(server.ws_url, max_connections=2, streams_per_connection=2) as pool:
        session = await pool.connect()
        streams = [session.pages(f"f{i}", window=1, page_size=100) for i in range(4)]
        for stream in streams:
            await stream.wait_opened()
        assert pool.connections == 2 and len(server.connections) == 2
        victim = pool._links[0]
        on_victim = {s.id for s in victim.streams.values()}
        assert len(on_victim) == 2
        victim.ws.transport.abort()  # as if the network dropped that connection
        outcomes = []
        for stream in streams:
            got = bytearray()
            try:
                async for page in stream:
                    assert isinstance(page, m.Page)
                    got += page.data
            except ConnectionClosedError:
                outcomes.append("lost")
            else:
                outcomes.append(bytes(got))
        lost = [o for o in outcomes if o == "lost"]
        kept = [o for o in outcomes if o != "lost"]
        assert len(lost) == 2 and len(kept) == 2
        assert sorted(kept) == sorted(data[f"f{i}"] for i in range(4) if outcomes[i] != "lost")
        assert bytes(await session.get_all_pages("f4")) == data["f4"]
        assert victim not in pool._links and pool.connections == 1  # the survivor had room again
        await session.close()


async def test_closing_a_session_cancels_only_its_streams(root: Path, start_server) -> None:
    """Two sessions on one shared connection: closing one cancels its stream, the other's goes on."""
    data = files(root, 2)
    server = await start_server(root)
    async with Pool(server.ws_url) as pool:
        one, two = await pool.connect(), await pool.connect()
        a = one.pages("f0", window=1, page_size=100)
        b = two.pages("f1", window=1, page_size=100)
        await a.wait_opened()
        await b.wait_opened()
        assert len(server.connections) == 1 and pool.streams == 2
        await one.close()
        got = bytearray()
        async for page in b:
            assert isinstance(page, m.Page)
            got += page.data
        assert bytes(got) == data["f1"] and a.done and pool.streams == 0
        await two.close()


async def test_connect_shared_uses_one_pool_per_loop_and_options(root: Path, start_server) -> None:
    """connect(url, shared=True) sessions share connections; other tokens get their own pool; the
    pooled session lists, searches, locates and downloads like a plain one."""
    (root / "log").write_bytes(b"a\nerror one\nb\nerror two\n")
    server = await start_server(root, token="t")
    async with connect(server.ws_url, token="t", shared=True) as s1, \
            connect(server.ws_url, token="t", shared=True) as s2:
        assert isinstance(s1, bridge.Session)
        assert [e.name for e in await s1.list("")] == ["log"]
        assert await s2.get_all_pages("log") == b"a\nerror one\nb\nerror two\n"
        search = s1.search("log", "error")
        assert [mt.line async for mt in search] == [2, 4]
        # The pooled stream mirrors the scan's state once it ended.
        assert (search.count, search.scanned, search.done) == (2, 24, True)
        assert search.opened is not None and search.end is not None and search.end.count == 2
        assert (await s2.locate("log", line=3)).offset == 12
        result = await s1.download("log", root.parent / "copy", sha256=True)
        assert (root.parent / "copy").read_bytes() == (root / "log").read_bytes() and result.sha256
        assert len(server.connections) == 1
        with pytest.raises(bridge.PagebridgeError):
            async with connect(server.ws_url, token="wrong", shared=True) as bad:
                await bad.list("")
        for _ in range(100):  # the refused connection is being closed by the server
            if len(server.connections) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(server.connections) == 1


async def test_idle_connections_close(root: Path, start_server) -> None:
    """A connection with nothing to do closes after idle_timeout; the next session opens another."""
    files(root, 1)
    server = await start_server(root)
    async with Pool(server.ws_url, idle_timeout=0.05) as pool:
        async with pool.connect() as session:
            await session.get_all_pages("f0")
        for _ in range(100):
            if not server.connections:
                break
            await asyncio.sleep(0.02)
        assert pool.connections == 0 and not server.connections
        async with pool.connect() as session:
            assert len(await session.get_all_pages("f0")) == 1000


async def test_an_unreachable_server_fails_the_waiting_streams(root: Path) -> None:
    """Every stream waiting for a connection that cannot be opened gets the connection error."""
    async with Pool("ws://127.0.0.1:9/ws", open_timeout=2) as pool:
        session = await pool.connect()
        results = await asyncio.gather(*(session.get_all_pages("x") for _ in range(5)),
                                       return_exceptions=True)
        assert not session._open  # the failed streams are not kept
    assert all(isinstance(r, ConnectionClosedError) for r in results)
