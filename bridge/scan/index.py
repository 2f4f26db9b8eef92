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
from typing import Any

import xxhash

from ..errors import FileChangedError

_sz: Any = None  # stringzilla, once loaded (optional: pagebridge[fast])


def _count_bytes(data: bytes, start: int, end: int) -> int:
    return data.count(b"\n", start, end)


def _count_simd(data: bytes, start: int, end: int) -> int:
    return int(_sz.count(data, "\n", start, end))


def newline_counter() -> Callable[[bytes, int, int], int]:
    """The newline counter: StringZilla's SIMD count (3-5x ``bytes.count``) when installed.

    Loaded on first use, not on import: the client imports this module (for
    :class:`Location`) and never counts.
    """
    global _sz, count_newlines
    if count_newlines is _count_first:
        try:
            import stringzilla
        except ImportError:
            count_newlines = _count_bytes
        else:
            _sz = stringzilla
            count_newlines = _count_simd
    return count_newlines


def _count_first(data: bytes, start: int, end: int) -> int:
    return newline_counter()(data, start, end)


#: ``count_newlines(data, start, end)``: newlines in ``data[start:end]``,
#: what numbering lines costs (see :func:`newline_counter`).
count_newlines: Callable[[bytes, int, int], int] = _count_first

#: Bytes between two checkpoints at first: a look-up reads at most this much.
STEP = 64 * 1024
#: Checkpoints one index keeps at most (8 bytes each: 4 MiB).  Beyond, the
#: step doubles: 64 KiB steps cover 32 GiB, then 128 KiB steps 64 GiB...
MAX_CHECKPOINTS = 1 << 19
#: Bytes read at once while counting.
READ_SIZE = 4 << 20

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Newline counts at the checkpoints inside one block of a file (for a scan numbering its lines).

    ``counts[j]`` is the number of newlines before byte ``(first + j) * step``.
    """

    step: int
    first: int
    counts: array[int]

    def newlines(self, data: bytes, base: int, i: int, j: int) -> int:
        """Newlines in ``data[i:j]`` (``data`` is the file at ``base``), counting only the ends beyond checkpoints."""
        step = self.step
        a = -(-(base + i) // step) - self.first  # the first checkpoint at or after i
        b = (base + j) // step - self.first  # the last one at or before j
        count = count_newlines
        if a < 0 or b >= len(self.counts) or b - a < 1:
            return count(data, i, j)
        return (count(data, i, (self.first + a) * step - base) + self.counts[b] - self.counts[a]
                + count(data, (self.first + b) * step - base, j))


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
        # XXH3 of [covered, size) so far: the next fingerprint, whoever reads those bytes.
        self._hasher = xxhash.xxh3_64()
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
        return self.counts.itemsize * len(self.counts) + 1024  # with the hasher's state

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
        self._tail_newlines = 0
        self.size = pos
        self._hasher.reset()
        # Reads are whole steps, so only the last one can end inside a step.
        read_size = max(1, self.read_size // self.step) * self.step
        while pos < size:
            want = min(read_size, size - pos)
            data = read(pos, want)
            if len(data) < want:
                raise FileChangedError(f"the file shrank while its lines were counted "
                                       f"(no data at offset {pos + len(data)})")
            self._count(data, pos, 0)
            pos += len(data)
        if len(self.counts) > self.max_checkpoints:
            self._coarsen(read)

    def feed(self, offset: int, data: bytes, read: Reader) -> int:
        """Count on with bytes read by someone else (a scan): ``data`` is the file at ``offset``.

        Only bytes that continue what is counted are used: nothing happens
        unless ``offset <= size < offset + len(data)``.  ``read`` is used
        only when the index coarsens.  Returns the bytes counted.  The
        caller checks that ``data`` belongs to the version counted so far
        (:meth:`still_valid`).
        """
        end = offset + len(data)
        if not offset <= self.size < end:
            return 0
        start = self.size
        self._count(data, offset, start - offset)
        if len(self.counts) > self.max_checkpoints:
            self._coarsen(read)
        return end - start

    def _count(self, data: bytes, base: int, i: int) -> None:
        """Count ``data[i:]`` (``data`` is the file at ``base``; ``base + i == size``) and move ``size`` to its end."""
        step = self.step
        counts = self.counts
        tail = self._tail_newlines
        end = base + len(data)
        hasher = self._hasher
        count = count_newlines
        view = memoryview(data)
        boundary = self.covered + step  # the next checkpoint
        while boundary <= end:
            stop = boundary - base
            counts.append(counts[-1] + tail + count(data, i, stop))
            # The step just closed, remembered to tell an append from a rewrite (still_valid).
            hasher.update(view[i:stop])
            self._fingerprint = hasher.digest()
            hasher.reset()
            tail = 0
            i = stop
            boundary += step
        hasher.update(view[i:])
        self._tail_newlines = tail + count(data, i, len(data))
        self.size = end
        if data:
            self._last_byte_newline = data[-1] == 0x0A

    def _coarsen(self, read: Reader) -> None:
        """Too many checkpoints: double the step, keep every other one."""
        while len(self.counts) > self.max_checkpoints:
            self.counts = self.counts[::2]
            self.step *= 2
        # The last checkpoint may have moved back: count the tail again.
        covered = self.covered
        tail = read(covered, self.size - covered) if self.size > covered else b""
        self._tail_newlines = tail.count(b"\n")
        self._hasher.reset()
        self._hasher.update(tail)
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
                 max_checkpoints: int = MAX_CHECKPOINTS,
                 on_count: Callable[[str, int], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self.step = step
        self.max_checkpoints = max_checkpoints
        self.on_count = on_count
        #: Bytes the indexes read from files themselves (building, extending, look-ups).
        self.read_bytes = 0
        #: Bytes counted from blocks that scans had read anyway (:meth:`feed`).
        self.fed_bytes = 0
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
        Pass ``read`` through :meth:`counting` to have what it reads counted
        in :attr:`read_bytes`.
        """
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        return _Held(self, key, lock, size, read, version)

    def feed(self, key: Hashable, size: int, version: object, offset: int, data: bytes,
             read: Reader, *, grown_from: object = None) -> Checkpoints | None:
        """A scan read ``data`` at ``offset`` of the file ``key`` (``size`` bytes at ``version``): count on with it.

        The index of ``key`` is extended when ``data`` continues what it
        counted (a new index is started when ``offset`` is 0), so a scan
        from the start of a file leaves its index complete without a pass
        of its own.  Skipped, never waited for, while another thread holds
        the index.  Blocking (it counts ``data``, and may read one step):
        call it in a worker thread.  Returns the index's checkpoints inside
        ``data`` (so the scan need not count those newlines again), or None
        when the index could not be used.

        ``grown_from``: the version this caller fed last, when it knows the
        file has only grown since (a follower, which sees truncation and
        rotation): an index at that version is continued without reading
        its fingerprint.
        """
        with self._lock:
            if not data or (offset != 0 and key not in self._indexes):
                return None  # nothing to start from (and no lock left behind for this key)
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            return None
        try:
            read = self.counting(read)
            with self._lock:
                index = self._indexes.get(key)
            end = offset + len(data)
            if index is not None and offset != 0 and index.size < offset:
                return None  # a gap: nothing to continue from
            if index is not None and index.version != version:
                if (grown_from is None or index.version != grown_from) \
                        and not index.still_valid(size, version, read):
                    index = None  # another file now (rewritten, truncated): start again from 0
                else:
                    index.version = version  # what it counted is the start of this version
            if index is None:
                if offset != 0:
                    return None
                index = LineIndex(step=self.step, max_checkpoints=self.max_checkpoints)
            counted = index.feed(offset, data, read)
            if counted:
                index.version = version
                with self._lock:
                    self._indexes[key] = index
                    self._indexes.move_to_end(key)
                    self._evict(keep=key)
                    self.fed_bytes += counted
                if self.on_count is not None:
                    self.on_count("scanned", counted)
            step = index.step
            first = -(-offset // step)
            return Checkpoints(step, first, index.counts[first:min(end // step, len(index.counts) - 1) + 1])
        finally:
            lock.release()

    def counting(self, read: Reader) -> Reader:
        """``read``, adding what it returns to :attr:`read_bytes` (and telling ``on_count``)."""
        def counted(offset: int, size: int) -> bytes:
            data = read(offset, size)
            with self._lock:
                self.read_bytes += len(data)
            if self.on_count is not None:
                self.on_count("read", len(data))
            return data
        return counted

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


__all__ = ["MAX_CHECKPOINTS", "STEP", "Checkpoints", "count_newlines", "newline_counter", "LineIndex", "LineIndexCache", "Location", "Reader"]
