"""Verified means one version: a file edited in place while it is paged ends with file_changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.aio.client import connect
from bridge.errors import FileChangedError

SIZE = 1 << 20
PAGE = 65536
#: A modification time well in the past, so that any write lands on another
#: timestamp whatever the file system's granularity (see docs/security.md).
OLD = 1_600_000_000 * 10**9


def rewrite_same_size(path: Path) -> None:
    with open(path, "r+b") as f:
        f.write(os.urandom(SIZE))


def truncate_then_refill(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(os.urandom(SIZE))


def append_then_truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(PAGE)
        f.write(b"X" * 100)  # a change in a range not yet paged...
        f.seek(0, os.SEEK_END)
        f.write(b"appended")
        f.truncate(SIZE)  # ...and the size is back to what opened said


EDITS: dict[str, Callable[[Path], None]] = {
    "rewritten at the same size": rewrite_same_size,
    "truncated then refilled": truncate_then_refill,
    "appended then truncated back": append_then_truncate,
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
async def test_edit_in_place_while_paged_is_file_changed(root: Path, start_server, edit: str) -> None:
    """An in-place edit after page 0 ends the stream with file_changed; what arrived is the first version only."""
    path = root / "f"
    original = os.urandom(SIZE)
    path.write_bytes(original)
    os.utime(path, ns=(OLD, OLD))
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        got = bytearray()
        with pytest.raises(FileChangedError) as info:
            # window=1: page 1 is read only after page 0 is acknowledged, which
            # happens when the loop asks for it, after the edit.
            async with session.pages("f", window=1, page_size=PAGE) as stream:
                async for page in stream:
                    got += page.data
                    if len(got) == PAGE:
                        EDITS[edit](path)
        assert info.value.message.startswith("f was modified while it was being paged (now ")
        assert bytes(got) == original[:PAGE]
        # The connection lives on, and the new version is served whole.
        assert await session.get_all_pages("f") == path.read_bytes()


async def test_unchanged_file_ends_with_its_digest(root: Path, start_server) -> None:
    """The per-read check costs no false alarm: an untouched file read page by page ends normally."""
    path = root / "f"
    original = os.urandom(SIZE)
    path.write_bytes(original)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("f", window=1, page_size=PAGE) == original


async def test_appends_while_paged_deliver_the_announced_range(root: Path, start_server) -> None:
    """A log appended to while it is read (not followed) still ends normally with exactly the bytes
    announced in opened: growth is an append, not a new version."""
    path = root / "app.log"
    original = os.urandom(SIZE)
    path.write_bytes(original)
    os.utime(path, ns=(OLD, OLD))
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        got = bytearray()
        async with session.pages("app.log", window=1, page_size=PAGE) as stream:
            async for page in stream:
                got += page.data
                with open(path, "ab") as f:
                    f.write(b"one more line\n")
        assert bytes(got) == original
        assert stream.end is not None and stream.end.length == SIZE
        # ...but shrinking back below what was announced is a new version.
        got = bytearray()
        with pytest.raises(FileChangedError):
            async with session.pages("app.log", length=SIZE, window=1, page_size=PAGE) as stream:
                async for page in stream:
                    got += page.data
                    if len(got) == PAGE:
                        os.truncate(path, SIZE - 1)
