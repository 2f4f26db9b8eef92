"""The line index: line number <-> byte offset for a file, sparse and bounded.

A :class:`LineIndex` keeps, for every ``step`` bytes of a file (64 KiB to
start with), how many newlines lie before that point: 8 bytes per step, so
256 KiB for a 2 GiB file.  A look-up reads at most one step of the file
and counts within it.  Built on first use, by one pass of ``bytes.count``
over the file; extended, not rebuilt, when the file grows (a log being
written): the index remembers the XXH3 of the last step it counted and
checks it before counting on, so a file rewritten in place is indexed
afresh.  When a file has more steps than ``max_checkpoints``, the step
doubles and every other checkpoint goes: the memory of one index is
bounded whatever the file's size.

:class:`LineIndexCache` keeps the indexes of recently used files within a
memory budget, least recently used first out.

Nothing here opens a file: callers pass ``read(offset, size) -> bytes``
(``os.pread`` on an open descriptor, run in a worker thread).

Lines are counted as grep and ``wc -l`` see them, plus one: a final line
without a newline is a line.  Line numbers are 1-based.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import xxhash

from ..errors import FileChangedError

#: Bytes between two checkpoints at first: a look-up reads at most this much.
STEP = 64 * 1024
#: Checkpoints one index keeps at most (8 bytes each: 4 MiB).  Beyond, the
#: step doubles: 64 KiB steps cover 32 GiB, then 128 KiB steps 64 GiB...
MAX_CHECKPOINTS = 1 << 19
#: Bytes read at once while counting.
READ_SIZE = 4 << 20

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a line is: the answer to ``locate`` (and ``session.locate()``)."""

    #: 1-based number of the line.
    line: int
    #: Offset of its first byte.
    offset: int
    #: Lines in the file at ``size`` (a final line without newline counts).
    lines: int
    #: The file's size and etag when it was looked up.
    size: int
    etag: str


