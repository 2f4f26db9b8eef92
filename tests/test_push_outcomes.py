"""Push sources say how their command ended: end for status 0, io_error for anything else; runs restart."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from bridge.aio.client import PageStream, connect
from bridge.core import messages as m
from bridge.errors import ErrorCode, StreamError
from bridge.sources.push import mount_command


async def drain(stream: PageStream) -> tuple[bytes, StreamError | None]:
    """Everything the stream delivers, then how it ended (None for a clean end)."""
    data = bytearray()
    try:
        async for item in stream:
            if isinstance(item, m.Page):
                data += item.data
    except StreamError as exc:
        return bytes(data), exc
    return bytes(data), None


def sh(script: str) -> str:
    return f"sh -c {shlex.quote(script)}"


@pytest.mark.parametrize(("command", "data", "code", "message"), [
    (sh("printf 'a\\nb\\n'"), b"a\nb\n", None, None),
    (sh("printf partial; exit 3"), b"partial", ErrorCode.IO_ERROR, "command 'sh' exited with status 3"),
    (sh("printf partial; kill -KILL $$"), b"partial", ErrorCode.IO_ERROR,
     "command 'sh' was killed by signal SIGKILL"),
    (sh("printf partial; kill -TERM $$"), b"partial", ErrorCode.IO_ERROR,
     "command 'sh' was killed by signal SIGTERM"),
    ("/nonexistent/bin/pagebridge-no-such-command --flag", b"", ErrorCode.IO_ERROR,
     "command 'pagebridge-no-such-command' could not start: No such file or directory"),
], ids=["exit 0", "exit 3", "SIGKILL", "SIGTERM", "not found"])
async def test_command_outcome_ends_its_stream(root: Path, start_server, command: str, data: bytes,
                                               code: ErrorCode | None, message: str | None) -> None:
    """What the command wrote arrives first; then `end` for status 0, else `io_error` naming status or signal."""
    server = await start_server(root)
    mount_command(server, "cmd", command)
    async with connect(server.ws_url) as session:
        async with session.pages("cmd") as stream:
            got, error = await drain(stream)
        assert got == data
        if code is None:
            assert error is None
        else:
            assert error is not None and (error.code, error.message) == (code, message)
        assert await session.list() is not None  # the connection lives on


async def test_next_opener_restarts_the_command(root: Path, start_server, tmp_path: Path) -> None:
    """Each opener after a run has ended starts a new run; after a failed run, no sooner than restart_delay."""
    runs = tmp_path / "runs"
    server = await start_server(root)
    source = mount_command(server, "ok", sh(f"echo run >> {runs}; echo hello"))
    failing = mount_command(server, "bad", sh(f"echo run >> {runs}.bad; exit 7"), restart_delay=1.0)
    async with connect(server.ws_url) as session:
        for _ in range(3):
            assert await session.get_all_pages("ok") == b"hello\n"
        assert runs.read_text() == "run\nrun\nrun\n" and source.runs == 3
        started = time.monotonic()
        for _ in range(2):
            with pytest.raises(StreamError) as info:
                await session.get_all_pages("bad")
            assert info.value.message == "command 'sh' exited with status 7"
        assert time.monotonic() - started >= 1.0  # the second run waited out the delay
        assert (tmp_path / "runs.bad").read_text() == "run\nrun\n" and failing.runs == 2


async def test_python_command_exit_status(root: Path, start_server) -> None:
    """A Python child raising an uncaught exception (status 1) is an io_error, after its output."""
    server = await start_server(root)
    mount_command(server, "py", [sys.executable, "-c", "print('out', flush=True); raise SystemExit(1)"])
    async with connect(server.ws_url) as session:
        async with session.pages("py") as stream:
            got, error = await drain(stream)
    assert got == b"out\n"
    assert error is not None and error.message == f"command {Path(sys.executable).name!r} exited with status 1"
