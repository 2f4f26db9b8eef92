"""The scan engine without a server: matchers, the line loop, the line index, against naive references."""

from __future__ import annotations

import contextlib
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.errors import FileChangedError
from bridge.scan import LineScanner, Match, PatternError, compile_pattern
from bridge.scan import matcher as matcher_module
from bridge.scan.index import LineIndex, LineIndexCache
from bridge.scan.lines import clip_text

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- references


def naive_lines(data: bytes) -> list[tuple[int, bytes, bool]]:
    """(offset, line without its newline, ended by a newline) for every line, as grep sees them."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            out.append((pos, data[pos:], False))
            break
        out.append((pos, data[pos:end], True))
        pos = end + 1
    return out


def naive_scan(data: bytes, predicate, *, max_text: int = 1024, keep_cr: bool = False,
               offset: int = 0) -> list[Match]:
    """Matching lines of data[offset:] (the range's first line starts at offset), numbered in the file."""
    first_line = data.count(b"\n", 0, offset) + 1
    out = []
    for number, (pos, line, ended) in enumerate(naive_lines(data[offset:])):
        if predicate(line):
            text = line[:-1] if ended and not keep_cr and line.endswith(b"\r") else line
            clipped, cut = clip_text(text, 0, len(text), max_text)
            out.append(Match(offset + pos, first_line + number, clipped, cut))
    return out


def run_scanner(data: bytes, matcher, *, block: int, overlap: int, offset: int = 0, limit: int = 3,
                **options) -> tuple[list[Match], int]:
    """Drive a LineScanner the way bridge/sources/scan.py does: blocks read at ``pos``."""
    line = data.count(b"\n", 0, offset) + 1
    scanner = LineScanner(matcher, offset=offset, line=line, max_line=block, overlap=overlap, **options)
    out: list[Match] = []
    for _ in range(100_000):
        if scanner.done:
            break
        chunk = data[scanner.pos:scanner.pos + block]
        scanner.load(chunk, final=scanner.pos + block >= len(data))
        while not scanner.exhausted:
            out += scanner.take(limit)
    else:
        raise AssertionError("the scanner made no progress")
    return out, scanner.count


ALPHABET = ["a", "b", "é", "\r", " ", "É"]
lines_st = st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=30)
REGEXES = ["ab", "a[bé]", "^b", "é$", "b a", "(a|é)b", "^$", "a{2}", "É", r"\ra", "a\r$"]


def text_of(lines: list[str], trailing: bool) -> bytes:
    return ("\n".join(lines) + ("\n" if trailing and lines else "")).encode()


# ---------------------------------------------------------------- matchers


def test_literal_regex_and_case() -> None:
    """A literal is bytes, a regex is RE2 (line anchors), ignore_case folds Unicode."""
    data = "x foo\nFOO bar\nzoë\nZOË!\nfoobar\n".encode()
    assert [m.line for m in run_scanner(data, compile_pattern("foo"), block=1 << 20, overlap=8)[0]] == [1, 5]
    assert [m.line for m in run_scanner(data, compile_pattern("foo", ignore_case=True), block=1 << 20,
                                        overlap=8)[0]] == [1, 2, 5]
    assert [m.line for m in run_scanner(data, compile_pattern("^f", regex=True), block=1 << 20,
                                        overlap=8)[0]] == [5]
    assert [m.line for m in run_scanner(data, compile_pattern("zoë", ignore_case=True), block=1 << 20,
                                        overlap=8)[0]] == [3, 4]
    assert [m.text for m in run_scanner(data, compile_pattern("r$", regex=True), block=1 << 20,
                                        overlap=8)[0]] == [b"FOO bar", b"foobar"]


def test_bad_patterns_are_refused_with_the_engine_message() -> None:
    """Invalid RE2 syntax, back-references, multi-line and huge patterns: PatternError with a sentence."""
    with pytest.raises(PatternError, match=r"missing \): a\(b"):
        compile_pattern("a(b", regex=True)
    with pytest.raises(PatternError, match="invalid escape sequence"):
        compile_pattern(r"(a)\1", regex=True)
    assert run_scanner(b"a\n\nb", compile_pattern(""), block=1 << 20, overlap=8)[1] == 3  # grep '' too
    with pytest.raises(PatternError, match="newline"):
        compile_pattern("a\nb")
    with pytest.raises(PatternError, match="limit"):
        compile_pattern("a" * 5000)


