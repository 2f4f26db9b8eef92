"""Budgets of the server shell, tried as an attacker would, against a real `pagebridge serve`
process: each test asserts the bound (RSS growth, descriptors back to baseline) and that a
legitimate client is served meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from bridge.aio.client import connect
from bridge.aio.server import PageServer
from bridge.core import SUBPROTOCOL
from bridge.core import messages as m
from bridge.errors import ErrorCode

MIB = 1 << 20


def pack(**body: Any) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def fds(pid: int) -> int:
    return psutil.Process(pid).num_fds()


async def healthy_transfer(url: str, data: bytes) -> float:
    """Seconds for a well-behaved collector to fetch `data` (as "ok") verified."""
    started = time.monotonic()
    async with connect(url) as session:
        got = await asyncio.wait_for(session.get_all_pages("ok"), 30)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    return time.monotonic() - started


async def silent(url: str, *, hello: bool = True) -> Any:
    """A WebSocket whose reading is paused: the kernel buffers fill, then the server's."""
    ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_queue=1)  # type: ignore[list-item]
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if hello:
        await ws.send(pack(t="hello"))
        await asyncio.sleep(0.05)
    ws.transport.pause_reading()
    return ws


@pytest.fixture
def big_root(root: Path) -> Path:
    with open(root / "big", "wb") as f:
        f.truncate(512 * MIB)  # sparse: costs no disk, reads as zeros
    (root / "ok").write_bytes(os.urandom(2 * MIB))
    return root


async def test_non_reading_clients_cost_a_bounded_amount(big_root: Path, server_process) -> None:
    """6 clients that open 64 streams of 4 MiB pages (window 256) and never read cost < 24 MiB each
    (their 8 MiB page budget, the frame copies and the write buffer; it was ~775 MiB each), a healthy
    client is served meanwhile, and each silent one is closed after the write timeout."""
    proc = server_process("--write-timeout", "3")
    url = proc.start()
    pid = proc.proc.pid
    await healthy_transfer(url, (big_root / "ok").read_bytes())
    base_rss, base_fds = rss(pid), fds(pid)
    attackers = []
    for _ in range(6):
        ws = await silent(url)
        for sid in range(1, 65):
            await ws.send(pack(t="open", stream=sid, path="big", window=256, page_size=4 * MIB))
        attackers.append(ws)
    await asyncio.sleep(1.5)
    peak = rss(pid) - base_rss
    assert await healthy_transfer(url, (big_root / "ok").read_bytes()) < 10
    assert peak < 6 * 24 * MIB, f"the server grew by {peak / MIB:.0f} MiB"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and fds(pid) > base_fds:
        await asyncio.sleep(0.25)
    assert fds(pid) <= base_fds, "silent connections were not closed"
    for ws in attackers:
        ws.transport.abort()


async def test_paused_streams_hold_no_pages(big_root: Path, server_process) -> None:
    """100 connections x 16 streams that read every page but never ack (1 000 x 16 held 4.1 GiB
    before): once the granted pages are delivered, the server holds no page for the paused streams."""
    proc = server_process()
    url = proc.start()
    pid = proc.proc.pid
    await healthy_transfer(url, (big_root / "ok").read_bytes())
    base = rss(pid)
    peers = []
    delivered = 0

    async def drain(ws: Any) -> None:
        nonlocal delivered
        async for frame in ws:
            if m.decode(frame).TYPE == "page":
                delivered += 1

    for _ in range(100):
        ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None)  # type: ignore[list-item]
        await ws.send(pack(t="hello"))
        for sid in range(1, 17):
            await ws.send(pack(t="open", stream=sid, path="big", window=1, page_size=MIB))
        peers.append((ws, asyncio.create_task(drain(ws))))
    deadline = time.monotonic() + 60
    while delivered < 1600 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert delivered == 1600  # window 1: exactly one page per stream, then every stream waits
    await asyncio.sleep(1)
    grown = rss(pid) - base
    # One page each would be 1 600 MiB; what remains is per-stream bookkeeping (tasks, hashes).
    assert grown < 128 * MIB, f"grew by {grown / MIB:.0f} MiB for 1 600 paused streams"
    assert await healthy_transfer(url, (big_root / "ok").read_bytes()) < 10
    assert delivered == 1600
    for ws, task in peers:
        task.cancel()
        ws.transport.abort()


