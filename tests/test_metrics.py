"""/metrics, /healthz and JSON logs, on real servers."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bridge import connect
from bridge.errors import StreamError
from bridge.metrics import metrics_allowed


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(text: str, series: str) -> float:
    """The value of one series in Prometheus text (0 when absent)."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def scrape(server: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
    return await asyncio.to_thread(get, server.http_url + "metrics", headers)


async def test_metrics_count_a_transfer(root: Path, start_server: Any) -> None:
    """Pages, bytes, streams and connections of one download, and the errors by code."""
    (root / "a.bin").write_bytes(b"x" * 300_000)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        await session.get_all_pages("a.bin", page_size=100_000)
        with pytest.raises(StreamError):
            await session.get_all_pages("missing.bin")
        await session.list("")
        status, text = await scrape(server)
    assert status == 200
    assert value(text, 'pagebridge_pages_sent_total{kind="file"}') == 3
    assert value(text, 'pagebridge_bytes_sent_total{kind="file"}') == 300_000
    assert value(text, 'pagebridge_streams_opened_total{kind="file"}') == 1
    assert value(text, 'pagebridge_streams{kind="file"}') == 0
    assert value(text, 'pagebridge_errors_total{code="not_found"}') == 1
    assert value(text, "pagebridge_listings_total") == 1
    assert value(text, "pagebridge_connections") == 1  # the scrape ran while connected
    await asyncio.sleep(0.1)
    _, text = await scrape(server)
    assert value(text, "pagebridge_connections") == 0
    assert value(text, "pagebridge_connections_accepted_total") == 1


async def test_credit_waits_and_followers(root: Path, start_server: Any) -> None:
    """A follower is counted while it follows; a stream held without acks counts its wait for credit."""
    from bridge.aio.client import Page

    (root / "log").write_bytes(b"line\n" * 10)
    (root / "big").write_bytes(b"y" * 64_000)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("log", follow=True) as stream:
            page = await stream.__anext__()
            assert isinstance(page, Page)
            _, text = await scrape(server)
            assert value(text, "pagebridge_followers") == 1
            assert value(text, 'pagebridge_streams{kind="follow"}') == 1
        async with session.pages("big", window=1, page_size=1000) as held:
            await held.__anext__()
            await asyncio.sleep(0.3)  # the server waits for our ack all this time
            await held.__anext__()
        await asyncio.sleep(0.1)
        _, text = await scrape(server)
    assert value(text, "pagebridge_followers") == 0
    assert value(text, 'pagebridge_credit_wait_seconds_total{kind="file"}') >= 0.25


async def test_who_may_read_metrics(root: Path, start_server: Any) -> None:
    """Loopback yes; loopback through a proxy no; the Bearer token yes; /healthz for all."""
    server = await start_server(root, token="s3cret")
    assert (await scrape(server))[0] == 200
    assert (await scrape(server, {"X-Forwarded-For": "203.0.113.9"}))[0] == 403
    assert (await scrape(server, {"X-Forwarded-For": "203.0.113.9",
                                  "Authorization": "Bearer s3cret"}))[0] == 200
    assert (await scrape(server, {"Forwarded": "for=203.0.113.9", "Authorization": "Bearer nope"}))[0] == 403
    status, body = await asyncio.to_thread(get, server.http_url + "healthz", {"X-Forwarded-For": "x"})
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_metrics_allowed_for_remote_peers() -> None:
    """A peer off loopback needs the token; a server without token serves metrics to loopback only."""
    assert not metrics_allowed(("192.0.2.1", 5000), {}, None)
    assert not metrics_allowed(("192.0.2.1", 5000), {"Authorization": "Bearer t"}, None)
    assert metrics_allowed(("192.0.2.1", 5000), {"Authorization": "Bearer t"}, "t")
    assert metrics_allowed(("::1", 5000, 0, 0), {}, None)
    assert not metrics_allowed(None, {}, None)


def test_json_logs_carry_the_connection_id(root: Path, tmp_path: Path) -> None:
    """serve --log-json: one JSON object per line, carrying the id of the connection it is about."""
    from tests.conftest import REPO

    (root / "a.txt").write_bytes(b"a")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "serve", str(root), "--port", "0", "--log-json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = proc.stdout.readline()
            assert line, "server exited"
            if "websocket:" in line:
                url = line.split()[-1]

        async def client() -> None:
            async with connect(url) as session:
                with pytest.raises(StreamError):
                    await session.get_all_pages("../escape")
        asyncio.run(client())
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    connected = [r for r in records if "collector connected" in r["msg"]]
    assert len(connected) == 1
    assert re.fullmatch(r"[0-9a-f]{8}", connected[0]["conn"])
    assert {"ts", "level", "logger", "msg", "conn", "worker"} <= set(connected[0])
