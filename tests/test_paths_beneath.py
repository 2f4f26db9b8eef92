"""Paths are opened beneath the root: no check-then-open race, hard links as documented."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bridge.aio.client import connect
from bridge.errors import ErrorCode, StreamError

#: How long each race runs: thousands of opens against thousands of flips.
RACE_SECONDS = 2.0


@contextmanager
def flipping(*states: Callable[[], None]) -> Iterator[list[int]]:
    """A thread that moves the tree through ``states`` in a loop until the block ends."""
    stop = threading.Event()
    flips = [0]

    def run() -> None:
        while not stop.is_set():
            for state in states:
                state()
                flips[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield flips
    finally:
        stop.set()
        thread.join(5)


def file_or_link(path: Path, keep: Path, target: Path) -> list[Callable[[], None]]:
    """States: ``path`` is a regular file (a hard link of ``keep``), then a symlink to ``target``."""
    spare = path.with_name(path.name + ".new")

    def to_file() -> None:
        os.link(keep, spare)
        os.replace(spare, path)

    def to_link() -> None:
        os.symlink(target, spare)
        os.replace(spare, path)

    return [to_file, to_link]


def folder_or_link(path: Path, target: Path) -> list[Callable[[], None]]:
    """States: ``path`` is a real folder, then a symlink to ``target`` (two renames each way)."""
    parked = path.with_name(path.name + ".real")
    spare = path.with_name(path.name + ".link")
    spare.symlink_to(target)

    def to_link() -> None:
        os.rename(path, parked)
        os.rename(spare, path)

    def to_folder() -> None:
        os.rename(path, spare)
        os.rename(parked, path)

    return [to_link, to_folder]


async def race(server, path: str, seconds: float = RACE_SECONDS) -> Counter[str]:
    """Open ``path`` over and over: count what came back (content, or error code)."""
    seen: Counter[str] = Counter()
    async with connect(server.ws_url) as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                seen[bytes(await session.get_all_pages(path)).decode()] += 1
            except StreamError as exc:
                seen[str(exc.code)] += 1
    return seen


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("SECRET")
    (folder / "only-outside.txt").write_text("SECRET")
    return folder


async def test_file_swapped_for_a_symlink_during_opens_never_serves_outside(root: Path, outside: Path,
                                                                          start_server) -> None:
    """A regular file swapped with a symlink to an outside file, in a loop: only the inside file is served."""
    keep = root / "keep"
    keep.write_text("inside")
    server = await start_server(root)
    with flipping(*file_or_link(root / "f", keep, outside / "secret.txt")) as flips:
        seen = await race(server, "f")
    assert "SECRET" not in seen, seen
    assert seen["inside"] > 0 and seen["forbidden"] > 0, seen  # both sides of the race were hit
    assert set(seen) <= {"inside", "forbidden", "not_found"}, seen
    assert flips[0] > 100


async def test_folder_swapped_for_a_symlink_during_opens_never_serves_outside(root: Path, outside: Path,
                                                                            start_server) -> None:
    """A folder swapped with a symlink to an outside folder, under 'd/secret.txt': never the outside file."""
    (root / "d").mkdir()
    (root / "d" / "secret.txt").write_text("inside")
    server = await start_server(root)
    with flipping(*folder_or_link(root / "d", outside)):
        seen = await race(server, "d/secret.txt")
    assert "SECRET" not in seen, seen
    assert seen["inside"] > 0 and seen["forbidden"] > 0, seen
    assert set(seen) <= {"inside", "forbidden", "not_found"}, seen


async def test_folder_swapped_for_a_symlink_during_listings_never_lists_outside(root: Path, outside: Path,
                                                                              start_server) -> None:
    """Listing a folder swapped with a symlink to an outside folder never shows the outside names."""
    (root / "d").mkdir()
    (root / "d" / "inside.txt").write_text("inside")
    server = await start_server(root)
    seen: Counter[str] = Counter()
    with flipping(*folder_or_link(root / "d", outside)):
        async with connect(server.ws_url) as session:
            deadline = time.monotonic() + RACE_SECONDS
            while time.monotonic() < deadline:
                try:
                    seen[",".join(e.name for e in await session.list("d"))] += 1
                except StreamError as exc:
                    seen[str(exc.code)] += 1
    assert set(seen) <= {"inside.txt", "forbidden", "not_found"}, seen
    assert seen["inside.txt"] > 0 and seen["forbidden"] > 0, seen


async def test_symlinks_inside_the_root_are_followed(root: Path, start_server) -> None:
    """Relative, absolute and chained links that stay inside are served; '..' above the root is not."""
    (root / "a").mkdir()
    (root / "a" / "f.txt").write_text("f")
    (root / "rel").symlink_to("a/f.txt")
    (root / "abs").symlink_to(root / "a" / "f.txt")
    (root / "a" / "up").symlink_to("../rel")
    (root / "a" / "dir").symlink_to(".")
    (root / "escape").symlink_to("a/../../outside")
    (root / "loop").symlink_to("loop")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        for path in ("rel", "abs", "a/up", "a/dir/dir/f.txt"):
            assert await session.get_all_pages(path) == b"f", path
        for path, code in (("escape", ErrorCode.FORBIDDEN), ("loop", ErrorCode.FORBIDDEN),
                           ("a/dir", ErrorCode.NOT_A_FILE)):
            with pytest.raises(StreamError) as info:
                await session.get_all_pages(path)
            assert info.value.code is code, path
        assert [e.name for e in await session.list("a/dir")] == ["dir", "f.txt", "up"]


async def test_hard_link_to_outside_file_is_served_unless_refused(root: Path, outside: Path,
                                                                  start_server) -> None:
    """A hard link cannot be told from a file by its path: served by default, refused with refuse_links."""
    os.link(outside / "secret.txt", root / "linked.txt")
    (root / "plain.txt").write_text("plain")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("linked.txt") == b"SECRET"  # documented, not a bug
        server.catalog.refuse_links = True  # what ServerConfig(refuse_hard_links=True) sets
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(session.get_all_pages("linked.txt"), 5)
        assert info.value.code is ErrorCode.FORBIDDEN and "hard links" in info.value.message
        assert [e.name for e in await session.list()] == ["plain.txt"]
        assert await session.get_all_pages("plain.txt") == b"plain"


def make(root: Path, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(root), name), "wb") as f:
        f.write(data)


async def test_names_that_are_not_utf8_text_are_listed_escaped_and_open_as_listed(root: Path,
                                                                                   start_server) -> None:
    """Invalid UTF-8, control characters and backslashes in names: listed as \\xNN, opened by that name."""
    make(root, b"caf\xe9.txt", b"latin-1")
    make(root, b"esc\x1b[31mred", b"escape")
    make(root, b"new\nline", b"newline")
    make(root, b"back\\slash", b"backslash")
    make(root, "café.txt".encode(), b"utf-8")
    os.mkdir(os.path.join(os.fsencode(root), b"dir\xff"))
    make(root, b"dir\xff/in\xfe", b"nested")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        entries = await asyncio.wait_for(session.list(), 5)
        names = [e.name for e in entries]
        assert names == ["dir\\xff", "back\\x5cslash", "caf\\xe9.txt", "café.txt", "esc\\x1b[31mred",
                         "new\\x0aline"]
        got = {name: bytes(await session.get_all_pages(name)) for name in names[1:]}
        assert got == {"back\\x5cslash": b"backslash", "caf\\xe9.txt": b"latin-1", "café.txt": b"utf-8",
                       "esc\\x1b[31mred": b"escape", "new\\x0aline": b"newline"}
        inner = await asyncio.wait_for(session.list("dir\\xff"), 5)
        assert [e.name for e in inner] == ["in\\xfe"]
        assert await session.get_all_pages("dir\\xff/in\\xfe") == b"nested"
        async with session.pages("dir\\xff/in\\xfe") as stream:
            assert (await stream.wait_opened()).path == "dir\\xff/in\\xfe"
        # One wire name per file: other spellings are refused, not aliased.
        for alias in ("caf\\xc3\\xa9.txt", "caf\\xE9.txt", "back\\slash", "\\x41", "new\\x00line"):
            with pytest.raises(StreamError) as info:
                await session.get_all_pages(alias)
            assert info.value.code in (ErrorCode.FORBIDDEN, ErrorCode.BAD_REQUEST), alias
        with pytest.raises(StreamError) as info:
            await session.get_all_pages("caf\\xe8.txt")
        assert info.value.code is ErrorCode.NOT_FOUND
        assert "caf\\xe8.txt does not exist" in info.value.message


async def test_refuse_hard_links_option(root: Path, outside: Path, start_server) -> None:
    """ServerConfig(refuse_hard_links=True) (serve --refuse-hard-links) refuses and hides hard links."""
    os.link(outside / "secret.txt", root / "linked.txt")
    (root / "plain.txt").write_text("plain")
    server = await start_server(root, refuse_hard_links=True)
    async with connect(server.ws_url) as session:
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(session.get_all_pages("linked.txt"), 5)
        assert info.value.code is ErrorCode.FORBIDDEN
        assert [e.name for e in await session.list()] == ["plain.txt"]