async def test_ping_flood_without_hello_is_evicted(root: Path, server_process) -> None:
    """A client that never says hello or reads, only pings, is dropped at the handshake timeout."""
    (root / "ok").write_bytes(b"fine\n" * 1000)
    proc = server_process("--handshake-timeout", "2")
    url = proc.start()
    pid = proc.proc.pid
    base = rss(pid)
    ws = await silent(url, hello=False)
    started = time.monotonic()
    while time.monotonic() - started < 6 and not ws.transport.is_closing():
        try:
            for _ in range(200):
                await ws.ping(b"x" * 100)
        except Exception:
            break
        await asyncio.sleep(0.01)
        if ws.transport.get_write_buffer_size() > 0 and time.monotonic() - started > 5:
            break
    grown = rss(pid) - base
    assert grown < 64 * MIB, f"grew by {grown / MIB:.0f} MiB"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(psutil.Process(pid).net_connections("tcp")) > 1:
        await asyncio.sleep(0.2)
    assert len(psutil.Process(pid).net_connections("tcp")) == 1  # only the listener is left
    ws.transport.abort()


async def test_list_flood_is_refused_beyond_the_budget(root: Path, start_server) -> None:
    """1 000 list requests of a 20 000-entry folder: 4 run, the rest get busy at once; a healthy
    client still lists and transfers, and nothing keeps running after the attacker leaves."""
    folder = root / "many"
    folder.mkdir()
    for i in range(20_000):
        (folder / f"{i:05d}").touch()
    (root / "ok").write_bytes(b"ok\n" * 100_000)
    server = await start_server(root)
    ws = await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    await ws.send(pack(t="hello"))
    assert m.decode(await ws.recv()).TYPE == "welcome"
    for rid in range(1000):
        await ws.send(pack(t="list", id=rid, path="many"))
    answers: dict[str, int] = {}
    for _ in range(1000):
        msg = m.decode(await asyncio.wait_for(ws.recv(), 30))
        key = "listing" if isinstance(msg, m.Listing) else msg.code  # type: ignore[attr-defined]
        answers[key] = answers.get(key, 0) + 1
    assert answers.get("busy", 0) >= 900 and answers.get("listing", 0) >= 4
    assert sum(answers.values()) == 1000
    async with connect(server.ws_url) as session:
        entries = await asyncio.wait_for(session.list(""), 10)
        assert [e.name for e in entries] == ["many", "ok"]
        assert await session.get_all_pages("ok") == b"ok\n" * 100_000
    await ws.close()
    await asyncio.sleep(0.2)
    assert server.listing_slots.used == 0 and not server.connections


