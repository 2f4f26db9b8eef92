"""Finding a pattern in a byte buffer, one line at a time.

A :class:`Matcher` answers one question: where is the first match of the
pattern in ``buf[start:end]``?  The line loop in :mod:`bridge.scan.lines`
turns that into matching lines.  Two engines, chosen by measurement
(bench/README.md, "Scan engines"):

* a case-sensitive literal is found with ``bytes.find`` (CPython's
  two-way/Horspool search, memchr-driven) near the previous match, and with
  RE2's literal search, which skips through memchr on a rare first byte,
  when the previous match was far away; only counting its matching lines
  (``grep -c``) runs on StringZilla's SIMD search when it is installed
  (``pagebridge[fast]``, :func:`count_literal_lines`), 3-4x faster;
* a regular expression, or a literal with ``ignore_case``, runs on RE2
  (``google-re2``): automata, no backtracking, so the time is linear in the
  text whatever the pattern (``(a+)+$`` on a long line costs what ``a``
  costs), and a pattern too large for its memory budget is refused when it
  is compiled.

Semantics are grep's, line by line: a match never spans a newline (RE2's
``never_nl`` removes ``\\n`` from every class, so ``[^x]`` and ``\\s`` stop
at the end of a line), ``^`` and ``$`` are line anchors, ``$`` matches
before ``\\n`` only (so ``x$`` does not match ``x\\r\\n``, as in GNU grep).
Regular expressions use RE2's syntax (close to POSIX ERE and Perl; no
backreferences or look-around) and its UTF-8 mode: ``.`` is one UTF-8
character and never an invalid byte, ``ignore_case`` folds Unicode
(``é`` matches ``É``).  A case-sensitive literal is compared byte for byte.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import islice, repeat
from typing import Any, Protocol

import re2
from re2 import _re2

try:  # optional (pagebridge[fast]): SIMD substring search for counting
    import stringzilla as _sz
except ImportError:  # pragma: no cover - the fallback is tested by forcing it
    _sz = None

#: Patterns are short: a longer one is a mistake or an attack on the compiler.
MAX_PATTERN = 4096
#: RE2's memory budget per compiled pattern (half its default; the server
#: runs at most ``max_scans`` at once).  A pattern whose automaton does not
#: fit is refused at compile time; at search time the DFA falls back to the
#: (slower, still linear) NFA instead of growing.
REGEX_MAX_MEM = 4 << 20
#: Below this distance from the last match, ``bytes.find`` is cheaper than a
#: call into RE2 (about 2 µs of overhead against ~0.35 ns per byte saved).
NEAR = 8192

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class PatternError(ValueError):
    """The pattern cannot be used: the sentence says why (RE2's own message for a regex)."""


class Matcher(Protocol):
    """Finds the first match of one pattern in a range of a buffer."""

    def search(self, buf: bytes, start: int, end: int) -> int:
        """Offset in ``buf`` of the first match starting in ``[start, end]``, or -1.

        The match lies within ``buf[start:end]``; ``buf`` around the range is
        context for ``^``, ``$`` and ``\\b``.
        """
        ...

    def count_lines(self, buf: bytes, start: int, stop: int, open_end: bool) -> int:
        """Number of lines of ``buf[start:stop]`` that match (the count-only fast path).

        ``buf[start:stop]`` is whole lines; the last one ends without a
        newline when ``open_end`` (so a match at ``stop`` is in it).
        """
        ...


def _options(*, literal: bool, ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors go to the collector, not to the server's stderr
    options.never_nl = True
    options.never_capture = True
    options.max_mem = REGEX_MAX_MEM
    options.literal = literal
    options.case_sensitive = not ignore_case
    # Byte for byte for a case-sensitive literal; UTF-8 (characters, Unicode
    # case folding) for everything else.
    options.encoding = (re2.Options.Encoding.LATIN1 if literal and not ignore_case
                        else re2.Options.Encoding.UTF8)
    return options


def _compile(pattern: bytes, options: re2.Options) -> _re2.RE2:
    # The RE2 object itself, not the re-like wrapper: its search() adds a
    # generator and a match object per call, which doubled the cost per
    # match in the measurements.
    regexp = _re2.RE2(pattern, options)
    if not regexp.ok():
        raise PatternError(regexp.error().decode("utf-8", "replace"))
    return regexp


#: StringZilla when installed (None: the pure loop counts); a test sets it to None.
SIMD: Any = _sz
#: Occurrences tested per C-level call (about a millisecond with the GIL held).
GIL_BATCH = 4096
#: More occurrences than this per matching line, and a step per line (the
#: pure loop) is cheaper than a test per occurrence (~1 µs against ~0.25).
DENSE = 4


def count_literal_lines(buf: bytes, start: int, stop: int, literal: bytes,
                        dense: Callable[[int], int] | None = None) -> int:
    """Lines of ``buf[start:stop]`` holding ``literal`` (non-empty, no newline), by StringZilla.

    No Python step per line: the text is split at the literal's
    occurrences (StringZilla's SIMD search, lazily, so memory stays
    constant), and an occurrence starts a new matching line exactly when
    the text since the previous one holds a newline.  So the count is 1
    for the first occurrence plus the gaps that hold a ``\\n``, that is
    one cheap membership test per occurrence, in C through ``map``.  The
    split is greedy and non-overlapping, which finds two occurrences in a
    line whenever the line has two that do not overlap: the count of
    lines is unaffected.

    A literal found many times per matching line (``=`` in key=value
    logs) makes a test per occurrence dearer than a step per line: after a
    batch showing more than :data:`DENSE` occurrences per matching line,
    the rest goes to ``dense(offset)``, which counts the matching lines
    from ``offset`` (a line start) to ``stop``.
    """
    text = SIMD.Str(buf)[start:stop]
    if text.find(literal) < 0:
        return 0
    pieces = text.split_iter(literal)
    next(pieces)  # the text before the first occurrence
    count = 1
    newline = repeat(b"\n")
    while True:
        # In batches: one C-level call holds the GIL throughout, and a dense
        # literal has millions of occurrences per block; between batches the
        # event loop and the page streams get their turn.
        batch = list(islice(pieces, GIL_BATCH))
        gaps = sum(map(operator.contains, batch, newline))
        count += gaps
        if len(batch) < GIL_BATCH:
            break
        if dense is not None and gaps * DENSE < len(batch):
            last = batch[-1]
            end = last.offset_within(text) + len(last)
            if end == len(text):
                break  # that was the piece after the last occurrence
            # The line of the occurrence after the last piece is counted;
            # the line loop takes over at the next line.
            next_line = text.find(b"\n", end + len(literal)) + 1
            return int(count) + (dense(start + next_line) if next_line > 0 else 0)
    # The last piece follows the last occurrence and is no gap: undo its
    # test.  (The last occurrence found from the end may overlap the
    # split's last one, but only by bytes of the literal, never a newline.)
    if text.find(b"\n", text.rfind(literal) + len(literal)) >= 0:
        count -= 1
    return int(count)


class LiteralMatcher:
    """A case-sensitive literal: ``bytes.find`` near, RE2's skip far."""

    def __init__(self, literal: bytes) -> None:
        self.literal = literal
        self._far = _compile(literal, _options(literal=True, ignore_case=False))

    def search(self, buf: bytes, start: int, end: int) -> int:
        data = buf
        near_end = start + NEAR
        if near_end >= end:
            return data.find(self.literal, start, end)
        found = data.find(self.literal, start, near_end)
        if found >= 0:
            return found
        # Not in the next few KiB: matches are sparse here, let RE2 skip.
        skip_from = near_end - len(self.literal) + 1
        span = self._far.Match(_UNANCHORED, data, skip_from, end)[0]
        return int(span[0])

    def count_lines(self, buf: bytes, start: int, stop: int, open_end: bool) -> int:
        if SIMD is not None and stop > start:
            return count_literal_lines(buf, start, stop, self.literal,
                                       lambda at: self._count_lines(buf, at, stop))
        return self._count_lines(buf, start, stop)

    def _count_lines(self, buf: bytes, start: int, stop: int) -> int:
        # search() inlined: without StringZilla (or for a literal found many
        # times per line) this loop is what `grep -c` runs.
        literal = self.literal
        size = len(literal)
        find = buf.find
        far = self._far.Match
        count = 0
        i = start
        while True:
            near = i + NEAR
            if near < stop:
                p = find(literal, i, near)
                if p < 0:
                    p = far(_UNANCHORED, buf, near - size + 1, stop)[0][0]
                    if p < 0:
                        return count
            else:
                p = find(literal, i, stop)
                if p < 0:
                    return count
            count += 1
            i = find(b"\n", p + size, stop) + 1
            if i <= 0:
                return count


class RegexMatcher:
    """A regular expression (or a literal with ``ignore_case``) on RE2."""

    def __init__(self, pattern: bytes, *, literal: bool, ignore_case: bool) -> None:
        options = _options(literal=literal, ignore_case=ignore_case)
        # Compiled once as given, so an error quotes the user's own pattern...
        _compile(pattern, options)
        # ...and once as used: ``(?m)`` makes ^ and $ line anchors.
        self._regexp = pattern if literal else b"(?m)" + pattern
        self._compiled = _compile(self._regexp, options)

    def search(self, buf: bytes, start: int, end: int) -> int:
        return int(self._compiled.Match(_UNANCHORED, buf, start, end)[0][0])

    def count_lines(self, buf: bytes, start: int, stop: int, open_end: bool) -> int:
        match = self._compiled.Match
        find = buf.find
        count = 0
        i = start
        while i < stop:
            p = match(_UNANCHORED, buf, i, stop)[0][0]
            if p < 0 or (p == stop and not open_end):
                break
            count += 1
            i = find(b"\n", p, stop) + 1
            if i <= 0:
                break
        return count


def compile_pattern(pattern: str | bytes, *, regex: bool = False, ignore_case: bool = False) -> Matcher:
    """Build the matcher for a scan.

    Args:
        pattern: the text to find (UTF-8 when given as ``str``).
        regex: a regular expression (RE2 syntax) rather than a literal.
        ignore_case: fold case (Unicode folding).

    Raises:
        PatternError: too long, containing a newline, or (regex) not
            valid RE2 syntax; the message is a sentence for the collector.
    """
    raw = pattern.encode("utf-8") if isinstance(pattern, str) else bytes(pattern)
    if len(raw) > MAX_PATTERN:
        raise PatternError(f"the pattern is {len(raw)} bytes long; the limit is {MAX_PATTERN}")
    if b"\n" in raw:
        raise PatternError("a pattern cannot contain a newline: matches are found within one line")
    if regex or ignore_case or not raw:
        # (An empty pattern matches every line, as in grep; RE2 handles the
        # empty match at the end of a block that bytes.find would not.)
        return RegexMatcher(raw, literal=not regex, ignore_case=ignore_case)
    return LiteralMatcher(raw)


__all__ = ["MAX_PATTERN", "SIMD", "LiteralMatcher", "Matcher", "PatternError", "RegexMatcher", "compile_pattern",
           "count_literal_lines"]
