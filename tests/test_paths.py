"""Each path the server must refuse, refused with its own code over a real connection."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest

from bridge.aio.client import connect
from bridge.errors import ErrorCode, StreamError


async def refused(server, path: str) -> StreamError:
    async with connect(server.ws_url) as session:
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(session.get_all_pages(path), 5)
        # The connection still serves: the root lists fine afterwards.
        await session.list()
    return info.value


@pytest.fixture
async def served(root: Path, tmp_path: Path, start_server):
    (root / "ok.txt").write_text("ok")
    (root / "sub").mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    return await start_server(root)


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt", "sub/../ok.txt", ".."])
async def test_dotdot_is_forbidden(served, path: str) -> None:
    """Any '..' component is refused as forbidden, even one that would stay inside."""
    error = await refused(served, path)
    assert error.code is ErrorCode.FORBIDDEN and "'..'" in error.message


async def test_absolute_path_is_forbidden(served, tmp_path: Path) -> None:
    """An absolute path is refused, even one that points inside the root."""
    error = await refused(served, str(tmp_path / "root" / "ok.txt"))
    assert error.code is ErrorCode.FORBIDDEN and "absolute" in error.message


async def test_backslash_is_forbidden(served) -> None:
    """Backslash spellings of traversal are refused."""
    error = await refused(served, "..\\secret.txt")
    assert error.code is ErrorCode.FORBIDDEN


async def test_percent_encoding_is_not_decoded(served) -> None:
    """'%2e%2e/secret.txt' is a literal name that does not exist, not a traversal."""
    error = await refused(served, "%2e%2e/secret.txt")
    assert error.code is ErrorCode.NOT_FOUND


async def test_symlink_escaping_root_is_forbidden(served, root: Path, tmp_path: Path) -> None:
    """A symlink whose target lies outside the root is refused, and not listed."""
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    error = await refused(served, "link.txt")
    assert error.code is ErrorCode.FORBIDDEN and "outside" in error.message
    async with connect(served.ws_url) as session:
        assert "link.txt" not in [e.name for e in await session.list()]


async def test_symlink_inside_root_is_served(served, root: Path) -> None:
    """A symlink to a file inside the root is followed."""
    (root / "alias.txt").symlink_to(root / "ok.txt")
    async with connect(served.ws_url) as session:
        assert await session.get_all_pages("alias.txt") == b"ok"


async def test_nul_byte_is_bad_request(served) -> None:
    """A NUL byte in a path is refused as bad_request."""
    error = await refused(served, "ok.txt\x00.png")
    assert error.code is ErrorCode.BAD_REQUEST


async def test_fifo_is_refused_without_hanging(served, root: Path) -> None:
    """Opening a FIFO (with no writer) is refused at once as not_a_file; the server does not hang."""
    os.mkfifo(root / "pipe")
    error = await refused(served, "pipe")
    assert error.code is ErrorCode.NOT_A_FILE and "FIFO" in error.message


async def test_device_file_is_refused(served, root: Path) -> None:
    """A character device under the root is refused as not_a_file."""
    try:
        os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    error = await refused(served, "null")
    assert error.code is ErrorCode.NOT_A_FILE and "device" in error.message


async def test_unix_socket_is_refused(served, root: Path) -> None:
    """A UNIX socket under the root is refused as not_a_file."""
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        error = await refused(served, "sock")
    finally:
        sock.close()
    assert error.code is ErrorCode.NOT_A_FILE and "socket" in error.message


async def test_directory_opened_as_file_is_refused(served) -> None:
    """Opening a folder is refused as not_a_file."""
    error = await refused(served, "sub")
    assert error.code is ErrorCode.NOT_A_FILE and "directory" in error.message


async def test_hidden_files_are_not_served(served, root: Path) -> None:
    """Dot files are neither listed nor served by default."""
    (root / ".env").write_text("KEY=1")
    error = await refused(served, ".env")
    assert error.code is ErrorCode.FORBIDDEN
    async with connect(served.ws_url) as session:
        assert ".env" not in [e.name for e in await session.list()]


async def test_very_long_name_is_bad_request(served) -> None:
    """A name longer than the file system allows is refused as bad_request."""
    error = await refused(served, "a" * 300)
    assert error.code is ErrorCode.BAD_REQUEST
    error = await refused(served, "a/" * 3000)
    assert error.code is ErrorCode.BAD_REQUEST


async def test_listing_a_file_is_not_a_directory(served) -> None:
    """list on a file is refused with not_a_directory."""
    async with connect(served.ws_url) as session:
        with pytest.raises(StreamError) as info:
            await session.list("ok.txt")
    assert info.value.code is ErrorCode.NOT_A_DIRECTORY


async def test_listing_shows_name_size_mtime_kind(served, root: Path) -> None:
    """Listing gives folders first, then files with their size and mtime."""
    os.utime(root / "ok.txt", (1_700_000_000, 1_700_000_000))
    async with connect(served.ws_url) as session:
        entries = await session.list()
    assert [(e.name, e.kind, e.size) for e in entries] == [("sub", "dir", None), ("ok.txt", "file", 2)]
    assert entries[1].mtime == 1_700_000_000