@pytest.mark.timeout(20)
def test_evil_regex_is_linear() -> None:
    """(a+)+$ on a long aaaa…b line (exponential for a backtracking engine) finishes, matching nothing."""
    data = b"a" * 200_000 + b"b\n" + b"a" * 50 + b"\n"
    matches, count = run_scanner(data, compile_pattern("(a+)+$", regex=True), block=1 << 20, overlap=64)
    assert count == 1 and matches[0].line == 2
    # Python's backtracking re would take ages on 30 characters already; RE2 does not care.
    evil = compile_pattern("(x+x+)+y", regex=True)
    assert evil.count_lines(b"x" * 100_000 + b"\n", 0, 100_001, False) == 0


def test_invalid_utf8_and_dot() -> None:
    """In a regex '.' is one UTF-8 character and never an invalid byte (as GNU grep in a UTF-8 locale)."""
    data = "aéb\na\xffb\naxb\n".encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff")
    matches, _ = run_scanner(data, compile_pattern("a.b", regex=True), block=1 << 20, overlap=8)
    assert [m.line for m in matches] == [1, 3]
    # A literal is found byte for byte, invalid bytes included.
    assert run_scanner(data, compile_pattern(b"\xffb"), block=1 << 20, overlap=8)[1] == 1


# ---------------------------------------------------------------- the line loop against a reference


@SETTINGS
@given(lines=lines_st, trailing=st.booleans(), needle=st.text(alphabet=ALPHABET[:3], min_size=1, max_size=3),
       block=st.integers(13, 40), limit=st.integers(1, 4), max_text=st.integers(0, 12),
       keep_cr=st.booleans(), offset_seed=st.integers(0, 10**6))
def test_literal_scan_matches_naive(lines, trailing, needle, block, limit, max_text, keep_cr,
                                    offset_seed) -> None:
    """Any text cut in any blocks (long lines included): the literal's matching lines, offsets, numbers, text."""
    data = text_of(lines, trailing)
    offset = offset_seed % (len(data) + 1)
    raw = needle.encode()
    # The server's windows overlap by OVERLAP (64 KiB), more than the longest
    # pattern (MAX_PATTERN): here too the overlap exceeds the literal ('aéé' is 5 bytes).
    # Strictly: a window leaves its last byte to the next one, which starts
    # ``overlap - 1`` bytes before it, so an overlap of len(raw) misses a
    # literal ending exactly at a window's edge.
    overlap = max(4, len(raw) + 1)
    block = max(block, 2 * overlap + 1)  # a block holds more than two overlaps (LineScanner's rule)
    expected = naive_scan(data, lambda line: raw in line, max_text=max_text, keep_cr=keep_cr, offset=offset)
    got, count = run_scanner(data, compile_pattern(raw), block=block, overlap=overlap, offset=offset,
                             limit=limit, max_text=max_text, keep_cr=keep_cr)
    assert got == expected
    assert count == len(expected)
    # Counting alone agrees, and numbering can be switched off.
    assert run_scanner(data, compile_pattern(raw), block=block, overlap=overlap, offset=offset,
                       count_only=True)[1] == len(expected)
    unnumbered, _ = run_scanner(data, compile_pattern(raw), block=block, overlap=overlap, offset=offset,
                                number_lines=False, max_text=max_text, keep_cr=keep_cr)
    assert unnumbered == [m._replace(line=0) for m in expected]


@SETTINGS
@given(lines=lines_st, trailing=st.booleans(), pattern=st.sampled_from(REGEXES),
       ignore_case=st.booleans(), block=st.integers(9, 40), limit=st.integers(1, 4))