class LineIndex:
    """Newline counts at every ``step`` bytes of one file.

    Not thread-safe on its own: :class:`LineIndexCache` hands an index out
    under its lock (``with cache.lookup(...) as index``).
    """

    def __init__(self, *, step: int = STEP, max_checkpoints: int = MAX_CHECKPOINTS,
                 read_size: int = READ_SIZE) -> None:
        if step < 1 or max_checkpoints < 2 or read_size < 1:
            raise ValueError("step and read_size must be positive and max_checkpoints at least 2")
        self.step = step
        self.read_size = read_size
        self.max_checkpoints = max_checkpoints
        #: counts[k]: newlines in bytes [0, k * step).
        self.counts = array("Q", [0])
        #: Bytes counted so far (the file's size when last extended).
        self.size = 0
        self._tail_newlines = 0  # newlines in [covered, size)
        self._last_byte_newline = False
        self._fingerprint = b""  # XXH3-64 of the step before `covered`
        #: The version counted (the server passes the file's etag).
        self.version: object = None

    # ------------------------------------------------------------ size and totals

    @property
    def covered(self) -> int:
        """Bytes covered by checkpoints (a multiple of ``step``)."""
        return (len(self.counts) - 1) * self.step

    @property
    def newlines(self) -> int:
        return self.counts[-1] + self._tail_newlines

    @property
    def lines(self) -> int:
        """Lines in the first ``size`` bytes (a final line without newline counts)."""
        if self.size == 0:
            return 0
        return self.newlines + (0 if self._last_byte_newline else 1)

    @property
    def memory(self) -> int:
        """Bytes this index holds (its checkpoints)."""
        return self.counts.itemsize * len(self.counts) + 64

    # ------------------------------------------------------------ building

    def still_valid(self, size: int, version: object, read: Reader) -> bool:
        """Whether the file, now ``size`` bytes at ``version``, starts with what was counted.

        The same version is the same file.  A longer one is taken as grown by
        appending if the last step counted is unchanged (the tail after it
        is counted again anyway).  Anything else is a new file.
        """
        if version == self.version and size == self.size:
            return True
        if size <= self.size:
            return False
        covered = self.covered
        if covered == 0:
            return True
        chunk = read(covered - self.step, self.step)
        return xxhash.xxh3_64_digest(chunk) == self._fingerprint

    def extend(self, size: int, read: Reader, version: object = None) -> None:
        """Count newlines up to ``size`` bytes (the file grew, or a first build).

        Raises:
            FileChangedError: the file has fewer than ``size`` bytes.
        """
        if size < self.size:
            raise ValueError("an index only grows; build a new one for a shorter file")
        self.version = version
        if size == self.size:
            return
        pos = self.covered  # the tail is counted again, with what follows it
        step = self.step
        counts = self.counts
        last = self.counts[-1]
        tail = 0
        # Reads are whole steps, so only the last one can end inside a step.
        read_size = max(1, self.read_size // step) * step
        while pos < size:
            want = min(read_size, size - pos)
            data = read(pos, want)
            if len(data) < want:
                raise FileChangedError(f"the file shrank while its lines were counted "
                                       f"(no data at offset {pos + len(data)})")
            i = 0
            # Whole steps: one checkpoint each.
            while len(data) - i >= step:
                last += data.count(b"\n", i, i + step)
                counts.append(last)
                i += step
            self._fingerprint_from(data, i)
            tail = data.count(b"\n", i)
            pos += len(data)
            self._last_byte_newline = data[-1] == 0x0A
        self._tail_newlines = tail
        self.size = size
        if len(counts) > self.max_checkpoints:
            self._coarsen(read)

    def _fingerprint_from(self, data: bytes, end: int) -> None:
        if end >= self.step:
            self._fingerprint = xxhash.xxh3_64_digest(data[end - self.step:end])

    def _coarsen(self, read: Reader) -> None:
        """Too many checkpoints: double the step, keep every other one."""
        while len(self.counts) > self.max_checkpoints:
            self.counts = self.counts[::2]
            self.step *= 2
        # The last checkpoint may have moved back: count the tail again.
        covered = self.covered
        tail = read(covered, self.size - covered) if self.size > covered else b""
        self._tail_newlines = tail.count(b"\n")
        if covered:
            self._fingerprint = xxhash.xxh3_64_digest(read(covered - self.step, self.step))

    # ------------------------------------------------------------ look-ups

    def newlines_before(self, offset: int, read: Reader) -> int:
        """Newlines in bytes ``[0, offset)``, ``0 <= offset <= size``."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} is outside [0, {self.size}]")
        k = min(offset // self.step, len(self.counts) - 1)
        start = k * self.step
        return self.counts[k] + self._read(read, start, offset - start).count(b"\n")

    def newline_at(self, n: int, read: Reader) -> int:
        """Offset of the ``n``-th newline (1-based), ``1 <= n <= newlines``."""
        if not 1 <= n <= self.newlines:
            raise ValueError(f"there is no newline number {n} (the file has {self.newlines})")
        counts = self.counts
        # counts[k] < n <= counts[k + 1], or the tail after the last checkpoint.
        k = bisect.bisect_left(counts, n) - 1
        start = k * self.step
        chunk = self._read(read, start, min(self.step, self.size - start)
                           if k < len(counts) - 1 else self.size - start)
        left = n - counts[k]
        i = -1
        find = chunk.find
        for _ in range(left):
            i = find(b"\n", i + 1)
        return start + i

    def line_start(self, line: int, read: Reader) -> int:
        """Offset of the first byte of line ``line`` (1-based; beyond the last: the last)."""
        if line < 1:
            raise ValueError("line numbers start at 1")
        line = min(line, max(1, self.lines))
        return 0 if line == 1 else self.newline_at(line - 1, read) + 1

    def line_of(self, offset: int, read: Reader) -> tuple[int, int]:
        """(line number, first byte of that line) for the byte at ``offset``.

        An offset at or past the end is taken as the last byte; an empty
        file answers (1, 0).
        """
        if offset < 0:
            raise ValueError("offsets are not negative")
        if self.size == 0:
            return 1, 0
        offset = min(offset, self.size - 1)
        before = self.newlines_before(offset, read)
        return before + 1, (self.newline_at(before, read) + 1 if before else 0)

    @staticmethod
    def _read(read: Reader, offset: int, size: int) -> bytes:
        data = read(offset, size) if size > 0 else b""
        if len(data) < size:
            raise FileChangedError(f"the file shrank (no data at offset {offset + len(data)})")
        return data


class LineIndexCache:
    """Line indexes of recently used files, within ``max_bytes`` (LRU).

    Keys are opaque (the server uses the file's device and inode, so a log
    that grows keeps its index); :meth:`lookup` checks the index still
    describes the file and counts what was appended.

    Args:
        max_bytes: memory budget for all indexes together.  One index may
            exceed it while in use; it is dropped once another is used.
        step, max_checkpoints: passed to new indexes.
    """

    def __init__(self, max_bytes: int = 16 << 20, *, step: int = STEP,
                 max_checkpoints: int = MAX_CHECKPOINTS) -> None:
        self.max_bytes = max_bytes
        self.step = step
        self.max_checkpoints = max_checkpoints
        self._indexes: OrderedDict[Hashable, LineIndex] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def memory(self) -> int:
        with self._lock:
            return sum(index.memory for index in self._indexes.values())

    def __len__(self) -> int:
        return len(self._indexes)

    def lookup(self, key: Hashable, size: int, read: Reader, version: object = None) -> _Held:
        """The index of ``key`` at ``version``, counted up to ``size`` bytes, held until the ``with`` ends.

        Blocking (it may count a whole file): call it in a worker thread.
        """
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        return _Held(self, key, lock, size, read, version)

    def _get(self, key: Hashable, size: int, read: Reader, version: object) -> LineIndex:
        with self._lock:
            index = self._indexes.get(key)
        if index is None or not index.still_valid(size, version, read):
            index = LineIndex(step=self.step, max_checkpoints=self.max_checkpoints)
        index.extend(size, read, version)
        with self._lock:
            self._indexes[key] = index
            self._indexes.move_to_end(key)
            self._evict(keep=key)
        return index

    def _evict(self, keep: Hashable) -> None:
        total = sum(index.memory for index in self._indexes.values())
        for key in list(self._indexes):
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            total -= self._indexes.pop(key).memory
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]


class _Held:
    """``with cache.lookup(key, size, read) as index:`` the index, locked for this thread."""

    def __init__(self, cache: LineIndexCache, key: Hashable, lock: threading.Lock,
                 size: int, read: Reader, version: object) -> None:
        self._version = version
        self._cache = cache
        self._key = key
        self._lock = lock
        self._size = size
        self._read = read

    def __enter__(self) -> LineIndex:
        self._lock.acquire()
        try:
            return self._cache._get(self._key, self._size, self._read, self._version)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


__all__ = ["MAX_CHECKPOINTS", "STEP", "LineIndex", "LineIndexCache", "Location", "Reader"]
