"""``pagebridge tail``: the last lines of a file without reading all of it, then follow."""

from __future__ import annotations

from typing import IO, TextIO

from ..core import messages as m
from ..terminal import printable
from .client import Session

#: Bytes read per step when looking backwards for line starts.
BLOCK = 64 * 1024


async def last_lines_offset(session: Session, path: str, lines: int) -> tuple[int, int, str | None]:
    """Where the last ``lines`` lines of ``path`` start: (offset, size, etag).

    Reads backwards in blocks by random access, so a 10 GiB log costs a few
    blocks, not 10 GiB.  A final newline ends the last line; it does not
    start an empty one.
    """
    probe = session.pages(path, length=0)
    opened = await probe.wait_opened()
    await probe.aclose()
    size = opened.size or 0
    if lines <= 0:
        return size, size, opened.etag
    end = size
    found = 0
    pos = size
    while pos > 0:
        start = max(0, pos - BLOCK)
        block = await session.get_all_pages(path, offset=start, length=pos - start,
                                            if_match=opened.etag)
        index = len(block)
        while True:
            index = block.rfind(b"\n", 0, index)
            if index == -1:
                break
            if start + index == end - 1:
                continue  # the newline that ends the file's last line
            found += 1
            if found == lines:
                return start + index + 1, size, opened.etag
        pos = start
    return 0, size, opened.etag


async def tail(session: Session, path: str, *, lines: int = 10, follow: bool = False,
               out: IO[bytes], err: TextIO) -> int:
    """Write the last ``lines`` lines of ``path`` to ``out``; with ``follow``, then what is appended."""
    offset, size, etag = await last_lines_offset(session, path, lines)
    stream = session.pages(path, offset, None if follow else size - offset, follow=follow,
                           if_match=etag)
    async with stream:
        async for item in stream:
            if isinstance(item, m.Event):
                out.flush()
                err.write(f"pagebridge: {printable(item.detail or item.kind)}\n")
                err.flush()
                continue
            out.write(item.data)
            if follow:
                out.flush()
    out.flush()
    return 0


__all__ = ["last_lines_offset", "tail"]
