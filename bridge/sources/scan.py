"""Scanning a file on the server: the blocking side of ``scan`` and ``locate``.

:class:`FileScan` reads a file (or a range, or a followed file) block by
block and runs :class:`~bridge.scan.LineScanner` over it.  Every method
blocks: the server calls them in its scan worker pool, one call at a time
per scan, and each :meth:`FileScan.step` does a bounded amount of work (at
most :data:`STEP_BYTES` read, or one batch of matches), so a scan is
cancelled between two steps and never holds a worker for long.

Memory per scan: one block (:data:`BLOCK_SIZE`) and one batch of matches.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ErrorCode, FileChangedError, StreamError
from ..scan.index import Checkpoints, LineIndexCache, Location
from ..scan.lines import DEFAULT_MAX_TEXT, OVERLAP, LineScanner, Match
from ..scan.matcher import LiteralMatcher, Matcher
from .base import SourceEvent, SourceInfo
from .files import file_etag
from .follow import FollowPager
from .paths import open_file, os_error

#: Bytes read at once.  Large blocks amortise the per-call cost of the
#: matcher and of the thread hop; lines up to this long are matched whole.
BLOCK_SIZE = 8 << 20
#: Bytes read at once when only counting a case-sensitive literal: each
#: block is searched while the copy from the page cache is still in the CPU's
#: caches (25% less CPU than 8 MiB blocks for ``grep -c -F``, bench/README.md
#: "Scan"); a longer line is matched in windows, and a literal (at most
#: 4 KiB) is always found across them.
COUNT_BLOCK_SIZE = 1 << 20
#: Bytes one step may read when it finds nothing: bounds the time between
#: two progress reports (and two chances to cancel) to tens of milliseconds.
STEP_BYTES = 32 << 20
#: Bytes of the first read: until the first match is handed out, blocks
#: start this small and double, and a batch ends at its first match, so the
#: first ``hits`` leaves as soon as a match near the start is found (the
#: viewer shows it) instead of after a whole block was scanned.
FIRST_BLOCK = 256 << 10
#: Matches per batch, and their text in bytes (a ``hits`` message).
BATCH_MATCHES = 2048
BATCH_BYTES = 256 << 10


@dataclass(slots=True)
class ScanBatch:
    """What one step found."""

    matches: list[Match] = field(default_factory=list)
    #: Absolute offset up to which the scan is complete.
    scanned: int = 0
    #: The end of the file or range was reached (never when following).
    done: bool = False
    #: Following: the file changed (rotated, truncated, deleted).
    event: SourceEvent | None = None
    #: Following: nothing new; wait for the file to change.
    idle: bool = False


def _open(path: str, name: str, root: Path | None, refuse_links: bool) -> tuple[int, os.stat_result]:
    fd, st, _ = open_file(path, root=root, shown=name, refuse_links=refuse_links)
    return fd, st


class FileScan:
    """One scan of one file.

    Args:
        path: the normalised path beneath ``root`` (or, without a root, a
            path of the operator's own).
        name: the path as messages show it.
        root, refuse_links: as for :func:`~bridge.sources.paths.open_file`.
        matcher: the compiled pattern.
        offset, length: the range to scan (``length`` None: to the end).
        follow: keep scanning what is appended (``length`` is ignored).
        index: the server's line index cache, to number lines from an
            offset other than 0 (None: lines are numbered from 1 there).
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str, matcher: Matcher,
                 root: Path | None = None, refuse_links: bool = False,
                 offset: int = 0, length: int | None = None, follow: bool = False,
                 max_text: int = DEFAULT_MAX_TEXT, number_lines: bool = True,
                 count_only: bool = False, keep_cr: bool = False,
                 index: LineIndexCache | None = None, block_size: int = BLOCK_SIZE,
                 overlap: int = OVERLAP) -> None:
        self.path = os.fspath(path)
        self.name = name
        self.root = root
        self.refuse_links = refuse_links
        self.matcher = matcher
        self.offset = offset
        self.length = length
        self.follow = follow
        self.max_text = max_text
        self.number_lines = number_lines and not count_only
        self.count_only = count_only
        self.keep_cr = keep_cr
        self.index = index
        if count_only and isinstance(matcher, LiteralMatcher) and block_size > COUNT_BLOCK_SIZE:
            block_size = COUNT_BLOCK_SIZE
            overlap = min(overlap, block_size // 4)
        self.block_size = block_size
        self._read_size = min(FIRST_BLOCK, block_size)  # grows to block_size (see FIRST_BLOCK)
        self.overlap = overlap
        self.fd: int | None = None
        self.follower: FollowPager | None = None
        self.end = offset
        self.scanner = self._scanner(offset, 1)
        # Following: the bytes after scanner.pos already read (a partial line).
        self._carry = b""
        self._block = b""
        self._block_at = 0
        self._count_before = 0  # matches of the scanners before a rotation
        self._st: os.stat_result | None = None  # the file scanned, as opened
        self._fed: str | None = None  # the etag of the last block given to the line index

    def _scanner(self, offset: int, line: int) -> LineScanner:
        return LineScanner(self.matcher, offset=offset, line=line, max_text=self.max_text,
                           number_lines=self.number_lines, count_only=self.count_only,
                           keep_cr=self.keep_cr, max_line=self.block_size, overlap=self.overlap)

    @property
    def count(self) -> int:
        """Matching lines so far."""
        return self.scanner.count + self._count_before

    # ------------------------------------------------------------ opening

    def open(self) -> SourceInfo:
        """Open the file, check the range, find the first line's number."""
        if self.follow:
            self.follower = FollowPager(self.path, self.offset, name=self.name, root=self.root,
                                        refuse_links=self.refuse_links)
            info = self.follower.open_now()
            fd = self.follower.fd
            assert fd is not None and info.size is not None
            size = info.size
            st = os.fstat(fd)
        else:
            fd, st = _open(self.path, self.name, self.root, self.refuse_links)
            self.fd = fd
            size = st.st_size
            if self.offset > size:
                raise StreamError(f"offset {self.offset} is beyond the end of {self.name} "
                                  f"({size} bytes)", ErrorCode.BAD_REQUEST)
            available = size - self.offset
            length = available if self.length is None else min(self.length, available)
            self.end = self.offset + length
            info = SourceInfo(size=size, length=length, mtime=st.st_mtime, etag=file_etag(st))
        if self.number_lines and self.offset > 0:
            line = 1 + self._newlines_before(fd, st, self.offset)
            self.scanner = self._scanner(self.offset, line)
        self._st = st
        return info

    def _feed(self, fd: int, offset: int, data: bytes) -> Checkpoints | None:
        """Give the line index the block just read: numbering lines counts them anyway.

        A scan from the start of a file (or from where its index stops)
        thereby leaves the index complete, so a ``locate`` after it reads
        one step, not the file.  Count-only scans skip this (no numbering).
        Returns the index's checkpoints in the block, from which the scanner
        numbers lines without counting the same newlines twice.
        """
        if self.index is None or not self.number_lines:
            return None
        # A followed file grows (its etag changes) and may be replaced: look again.
        st = self._st if self._st is not None and self.follower is None else os.fstat(fd)

        def read(at: int, size: int) -> bytes:
            return os.pread(fd, size, at)
        etag = file_etag(st)
        # A follower sees truncation and rotation (events): between two of
        # its blocks the file only grew, so the index needs no re-check.
        grown_from = self._fed if self.follower is not None and offset > 0 else None
        marks = self.index.feed((st.st_dev, st.st_ino), st.st_size, etag, offset, data, read,
                                grown_from=grown_from)
        self._fed = etag
        return marks

    def _newlines_before(self, fd: int, st: os.stat_result, offset: int) -> int:
        def read(at: int, size: int) -> bytes:
            return os.pread(fd, size, at)

        if self.index is None:
            from ..scan.index import LineIndex

            scratch = LineIndex()
            scratch.extend(offset, read)
            return scratch.newlines
        counted = self.index.counting(read)
        with self.index.lookup((st.st_dev, st.st_ino), st.st_size, counted, file_etag(st)) as index:
            return index.newlines_before(offset, counted)

    # ------------------------------------------------------------ scanning

    def step(self) -> ScanBatch:
        """Scan on: until a batch of matches, the end, or :data:`STEP_BYTES` read."""
        if self.follower is not None:
            return self._follow_step()
        scanner = self.scanner
        fd = self.fd
        if fd is None:
            raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
        read = 0
        while True:
            if scanner.exhausted:
                if scanner.done:
                    return ScanBatch([], scanner.pos, done=True)
                if read >= STEP_BYTES:
                    return ScanBatch([], scanner.pos)
                want = min(self._read_size, self.end - scanner.pos)
                self._read_size = min(2 * self._read_size, self.block_size)
                data = os.pread(fd, want, scanner.pos)
                if len(data) < want:
                    raise FileChangedError(f"{self.name} shrank while it was scanned "
                                           f"(no data at offset {scanner.pos + len(data)})")
                read += len(data)
                marks = self._feed(fd, scanner.pos, data)
                scanner.load(data, final=scanner.pos + want >= self.end, checkpoints=marks)
            matches = scanner.take(BATCH_MATCHES if scanner.count else 1, BATCH_BYTES)
            if matches:
                self._read_size = self.block_size
                return ScanBatch(matches, scanner.pos, done=scanner.done)
            if scanner.done:
                return ScanBatch([], scanner.pos, done=True)

    def _follow_step(self) -> ScanBatch:
        follower = self.follower
        assert follower is not None
        scanner = self.scanner
        read = 0
        while True:
            if scanner.exhausted:
                if read >= STEP_BYTES:
                    return ScanBatch([], scanner.pos)
                follower.pos = scanner.pos + len(self._carry)
                data, event = follower.look(self.block_size)
                if event is not None:
                    return self._after_event(event)
                if not data:
                    return ScanBatch([], scanner.pos, idle=True)
                read += len(data)
                block = self._carry + data if self._carry else data
                marks = self._feed(follower.fd, scanner.pos, block) if follower.fd is not None else None
                scanner.load(block, final=False, checkpoints=marks)
                self._block, self._block_at = block, scanner.pos
            matches = scanner.take(BATCH_MATCHES, BATCH_BYTES)
            if scanner.exhausted:
                # Keep the partial last line: the next bytes complete it.
                self._carry = self._block[scanner.pos - self._block_at:]
                self._block = b""
            if matches:
                return ScanBatch(matches, scanner.pos)

    def _after_event(self, event: SourceEvent) -> ScanBatch:
        """The followed file changed: its last line is complete; start again where told."""
        scanner = self.scanner
        matches: list[Match] = []
        had_partial = bool(self._carry)
        if self._carry:
            scanner.load(self._carry, final=True)
            while not scanner.exhausted:
                matches += scanner.take(BATCH_MATCHES, BATCH_BYTES)
        self._carry = b""
        self._count_before += scanner.count
        if event.kind in ("rotated", "truncated"):
            self.scanner = self._scanner(event.offset, 1)
        else:  # deleted: if it comes back, a "rotated" event restarts the count
            self.scanner = self._scanner(scanner.pos, scanner.line + (1 if had_partial else 0))
        # ``scanned`` is where the old file ended: the matches are its last ones.
        return ScanBatch(matches, scanner.pos, event=event)

    async def wait_for_change(self) -> None:
        """Following: sleep until the file may have changed (called by the event loop)."""
        assert self.follower is not None
        await self.follower.ready()

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


def locate(path: str | os.PathLike[str], name: str, index: LineIndexCache, *,
           offset: int | None = None, line: int | None = None, root: Path | None = None,
           refuse_links: bool = False) -> Location:
    """Line of byte ``offset``, or start of line ``line``, in the file as it is now (blocking)."""
    if offset is not None and line is not None:
        raise StreamError("give an offset or a line, not both", ErrorCode.BAD_REQUEST)
    if (offset is not None and offset < 0) or (line is not None and line < 1):
        raise StreamError("offsets start at 0 and lines at 1", ErrorCode.BAD_REQUEST)
    fd, st = _open(os.fspath(path), name, root, refuse_links)
    try:
        def pread(at: int, size: int) -> bytes:
            return os.pread(fd, size, at)

        read = index.counting(pread)  # what the look-up reads shows in the index's stats
        etag = file_etag(st)
        with index.lookup((st.st_dev, st.st_ino), st.st_size, read, etag) as idx:
            if line is not None:
                start = idx.line_start(line, read)
                found = min(line, max(1, idx.lines))
            else:
                found, start = idx.line_of(offset or 0, read)
            return Location(found, start, idx.lines, st.st_size, etag)
    except OSError as exc:
        raise os_error(exc, name) from None
    finally:
        os.close(fd)


__all__ = ["BATCH_BYTES", "BATCH_MATCHES", "BLOCK_SIZE", "COUNT_BLOCK_SIZE", "STEP_BYTES", "FileScan", "Location",
           "ScanBatch", "locate"]