def test_regex_scan_matches_naive(lines, trailing, pattern, ignore_case, block, limit) -> None:
    """Regexes (matches shorter than the window overlap) agree with Python's re on each line."""
    data = text_of(lines, trailing)
    flags = re.IGNORECASE if ignore_case else 0
    compiled = re.compile(pattern, flags)
    expected = naive_scan(data, lambda line: compiled.search(line.decode()) is not None)
    got, count = run_scanner(data, compile_pattern(pattern, regex=True, ignore_case=ignore_case),
                             block=block, overlap=4, limit=limit)
    assert got == expected
    assert run_scanner(data, compile_pattern(pattern, regex=True, ignore_case=ignore_case), block=block,
                       overlap=4, count_only=True)[1] == len(expected)


def test_line_longer_than_a_block() -> None:
    """A line of 3 MiB with a block of 256 KiB: found once, at its start, text cut; numbering goes on."""
    long_line = b"x" * (3 << 20) + b" needle " + b"y" * 1000
    data = b"one\n" + long_line + b"\r\nneedle two\n"
    matches, count = run_scanner(data, compile_pattern("needle"), block=256 << 10, overlap=1 << 10,
                                 max_text=10)
    assert matches == [Match(4, 2, b"x" * 10, True), Match(4 + len(long_line) + 2, 3, b"needle two", False)]
    # Across a window boundary too: the needle straddles every possible cut.
    for shift in range(0, 12):
        data = b"a" * (256 << 10) + b"b" * shift + b"needle" + b"\n"
        assert run_scanner(data, compile_pattern("needle"), block=64 << 10, overlap=1 << 10)[1] == 1
    # '$' and '^' only at the real ends of an overlong line.
    data = b"a" * (300 << 10) + b"\n"
    assert run_scanner(data, compile_pattern("a$", regex=True), block=64 << 10, overlap=1 << 10)[1] == 1
    assert run_scanner(data, compile_pattern("^a", regex=True), block=64 << 10, overlap=1 << 10)[1] == 1
    assert run_scanner(data, compile_pattern("^aa$", regex=True), block=64 << 10, overlap=1 << 10)[1] == 0


def test_crlf_and_utf8_text() -> None:
    """Text drops \\r\\n (keep_cr keeps the \\r), '$' is before \\n only, a cut never splits a character."""
    data = "héllo wörld\r\nplain\nlast\r".encode()
    matches, _ = run_scanner(data, compile_pattern("l"), block=1 << 20, overlap=8, max_text=2)
    assert [(m.text, m.cut) for m in matches] == [(b"h", True), (b"pl", True), (b"la", True)]
    matches, _ = run_scanner(data, compile_pattern("l"), block=1 << 20, overlap=8)
    assert [m.text for m in matches] == ["héllo wörld".encode(), b"plain", b"last\r"]
    matches, _ = run_scanner(data, compile_pattern("l"), block=1 << 20, overlap=8, keep_cr=True)
    assert matches[0].text == "héllo wörld\r".encode()
    assert run_scanner(data, compile_pattern("d$", regex=True), block=1 << 20, overlap=8)[1] == 0
    assert run_scanner(data, compile_pattern("d\r$", regex=True), block=1 << 20, overlap=8)[1] == 1


# ---------------------------------------------------------------- the line index


def naive_locate(data: bytes, offset: int) -> tuple[int, int]:
    if not data:
        return 1, 0
    offset = min(offset, len(data) - 1)
    return data.count(b"\n", 0, offset) + 1, data.rfind(b"\n", 0, offset) + 1


@SETTINGS
@given(data=st.binary(max_size=3000).map(lambda b: bytes(c if c % 3 else 10 for c in b)),
       step=st.integers(1, 70), max_checkpoints=st.integers(2, 40), read_size=st.integers(1, 500),
       cuts=st.lists(st.integers(0, 3000), max_size=4))