async def handshake_status(port: int, *headers: str) -> bytes:
    """The status line a hand-written WebSocket handshake gets (Host and Origin exactly as given)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["GET /ws HTTP/1.1", *headers, "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: pagebridge.v1"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return status.split(b" ")[1]


async def test_dns_rebinding_host_is_refused(root: Path, start_server) -> None:
    """A browser's Origin matching a Host we do not answer to (a rebinding page) gets 403;
    localhost, loopback addresses and an --allowed-host name are accepted."""
    (root / "f").write_bytes(b"secret")
    server = await start_server(root, allowed_hosts=["logs.example"])
    port = server.port

    async def attempt(host: str, origin: str) -> bytes:
        return await handshake_status(port, f"Host: {host}", f"Origin: {origin}")

    assert await attempt(f"attacker.example:{port}", f"http://attacker.example:{port}") == b"403"
    assert await attempt(f"localhost:{port}", f"http://localhost:{port}") == b"101"
    assert await attempt(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == b"101"
    assert await attempt(f"[::1]:{port}", f"http://[::1]:{port}") == b"101"
    assert await attempt(f"logs.example:{port}", f"http://logs.example:{port}") == b"101"
    assert await attempt(f"localhost:{port}", "http://attacker.example") == b"403"
    # no Origin: not a browser, so no rebinding; the Host is not checked
    assert await handshake_status(port, "Host: anything.example") == b"101"


async def test_duplicate_host_or_origin_is_a_bad_request(root: Path, start_server) -> None:
    """Two Host or two Origin headers get 400 (not a 500 with a traceback)."""
    server = await start_server(root)
    assert await handshake_status(server.port, "Host: 127.0.0.1", "Host: evil.example") == b"400"
    assert await handshake_status(server.port, "Host: 127.0.0.1", "Origin: http://a",
                                  "Origin: http://b") == b"400"


async def test_empty_token_is_refused(root: Path) -> None:
    """An empty or blank token never means 'no token': the server refuses to start."""
    for token in ("", "   "):
        with pytest.raises(ValueError, match="token is empty"):
            PageServer(root, host="0.0.0.0", token=token)


async def test_repeated_wrong_tokens_are_rate_limited(root: Path, start_server) -> None:
    """After 10 failed hellos from one address, the next handshakes get 429 with Retry-After."""
    server = await start_server(root, token="right")
    statuses = []
    for _ in range(14):
        try:
            async with connect(server.ws_url, token="wrong", open_timeout=0.5):
                pass
        except Exception as exc:
            statuses.append(getattr(exc, "code", None))
    assert statuses[:10] == [ErrorCode.UNAUTHORIZED] * 10
    assert statuses[-1] is ErrorCode.BUSY
    try:
        await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    except InvalidStatus as exc:
        assert exc.response.status_code == 429 and int(exc.response.headers["Retry-After"]) >= 1
    else:  # pragma: no cover
        pytest.fail("the 11th attempt was not refused")


async def test_tokenless_sockets_cannot_crowd_out_token_holders(root: Path, start_server) -> None:
    """Sockets that never say hello fill only their share; handshakes beyond it wait their
    turn in arrival order (not refused), and a token holder queued behind still connects."""
    (root / "ok").write_bytes(b"ok")
    server = await start_server(root, token="t", max_connections=20, max_unauthenticated=4,
                                open_timeout=30)
    idle = [await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
            for _ in range(4)]
    fifth = asyncio.ensure_future(ws_connect(server.ws_url,  # type: ignore[call-overload]
                                             subprotocols=[SUBPROTOCOL], open_timeout=10))
    await asyncio.sleep(0.1)

    async def holder() -> bytes:
        async with connect(server.ws_url, token="t") as session:
            return bytes(await session.get_all_pages("ok"))
    token_holder = asyncio.ensure_future(holder())
    await asyncio.sleep(0.3)
    assert not fifth.done() and not token_holder.done()
    assert server.unauthenticated == 4 and len(server.connections) == 4
    await idle[0].close()
    first_in = await asyncio.wait_for(fifth, 5)  # the first to arrive gets the freed slot
    assert not token_holder.done()
    await idle[1].close()
    assert await asyncio.wait_for(token_holder, 5) == b"ok"
    for ws in [*idle[2:], first_in]:
        await ws.close()


async def test_a_handshake_waits_for_a_slot_at_most_preauth_wait(root: Path, start_server) -> None:
    """With every unauthenticated slot held, a handshake is answered 503 + Retry-After once it
    has waited preauth_wait (it does not hang until the handshake timeout)."""
    server = await start_server(root, max_unauthenticated=2, preauth_wait=0.3, open_timeout=30)
    idle = [await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
            for _ in range(2)]
    started = time.monotonic()
    with pytest.raises(InvalidStatus) as info:
        await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                         open_timeout=5)
    waited = time.monotonic() - started
    assert info.value.response.status_code == 503 and info.value.response.headers["Retry-After"] == "1"
    assert 0.3 <= waited < 4
    for ws in idle:
        await ws.close()


async def test_a_burst_of_handshakes_waits_instead_of_being_refused(root: Path, start_server) -> None:
    """120 collectors connecting at once through a share of 4 unauthenticated slots all get in
    (no 503), each saying hello; the slots are all given back."""
    (root / "ok").write_bytes(b"ok")
    server = await start_server(root, max_unauthenticated=4)

    async def one() -> int:
        ws = await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
        await ws.send(pack(t="hello"))
        welcome = m.decode(await ws.recv())
        await ws.close()
        assert isinstance(welcome, m.Welcome)
        return welcome.max_streams
    assert await asyncio.wait_for(asyncio.gather(*(one() for _ in range(120))), 60) == [64] * 120
    assert server.unauthenticated == 0


async def test_open_files_budget_refuses_with_busy(root: Path, start_server) -> None:
    """Beyond max_open_sources, an open is refused with busy; closing one frees its slot."""
    for i in range(4):
        (root / f"f{i}").write_bytes(b"x" * 100_000)
    server = await start_server(root, max_open_sources=16)
    server.source_slots.limit = 3  # keep the test small; the constructor checks the real minimum
    async with connect(server.ws_url) as session:
        streams = [session.pages(f"f{i}", window=1, page_size=10) for i in range(3)]
        for stream in streams:
            await stream.wait_opened()
        fourth = session.pages("f3", window=1)
        with pytest.raises(Exception) as info:
            await fourth.wait_opened()
        assert getattr(info.value, "code", None) is ErrorCode.BUSY
        await streams[0].aclose()
        await asyncio.sleep(0.1)
        assert await session.get_all_pages("f3") == b"x" * 100_000


async def test_no_task_outlives_its_connection(root: Path, start_server) -> None:
    """A connection killed with streams paging, paused and listing leaves no task behind."""
    with open(root / "big", "wb") as f:
        f.truncate(64 * MIB)
    folder = root / "many"
    folder.mkdir()
    for i in range(5000):
        (folder / f"{i:05d}").touch()
    server = await start_server(root)
    before = {t for t in asyncio.all_tasks() if not t.done()}
    ws = await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL], max_size=None)  # type: ignore[list-item]
    await ws.send(pack(t="hello"))
    for sid in range(1, 9):
        await ws.send(pack(t="open", stream=sid, path="big", window=2, page_size=MIB))
    for rid in range(4):
        await ws.send(pack(t="list", id=rid, path="many"))
    await asyncio.sleep(0.3)
    (connection,) = server.connections
    assert connection.pump.task_count >= 9  # streams, listings and the write watchdog are owned
    ws.transport.abort()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.connections:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert not server.connections
    assert connection.pump.task_count == 0
    left = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert not [t.get_name() for t in left if t is not asyncio.current_task()]
    assert server.listing_slots.used == 0 and server.page_budget.used == 0


async def test_idle_followers_hold_no_page_budget(root: Path, start_server) -> None:
    """16 followers waiting for their writers take no page budget: with a server budget of one
    page, a plain transfer still completes, and a follower still gets what is appended."""
    for i in range(16):
        (root / f"log{i}").write_bytes(b"start\n")
    (root / "ok").write_bytes(os.urandom(MIB))
    server = await start_server(root, server_page_budget=256 * 1024)
    async with connect(server.ws_url) as session:
        followers = [session.pages(f"log{i}", follow=True, page_size=256 * 1024) for i in range(16)]
        for stream in followers:
            page = await asyncio.wait_for(stream.__anext__(), 10)
            assert page.data == b"start\n"
        await asyncio.sleep(0.5)  # every follower is now waiting for its writer
        assert server.page_budget.used == 0
        got = await asyncio.wait_for(session.get_all_pages("ok", page_size=256 * 1024), 20)
        assert got == (root / "ok").read_bytes()
        with open(root / "log3", "ab") as f:
            f.write(b"more\n")
        page = await asyncio.wait_for(followers[3].__anext__(), 10)
        assert page.data == b"more\n"
        for stream in followers:
            await stream.aclose()
