"""The line loop: blocks of bytes in, matching lines out.

A :class:`LineScanner` is fed the bytes of a file (or of a range of it)
block by block, each block starting where the previous one stopped being
useful (:attr:`LineScanner.pos`), and hands out the lines that match, with
their offsets and line numbers.  It never touches a file: the caller reads
(``os.pread`` in a worker thread, see bridge/sources/scan.py) and loads.

How a block is used:

* only complete lines are matched; the partial line at the end of a block
  is matched when the next block, which starts at that line, is loaded
  (``pos`` tells the caller where to read next);
* the final block (``final=True``: end of file or of the range) also ends
  the last line, with or without a newline, as grep does;
* a line longer than a whole block (``max_line``) is matched in windows
  that overlap by :data:`OVERLAP` bytes, keeping only its first bytes for
  the text: a literal is always found; a regular expression is found when
  its match is shorter than the overlap.  Memory stays one block;
* a line matches at most once; its text is the line without ``\\n`` or
  ``\\r\\n``, cut to ``max_text`` bytes on a UTF-8 character boundary
  (``cut`` says so);
* line numbers count ``\\n`` bytes (a ``\\r`` alone does not end a line).

:meth:`LineScanner.take` returns at most ``limit`` matches per call, so a
block holding a million matching lines is handed out in bounded batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the client imports Match from here without RE2
    from .matcher import Matcher

if TYPE_CHECKING:
    from .index import Checkpoints

#: Default cap on the text of a match (the protocol's ``max_text`` default).
DEFAULT_MAX_TEXT = 1024
#: How much consecutive windows of an overlong line share: a regex match
#: shorter than this is found even across a window boundary, and any
#: literal is (patterns are at most 4096 bytes).
OVERLAP = 64 * 1024


class Match(NamedTuple):
    """One matching line."""

    #: Byte offset of the line's first byte (or of the scanned range, for a
    #: line that starts before it).
    offset: int
    #: 1-based line number; 0 when the scan does not number lines.
    line: int
    #: The line without its ``\\n`` / ``\\r\\n``, at most ``max_text`` bytes.
    text: bytes
    #: True when ``text`` is shorter than the line.
    cut: bool


class _LongLine:
    """A line longer than a block, matched window by window."""

    __slots__ = ("start", "line", "head", "matched")

    def __init__(self, start: int, line: int, head: bytes) -> None:
        self.start = start
        self.line = line
        self.head = head
        self.matched = False


def clip_text(data: bytes, start: int, end: int, max_text: int) -> tuple[bytes, bool]:
    """``data[start:end]`` cut to ``max_text`` bytes without splitting a UTF-8 character."""
    if end - start <= max_text:
        return data[start:end], False
    stop = start + max_text
    # data[stop] is the first byte left out: if it continues a character,
    # that character started inside the text; leave all of it out.
    for _ in range(3):
        if stop > start and data[stop] & 0xC0 == 0x80:
            stop -= 1
        else:
            break
    return data[start:stop], True


class LineScanner:
    """Matching lines of a stream of blocks.

    Args:
        matcher: from :func:`~bridge.scan.matcher.compile_pattern`.
        offset: absolute offset of the first byte that will be loaded.
        line: number of the line holding that byte (1 at the start of a file).
        max_text: cap on each match's text, in bytes.
        number_lines: count lines (costs a pass over every byte with
            ``bytes.count``); when False every match has ``line`` 0.
        count_only: only count matching lines; :meth:`take` returns nothing.
        keep_cr: keep the ``\\r`` of a ``\\r\\n`` line ending in the text (grep's output).
        max_line: a line that fills a whole loaded block of this size
            without ending is matched window by window (see the module doc).
        overlap: bytes shared by consecutive windows of such a line.
    """

    def __init__(self, matcher: Matcher, *, offset: int = 0, line: int = 1,
                 max_text: int = DEFAULT_MAX_TEXT, number_lines: bool = True,
                 count_only: bool = False, keep_cr: bool = False,
                 max_line: int = 8 << 20, overlap: int = OVERLAP) -> None:
        if max_text < 0:
            raise ValueError("max_text must not be negative")
        if overlap < 2 or max_line <= 2 * overlap:
            raise ValueError("max_line must exceed twice the overlap, itself at least 2")
        self.matcher = matcher
        self.max_text = max_text
        self.number_lines = number_lines and not count_only
        self.count_only = count_only
        self.keep_cr = keep_cr
        self.max_line = max_line
        self.overlap = overlap
        #: Absolute offset up to which every line is matched: the next
        #: block must be loaded from here.
        self.pos = offset
        #: Number of the line holding ``pos`` (meaningful when numbering).
        self.line = line if self.number_lines else 0
        #: Matching lines so far.
        self.count = 0
        self._data = b""
        self._base = offset  # absolute offset of _data[0]
        self._i = 0  # next index to match in _data
        self._stop = 0  # complete lines end here in _data
        self._final = False
        self._long: _LongLine | None = None
        self._pending: list[Match] = []  # an overlong line's match, handed out by take()
        self._marks: Checkpoints | None = None  # the line index's counts inside the block

    # ------------------------------------------------------------ feeding

    @property
    def exhausted(self) -> bool:
        """True when the loaded block holds nothing more: load the next one (from :attr:`pos`)."""
        return self._i >= self._stop and not self._pending

    @property
    def done(self) -> bool:
        """True when the final block has been matched to its end."""
        return self._final and self.exhausted and self._long is None

    def load(self, data: bytes, *, final: bool, checkpoints: Checkpoints | None = None) -> None:
        """Load the bytes that start at :attr:`pos`; ``final`` when they reach the end of the input.

        ``checkpoints``: the line index's newline counts inside ``data``
        (the index was just fed this block): long stretches without a match
        are numbered from them instead of being counted again.

        Call it when :attr:`exhausted`.  A block that ends inside a line
        leaves ``pos`` at that line's start, to be loaded again with what
        follows; so each block must be larger than the longest ordinary line
        (``max_line``) unless it is final.
        """
        self._base = self.pos
        self._final = final
        start = 0
        if self._long is not None:
            after = self._window(data, final)
            if after is None:
                self._data, self._i, self._stop = b"", 0, 0
                return
            start = after
        elif not final and len(data) >= self.max_line and data.find(b"\n") < 0:
            # A whole block and no end of line: match it window by window,
            # keeping its first bytes for the text.
            self._long = _LongLine(self.pos, self.line, data[:self.max_text + 4])
            self._window(data, final)
            self._data, self._i, self._stop = b"", 0, 0
            return
        self._data = data
        self._marks = checkpoints
        self._i = start
        self._stop = len(data) if final else max(start, data.rfind(b"\n") + 1)

    def _window(self, data: bytes, final: bool) -> int | None:
        """Match one window of an overlong line; the index after its end, or None if it goes on."""
        long = self._long
        assert long is not None
        # Past the first window, byte 0 was covered by the window before and
        # is only context here (so ``^`` cannot match in the middle of a line).
        first = 1 if self._base > long.start else 0
        # The text: the line's first bytes, gathered across windows if a
        # block is shorter than max_text.
        have = long.start + len(long.head) - self._base
        if len(long.head) < self.max_text + 4 and 0 <= have < len(data):
            long.head += data[have:have + self.max_text + 4 - len(long.head)]
        end = data.find(b"\n", first)
        if end >= 0 or final:
            stop = end if end >= 0 else len(data)
            if not long.matched and first <= stop:
                long.matched = self.matcher.search(data, first, stop) >= 0
            if long.matched:
                self.count += 1
                if not self.count_only:
                    length = self._base + stop - long.start
                    if end >= 1 and not self.keep_cr and data[end - 1] == 0x0D:
                        length -= 1
                    head = long.head
                    text, cut = clip_text(head, 0, min(length, len(head)), self.max_text)
                    self._pending.append(Match(long.start, long.line, text, cut or length > len(head)))
            self._long = None
            if self.number_lines and end >= 0:
                self.line = long.line + 1
            after = end + 1 if end >= 0 else len(data)
            self.pos = self._base + after
            return after
        if not long.matched and first < len(data) - 1:
            # Keep the last byte out of reach: ``$`` must not match at the
            # window's edge.  The next window's overlap covers it.
            long.matched = self.matcher.search(data, first, len(data) - 1) >= 0
        if len(data) > self.overlap + 1:
            self.pos = self._base + len(data) - self.overlap
        return None

    # ------------------------------------------------------------ matching

    def take(self, limit: int = 4096, max_bytes: int = 1 << 20) -> list[Match]:
        """Match on in the loaded block; at most ``limit`` matches or ~``max_bytes`` of text.

        Returns an empty list when the block is exhausted (and, in count-only
        mode, always: read :attr:`count`).
        """
        out, self._pending = self._pending, []
        data = self._data
        stop = self._stop
        i = self._i
        if i >= stop:
            return out
        search = self.matcher.search
        find = data.find
        base = self._base
        numbering = self.number_lines
        count_only = self.count_only
        max_text = self.max_text
        strip_cr = not self.keep_cr
        # A match at ``stop`` is the start of a line that is not in this
        # block, unless the block is final and its last line has no newline.
        open_end = self._final and data[stop - 1] != 0x0A
        if count_only:
            self.count += self.matcher.count_lines(data, i, stop, open_end)
            self._i = stop
            self.pos = base + stop
            return out
        line = self.line
        size = 0
        count = 0
        rfind = data.rfind
        newlines = data.count
        marks = self._marks
        # Stretches longer than this are numbered from the index's checkpoints.
        far = 2 * marks.step if marks is not None else len(data) + 1
        append = out.append
        # The loop every matching line goes through: calls kept to the
        # minimum (search, rfind, find, and count when numbering).
        while i < stop:
            p = search(data, i, stop)
            if p < 0 or (p == stop and not open_end):
                if numbering:
                    line += newlines(b"\n", i, stop) if stop - i < far else \
                        marks.newlines(data, base, i, stop)  # type: ignore[union-attr]
                i = stop
                break
            start = rfind(b"\n", i, p) + 1 or i
            end = find(b"\n", p, stop)
            if end < 0:
                end = after = stop  # the final line, without a newline
            else:
                after = end + 1
                if strip_cr and end > start and data[end - 1] == 0x0D:
                    end -= 1
            if numbering:
                line += newlines(b"\n", i, start) if start - i < far else \
                    marks.newlines(data, base, i, start)  # type: ignore[union-attr]
            count += 1
            if end - start <= max_text:
                text = data[start:end]
                append(Match(base + start, line, text, False))
            else:
                text, cut = clip_text(data, start, end, max_text)
                append(Match(base + start, line, text, cut))
            size += len(text) + 32
            if numbering and data[after - 1] == 0x0A:
                line += 1
            i = after
            if count >= limit or size >= max_bytes:
                break
        self.count += count
        self._i = i
        self.line = line
        self.pos = base + i
        return out

__all__ = ["DEFAULT_MAX_TEXT", "OVERLAP", "LineScanner", "Match", "clip_text"]