def test_line_index_agrees_with_counting(data, step, max_checkpoints, read_size, cuts) -> None:
    """Built in one go or grown in pieces, read in any sizes, coarsened or not: offset->line, line->offset, total."""
    index = LineIndex(step=step, max_checkpoints=max_checkpoints, read_size=read_size)

    def read(at: int, size: int) -> bytes:
        return data[at:at + size]

    for cut in sorted(c for c in cuts if c <= len(data)) + [len(data)]:
        if cut >= index.size:
            index.extend(cut, read)
    assert len(index.counts) <= max_checkpoints
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert index.lines == lines
    for x in list(range(0, len(data) + 2, max(1, len(data) // 50))) + [len(data) - 1]:
        if x >= 0:
            assert index.line_of(x, read) == naive_locate(data, x)
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10 and i + 1 < len(data)]
    for n in range(1, lines + 3):
        assert index.line_start(n, read) == starts[min(n, max(1, lines)) - 1]


@SETTINGS
@given(data=st.binary(max_size=3000).map(lambda b: bytes(c if c % 3 else 10 for c in b)),
       step=st.integers(1, 70), max_checkpoints=st.integers(2, 40),
       blocks=st.lists(st.tuples(st.integers(1, 400), st.integers(0, 40)), min_size=1, max_size=60),
       built=st.integers(0, 3000))
def test_line_index_fed_by_a_scan_equals_one_built_by_reading(data, step, max_checkpoints, blocks,
                                                              built) -> None:
    """Blocks a scan read (overlapping, any sizes, from 0 or from what an index holds) give the same index as a pass of its own."""
    reads: list[int] = []

    def read(at: int, size: int) -> bytes:
        reads.append(size)
        return data[at:at + size]

    reference = LineIndex(step=step, max_checkpoints=max_checkpoints)
    reference.extend(len(data), read)
    fed = LineIndex(step=step, max_checkpoints=max_checkpoints)
    fed.extend(min(built, len(data)), read)  # what a look-up built before the scan
    reads.clear()
    pos = 0
    for size, back in blocks * (len(data) // 100 + 1):
        if fed.size >= len(data):
            break
        fed.feed(pos, data[pos:pos + size], read)
        pos = max(0, min(len(data), pos + size) - back)  # the next block starts at an earlier line
    fed.feed(pos, data[pos:], read)
    assert fed.size == len(data)
    assert (list(fed.counts), fed.step, fed.lines, fed._fingerprint) == (
        list(reference.counts), reference.step, reference.lines, reference._fingerprint)
    if len(data) // step < max_checkpoints // 2:  # never coarsened: at most a step read for a fingerprint
        assert all(size <= step for size in reads)
    for x in range(0, len(data) + 1, max(1, len(data) // 40)):
        assert fed.line_of(x, read) == naive_locate(data, x)


def test_line_index_cache_fed_by_scans() -> None:
    """The cache starts an index from a block at 0, extends it only from what it holds, restarts it for another file."""
    data = b"".join(b"line %d\n" % i for i in range(20_000))
    cache = LineIndexCache(1 << 20, step=4096)
    counted: list[tuple[str, int]] = []
    cache.on_count = lambda how, size: counted.append((how, size))

    def read(at: int, size: int) -> bytes:
        return data[at:at + size]

    assert cache.feed("f", len(data), 1, 50_000, data[50_000:60_000], read) is None  # no index to extend
    assert len(cache) == 0 and not cache._locks
    rng = random.Random(3)
    for at in range(0, len(data), 30_000):
        start = max(0, at - 100)
        block = data[start:at + 30_000]
        marks = cache.feed("f", len(data), 1, start, block, read)
        assert marks is not None
        # The checkpoints handed back number any stretch of the block as counting would.
        for _ in range(50):
            i, j = sorted(rng.randrange(len(block) + 1) for _ in range(2))
            assert marks.newlines(block, start, i, j) == block.count(b"\n", i, j)
    assert cache.read_bytes == 0 and cache.fed_bytes == len(data) and counted == [
        ("scanned", size) for how, size in counted]
    counted_read = cache.counting(read)
    with cache.lookup("f", len(data), counted_read, version=1) as index:
        assert index.lines == 20_000
        assert index.line_start(19_000, counted_read) == data.index(b"line 18999\n")
    assert 0 < cache.read_bytes <= 4096
    # Truncated and written again (another version, shorter): a block at 0 starts a new index.
    short = b"a\nb\n"
    assert cache.feed("f", len(short), 2, 0, short, lambda at, size: short[at:at + size]) is not None
    assert cache.fed_bytes == len(data) + 4
    with cache.lookup("f", len(short), lambda at, size: short[at:at + size], version=2) as index:
        assert index.lines == 2


def test_newline_counters_agree() -> None:
    """StringZilla's count (when installed) and bytes.count give the same newlines on any slice."""
    from bridge.scan import index as index_module

    rng = random.Random(5)
    data = bytes(rng.choice(b"ab\n\r\x00\xff") for _ in range(200_000))
    index_module.newline_counter()  # loads StringZilla if it is installed
    counters = [index_module._count_bytes] + ([index_module._count_simd] if index_module._sz else [])
    for _ in range(300):
        i, j = sorted(rng.randrange(len(data) + 1) for _ in range(2))
        assert {count(data, i, j) for count in counters} == {data.count(b"\n", i, j)}


def test_line_index_grows_with_the_file_and_notices_rewrites() -> None:
    """Appends are counted from where the index stopped; a rewrite (or shrink) builds a new index."""
    data = bytearray(b"".join(b"line %d\n" % i for i in range(50_000)))
    reads: list[tuple[int, int]] = []

    def read(at: int, size: int) -> bytes:
        reads.append((at, size))
        return bytes(data[at:at + size])

    cache = LineIndexCache(1 << 20, step=4096)
    with cache.lookup("f", len(data), read, version=1) as index:
        assert index.lines == 50_000
    old_size = len(data)
    data += b"tail 1\ntail 2\n"
    reads.clear()
    with cache.lookup("f", len(data), read, version=2) as index:
        assert index.lines == 50_002
        assert index.line_of(len(data) - 2, read)[0] == 50_002
    counted = sum(size for at, size in reads)
    assert counted < 3 * 4096 + 64, "an append is counted, not the whole file"
    assert min(at for at, _ in reads) >= (old_size // 4096 - 1) * 4096
    # The same size at another version (rewritten in place): counted again.
    data[0:4] = b"LI\nE"
    with cache.lookup("f", len(data), read, version=3) as index:
        assert index.lines == 50_003
    # Shorter: a new file.
    del data[100:]
    with cache.lookup("f", len(data), read, version=4) as index:
        assert index.lines == data.count(b"\n") + 1  # the last line has no newline


def test_line_index_cache_stays_within_its_memory() -> None:
    """Many files: the cache evicts the least recently used to stay within max_bytes."""
    files = {i: b"x\n" * (2000 * (i % 5 + 1)) for i in range(40)}
    cache = LineIndexCache(max_bytes=4096, step=16)
    for key, data in files.items():
        with cache.lookup(key, len(data), lambda at, size, d=data: d[at:at + size], version=key) as index:
            assert index.lines == data.count(b"\n")
        assert cache.memory <= max(4096, index.memory)
    assert 0 < len(cache) < 40
    # One index larger than the budget is kept while it is the one in use, then dropped.
    big = b"y\n" * 50_000
    with cache.lookup("big", len(big), lambda at, size: big[at:at + size]) as index:
        assert index.memory > 4096
    with cache.lookup(0, len(files[0]), lambda at, size: files[0][at:at + size], version=0):
        pass
    assert cache.memory <= 4096


def test_line_index_file_that_shrinks_while_counted() -> None:
    """A read that comes back short means the file changed: FileChangedError, not a wrong count."""
    index = LineIndex(step=8)
    with pytest.raises(FileChangedError):
        index.extend(100, lambda at, size: b"a\n" * 10 if at == 0 else b"")


def test_random_blocks_large_text() -> None:
    """A bigger random text with many matches per block, batches of random size, against the reference."""
    rng = random.Random(7)
    words = [b"alpha", b"beta", b"gamma", b"needle", "zoë".encode(), b"\r"]
    data = b"\n".join(b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 12)))
                      for _ in range(5000))
    expected = naive_scan(data, lambda line: b"needle" in line)
    for block in (300, 4096, 1 << 20):
        got, _ = run_scanner(data, compile_pattern("needle"), block=block, overlap=64, limit=rng.randrange(1, 50))
        assert got == expected


def test_window_overlap_covers_the_longest_pattern() -> None:
    """A literal inside a line longer than a block is always found because windows overlap by more
    than the longest pattern the server accepts."""
    from bridge.scan.lines import OVERLAP
    from bridge.scan.matcher import MAX_PATTERN

    assert OVERLAP > MAX_PATTERN


# ---------------------------------------------------------------- counting a literal (grep -c)


@contextlib.contextmanager
def simd(enabled: bool, batch: int = 4096):
    """Count with StringZilla (when installed; ``batch`` occurrences at a time) or with the pure loop."""
    saved, saved_batch = matcher_module.SIMD, matcher_module.GIL_BATCH
    if enabled and saved is None:
        pytest.skip("stringzilla is not installed (pagebridge[fast])")
    matcher_module.SIMD = saved if enabled else None
    matcher_module.GIL_BATCH = batch
    try:
        yield
    finally:
        matcher_module.SIMD, matcher_module.GIL_BATCH = saved, saved_batch


@pytest.mark.parametrize(("enabled", "batch"), [(True, 4096), (True, 1), (True, 5), (True, 9), (False, 4096)],
                         ids=["stringzilla", "stringzilla-batch-1", "stringzilla-batch-5", "stringzilla-batch-9",
                              "pure"])
def test_count_literal_lines_exact_cases(enabled: bool, batch: int) -> None:
    """Several occurrences in a line, overlapping ones, CRLF, a last line without newline, sub-ranges;
    small batches hand dense stretches to the line loop at every possible point."""
    cases = [
        (b"ab ab ab\nab\n\nxab\r\nab", b"ab"),  # three in a line, CRLF, unterminated last line
        (b"aaaa\naaa\naa\na\n", b"aa"),  # self-overlapping literal
        (b"aaaa\naaa\naa\na\n", b"aaa"),
        (b"x\r\nx\r\nxx\r", b"x\r"),  # a literal ending in \r
        (b"no match here\n", b"zebra"),
        (b"ab", b"ab"), (b"\n\n\nab\n", b"ab"), (b"ab\n\n\n", b"ab"), (b"", b"ab"),
        ("zoë ë\nË ë\n".encode(), "ë".encode()),
        (b"a=1 b=2 c=3\nnone\nd=4\n=\n==\nx\n=y=z=", b"="),  # dense: many per line
        (b"k=v\n" + b"=a=b=c=d=e\nx\n" * 6 + b"k=v\n=\n", b"="),  # dense after sparse, and back
    ]
    with simd(enabled, batch):
        for data, literal in cases:
            expected = sum(1 for _, line, _ in naive_lines(data) if literal in line)
            assert compile_pattern(literal).count_lines(data, 0, len(data), True) == expected, (data, literal)
            # Any range of whole lines: the count of the lines in it.
            starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
            for a in starts:
                for b in starts[starts.index(a):]:
                    want = sum(1 for _, line, _ in naive_lines(data[a:b]) if literal in line)
                    assert compile_pattern(literal).count_lines(data, a, b, False) == want, (data, a, b)


@SETTINGS
@given(lines=lines_st, trailing=st.booleans(), needle=st.text(alphabet=ALPHABET[:5], min_size=1, max_size=3),
       block=st.integers(13, 40), enabled=st.booleans(), batch=st.sampled_from([1, 2, 5, 9, 4096]))
def test_count_only_matches_naive_either_engine(lines, trailing, needle, block, enabled, batch) -> None:
    """grep -c's path, StringZilla's and the pure loop's, equals the reference in any blocks."""
    data = text_of(lines, trailing)
    raw = needle.encode()
    expected = sum(1 for _, line, _ in naive_lines(data) if raw in line)
    if enabled and matcher_module.SIMD is None:
        return
    overlap = max(4, len(raw) + 1)
    with simd(enabled, batch):
        assert run_scanner(data, compile_pattern(raw), block=max(block, 2 * overlap + 1), overlap=overlap,
                           count_only=True)[1] == expected
