"""pagebridge grep and cat --line as subprocesses against a server process, beside GNU grep and sed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bridge.scan.posix import TranslationError, posix_to_re2
from tests.conftest import REPO

CLI = [sys.executable, "-m", "bridge"]
GREP = shutil.which("grep")
ENV = {**os.environ, "LC_ALL": "C.UTF-8"}

LOG = "".join([
    "2024-05-01 INFO start\n",
    "2024-05-01 ERROR disk full on /dev/sda1\n",
    "2024-05-01 WARN retry 1 (timeout)\r\n",
    "2024-05-01 error: lower-case\n",
    "zoë wrote ÉTÉ\n",
    "a+b and a*b {1} [x]\n",
    "\n",
    "tab\there\n",
    "x" * 200_000 + " needle at the end of a long line\n",
    "last line without newline ERROR",
])

CASES = [
    ["-F", "ERROR"], ["-F", "error"], ["-i", "-F", "error"], ["-n", "-F", "ERROR"], ["-c", "-F", "ERROR"],
    ["-c", "-F", "nothing here"], ["-F", "nothing here"], ["-n", "-i", "été"], ["-F", "a+b"],
    ["-E", "ERROR|WARN"], ["-E", "^2024-05-01 (INFO|WARN)"], ["-E", r"\(timeout\)"], ["-E", "[0-9]+ \\("],
    ["-n", "-E", "e$"], ["-E", "^$"], ["-c", "-E", "."], ["-n", "-E", "needle"], ["needle"],
    ["a+b"], ["a\\+b"], ["a*b"], ["\\(sda\\)1"], ["[[:upper:]]\\{4\\}"], ["-E", "[[:upper:]]{4}"],
    ["-E", "\\<retry\\>"], ["x\\{3\\}"], ["-E", "{1}"], ["[]x[]"], ["-E", "a[*]b"], ["-i", "zOË"],
    ["-c", "-E", "ERROR"], ["-c", ""], ["-n", "-F", ""],
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("grep-root")
    (root / "app.log").write_bytes(LOG.encode())
    proc = subprocess.Popen([*CLI, "serve", str(root), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    url = ""
    for _ in range(10):
        line = proc.stdout.readline()
        if "websocket:" in line:
            url = line.split()[-1]
            break
    assert url, "the server did not start"
    yield root, url
    proc.terminate()
    proc.wait(10)


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=timeout, cwd=REPO, env=ENV)


@pytest.mark.skipif(GREP is None, reason="GNU grep is not installed")
@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_grep_output_and_status_equal_gnu_grep(served, args: list[str]) -> None:
    """Same stdout, byte for byte, and the same exit status as GNU grep on the same file."""
    root, url = served
    assert GREP is not None
    theirs = subprocess.run([GREP, *args, str(root / "app.log")], capture_output=True, env=ENV)
    ours = run("grep", *args, url, "app.log")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr


def test_grep_help() -> None:
    """grep --help describes the command (and exits 0)."""
    result = run("grep", "--help")
    assert result.returncode == 0 and b"usage: pagebridge grep" in result.stdout


def test_grep_errors_exit_2(served) -> None:
    """A bad regex, a back-reference, a missing file: a sentence on stderr and status 2."""
    _, url = served
    bad = run("grep", "-E", "a(b", url, "app.log")
    assert bad.returncode == 2 and b"missing )" in bad.stderr and bad.stdout == b""
    backref = run("grep", "\\(a\\)\\1", url, "app.log")
    assert backref.returncode == 2 and b"back-reference" in backref.stderr
    missing = run("grep", "x", url, "nope.log")
    assert missing.returncode == 2 and b"not_found" in missing.stderr
    assert run("grep", "-c", "--follow", "x", url, "app.log").returncode == 2


def test_grep_follow_prints_appended_lines(served) -> None:
    """--follow prints the matching lines as they are appended (and keeps running)."""
    root, url = served
    log = root / "live.log"
    log.write_bytes(b"old match\nnothing\n")
    proc = subprocess.Popen([*CLI, "grep", "-n", "--follow", "match", url, "live.log"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"1:old match\n"
        with open(log, "ab") as f:
            f.write(b"skip\nnew match\n")
        assert proc.stdout.readline() == b"4:new match\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cat_line_and_lines(served) -> None:
    """cat --line N [--lines K] prints what sed -n 'N,M p' prints."""
    root, url = served
    data = LOG.encode()
    lines = data.split(b"\n")
    for line, count in [(1, 1), (2, 3), (8, 2), (10, 5), (10, None), (3, None), (11, 1), (1, 0)]:
        ours = run("cat", url, "app.log", "--line", str(line), *(("--lines", str(count)) if count is not None else ()))
        assert ours.returncode == 0, ours.stderr
        last = len(lines) if count is None else line - 1 + count
        expected = b"\n".join(lines[line - 1:last])
        if last < len(lines) and line - 1 < last:
            expected += b"\n"
        assert ours.stdout == expected, (line, count)
    assert run("cat", url, "app.log", "--line", "0").returncode == 2


def test_posix_translation() -> None:
    """GNU BRE/ERE to RE2: operators, literals, brackets, word edges, refusals."""
    assert posix_to_re2("a+b(c)", extended=False) == r"a\+b\(c\)"
    assert posix_to_re2(r"a\+b\(c\)\{2\}", extended=False) == "a+b(c){2}"
    assert posix_to_re2("*a", extended=False) == r"\*a"
    assert posix_to_re2("^*a", extended=False) == r"^\*a"
    assert posix_to_re2(r"[\]x]", extended=True) == r"[\\]x]"  # the class holds a backslash
    assert posix_to_re2("[]a]", extended=True) == r"[\]a]"
    assert posix_to_re2("[[:digit:]]+", extended=True) == "[[:digit:]]+"
    assert posix_to_re2(r"\<word\>", extended=True) == r"\bword\b"
    assert posix_to_re2("{1}x", extended=True) == "x"
    assert posix_to_re2("a{1", extended=True) == r"a\{1"
    with pytest.raises(TranslationError, match="back-references"):
        posix_to_re2(r"(a)\1", extended=True)
    with pytest.raises(TranslationError, match="unmatched"):
        posix_to_re2("[abc", extended=True)
