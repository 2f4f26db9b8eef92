"""Turning a collector's path into an open file under the served root.

Every path a collector sends goes through :func:`clean` (spelling rules,
no file-system call) and is then opened by :func:`open_beneath`, which
walks it one component at a time from a descriptor of the root:

* each component is looked at with ``fstatat(AT_SYMLINK_NOFOLLOW)`` and
  opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so the
  kernel never follows a symlink on our behalf;
* a symlink is read (``readlinkat``) and its target walked the same way,
  only while it stays inside the root (``..`` above the root, or an
  absolute target outside the root's real path, is ``forbidden``);
* if a component changes between its look and its open (a file swapped for
  a symlink), ``O_NOFOLLOW`` makes the open fail and the walk looks again.

So what is opened is what was checked: there is no window between a check
of the path and the open in which a swapped symlink could lead outside.

Names on disk are bytes; names on the wire are UTF-8 text.  A name's bytes
that are not printable UTF-8 text (invalid UTF-8, control characters
U+0000-U+001F and U+007F) and the backslash itself are written ``\\xNN``
(two lowercase hex digits) in listings, and :func:`clean` maps exactly
those escapes back, so a listed name can always be opened as listed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ..errors import ErrorCode, StreamError

#: Longest path accepted, in characters (Linux's PATH_MAX is 4096 bytes).
MAX_PATH_LENGTH = 4096
#: Symlinks followed while resolving one path (Linux's own limit is 40).
MAX_SYMLINKS = 40

_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the look cannot block the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY


# ---------------------------------------------------------------- names


def escape_name(name: str) -> str:
    """The wire form of a file name from ``os.scandir`` (surrogate-escaped str).

    Undecodable bytes (U+DC80-U+DCFF), C0 controls, DEL and the backslash
    become ``\\xNN``; everything else is kept.
    """
    if name.isprintable() and "\\" not in name:
        return name  # the usual case: nothing to escape (surrogates are not printable)
    out = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or ch == "\\":
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_name(part: str) -> str:
    """The file-system name (surrogate-escaped str) of one wire path component.

    Only the canonical escapes that :func:`escape_name` produces are
    accepted: any other backslash, a ``\\xNN`` of a byte that needs no
    escape, or bytes that spell valid UTF-8 (``\\xc3\\xa9`` for ``é``)
    are refused, so every file has exactly one wire name.
    """
    if "\\" not in part:
        return part
    if "\\" in _ESCAPE.sub("", part):
        raise StreamError("a backslash in a path may only start a \\xNN escape of a listed name",
                          ErrorCode.FORBIDDEN)

    def byte(match: re.Match[str]) -> str:
        value = int(match.group(1), 16)
        return chr(0xDC00 + value) if value >= 0x80 else chr(value)

    name = _ESCAPE.sub(byte, part)
    if "\x00" in name:
        raise StreamError("path contains a NUL byte", ErrorCode.BAD_REQUEST)
    if escape_name(os.fsdecode(os.fsencode(name))) != part:
        raise StreamError(f"{part[:64]!r} is not a name as the server lists it "
                          "(\\xNN escapes only for bytes that are not printable UTF-8)",
                          ErrorCode.FORBIDDEN)
    return name


def clean(path: str, *, show_hidden: bool = False) -> str:
    """Normalise a collector's path (wire form) or refuse it.

    ``""`` and ``"."`` name the root.  Components ``..``, absolute paths,
    backslashes other than the ``\\xNN`` escapes of listed names, NUL bytes
    and (unless ``show_hidden``) dot files are refused; nothing is
    URL-decoded, so ``%2e%2e`` is an ordinary name.
    """
    if len(path) > MAX_PATH_LENGTH:
        raise StreamError(f"path is longer than {MAX_PATH_LENGTH} characters", ErrorCode.BAD_REQUEST)
    if "\x00" in path:
        raise StreamError("path contains a NUL byte", ErrorCode.BAD_REQUEST)
    if path.startswith("/"):
        raise StreamError("absolute paths are not allowed; paths are relative to the served root",
                          ErrorCode.FORBIDDEN)
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise StreamError("'..' is not allowed in paths", ErrorCode.FORBIDDEN)
        if part.startswith(".") and not show_hidden:
            raise StreamError(f"hidden name {part[:64]!r} is not served", ErrorCode.FORBIDDEN)
        unescape_name(part)  # refuses stray backslashes and non-canonical escapes
        parts.append(part)
    return "/".join(parts)


def fs_parts(relative: str) -> list[str]:
    """The file-system names of a cleaned path's components."""
    return [unescape_name(part) for part in relative.split("/") if part]


# ---------------------------------------------------------------- opening


@dataclass(frozen=True, slots=True)
class Opened:
    """What :func:`open_beneath` found: a descriptor (or -1), its stat, its real place."""

    fd: int
    stat: os.stat_result
    real: tuple[str, ...]  # file-system names of its real path below the root


def open_beneath(root: Path, relative: str, *, want: Literal["file", "dir", "stat"] = "file",
                 refuse_links: bool = False) -> Opened:
    """Open (or stat) the cleaned path ``relative`` without ever leaving ``root``.

    ``want="file"`` opens a regular file (read-only, blocking reads; stat
    first, so FIFOs, devices and sockets are refused without being opened);
    ``"dir"`` opens a folder; ``"stat"`` only returns what the path names
    (following symlinks inside the root) with ``fd == -1``.  ``root`` must
    be a real path.  With ``refuse_links``, a file with other hard links
    (``st_nlink > 1``) is ``forbidden``: a hard link to a file outside the
    root cannot be told apart from the file itself by its path.

    Raises:
        StreamError: ``not_found``, ``forbidden``, ``bad_request``,
            ``not_a_file``, ``not_a_directory`` or ``io_error``.
    """
    shown = relative or "/"
    try:
        return _Walk(root, shown, want, refuse_links).run(fs_parts(relative))
    except OSError as exc:
        raise os_error(exc, shown) from None


class _Walk:
    """One resolution: holds the root's descriptor and the current folder's."""

    def __init__(self, root: Path, shown: str, want: str, refuse_links: bool) -> None:
        self.root = root
        self.shown = shown
        self.want = want
        self.refuse_links = refuse_links
        self.hops = 0
        self.root_fd = -1

    def outside(self) -> StreamError:
        return StreamError(f"{self.shown} leads outside the served folder", ErrorCode.FORBIDDEN)

    def hop(self) -> None:
        self.hops += 1
        if self.hops > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links")

    def run(self, parts: list[str]) -> Opened:
        root_fd = self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        cur = root_fd
        real: list[str] = []
        pending = deque(parts)
        try:
            while pending:
                part = pending.popleft()
                if part in ("", "."):
                    continue
                if part == "..":  # only from a symlink's target
                    if not real:
                        raise self.outside()
                    real.pop()
                    cur = self._chdir(cur, self._walk_again(root_fd, real))
                    continue
                try:
                    st = os.stat(part, dir_fd=cur, follow_symlinks=False)
                except FileNotFoundError:
                    raise StreamError(f"{self.shown} does not exist", ErrorCode.NOT_FOUND) from None
                if stat.S_ISLNK(st.st_mode):
                    self.hop()
                    target = self._readlink(part, cur)
                    if target is None:  # no longer a symlink: look again
                        pending.appendleft(part)
                        continue
                    if target.startswith("/"):
                        inside = self._inside(target)
                        if inside is None:
                            raise self.outside()
                        real.clear()
                        cur = self._chdir(cur, root_fd)
                        pending.extendleft(reversed(inside))
                    else:
                        pending.extendleft(reversed(target.split("/")))
                    continue
                if pending:  # a folder on the way
                    if not stat.S_ISDIR(st.st_mode):
                        raise StreamError(f"{self.shown}: a component is not a directory",
                                          ErrorCode.NOT_FOUND)
                    fd = self._open(part, cur, _DIR_FLAGS)
                    if fd is None:  # became a symlink since the look: look again
                        pending.appendleft(part)
                        continue
                    cur = self._chdir(cur, fd)
                    real.append(part)
                    continue
                result = self._last(part, st, cur, real + [part])
                if result is None:
                    pending.appendleft(part)
                    continue
                return result
            # The path ended on a folder we hold (the root, or a link to a folder's ".").
            return self._here(cur, root_fd, tuple(real))
        finally:
            if cur != root_fd:
                os.close(cur)
            os.close(root_fd)

    def _inside(self, target: str) -> list[str] | None:
        parts = PurePosixPath(target).parts
        prefix = self.root.parts
        if parts[:len(prefix)] != prefix:
            return None
        return list(parts[len(prefix):])

    def _chdir(self, cur: int, new: int) -> int:
        """Make ``new`` the current folder, closing the previous one (never the root's)."""
        if cur != new and cur != self.root_fd:
            os.close(cur)
        return new

    def _readlink(self, part: str, cur: int) -> str | None:
        try:
            return os.readlink(part, dir_fd=cur)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # replaced by a file since the look
                return None
            if exc.errno == errno.ENOENT:
                raise StreamError(f"{self.shown} does not exist", ErrorCode.NOT_FOUND) from None
            raise

    def _open(self, part: str, cur: int, flags: int) -> int | None:
        """Open ``part`` in ``cur`` without following a symlink; None if it now is one."""
        try:
            return os.open(part, flags, dir_fd=cur)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.hop()
                return None
            if exc.errno == errno.ENOENT:
                raise StreamError(f"{self.shown} does not exist", ErrorCode.NOT_FOUND) from None
            raise

    def _walk_again(self, root_fd: int, real: list[str]) -> int:
        """A descriptor of root/real..., walked again with O_NOFOLLOW (after a '..')."""
        fd = root_fd
        for part in real:
            new = self._open(part, fd, _DIR_FLAGS)
            if fd != root_fd:
                os.close(fd)
            if new is None:
                raise self.outside()  # a folder we had walked became a symlink
            fd = new
        return fd

    def _last(self, part: str, st: os.stat_result, cur: int, real: list[str]) -> Opened | None:
        if self.want == "stat":
            return Opened(-1, st, tuple(real))
        if self.want == "dir":
            if not stat.S_ISDIR(st.st_mode):
                raise StreamError(f"{self.shown} is a {describe_kind(st.st_mode)}, not a directory",
                                  ErrorCode.NOT_A_DIRECTORY)
            fd = self._open(part, cur, _DIR_FLAGS)
            if fd is None:
                return None
            return Opened(fd, os.fstat(fd), tuple(real))
        check_regular(st, self.shown)
        fd = self._open(part, cur, _FILE_FLAGS)
        if fd is None:
            return None
        try:
            fst = os.fstat(fd)
            check_regular(fst, self.shown)  # swapped for a FIFO since the look
            if self.refuse_links and fst.st_nlink > 1:
                raise StreamError(f"{self.shown} has other hard links; this server does not serve "
                                  "those", ErrorCode.FORBIDDEN)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return Opened(fd, fst, tuple(real))

    def _here(self, cur: int, root_fd: int, real: tuple[str, ...]) -> Opened:
        st = os.fstat(cur)
        if self.want == "stat":
            return Opened(-1, st, real)
        if self.want == "file":
            raise StreamError(f"{self.shown} is a directory, not a regular file", ErrorCode.NOT_A_FILE)
        return Opened(os.dup(cur), st, real)


def open_file(path: str | os.PathLike[str], *, root: Path | None = None, shown: str | None = None,
              refuse_links: bool = False) -> tuple[int, os.stat_result, Path]:
    """The one way pagebridge opens a regular file for reading.

    With ``root``, ``path`` is a cleaned wire path opened by
    :func:`open_beneath`; without, ``path`` is a path of the caller's own
    (an operator's mount), opened after a stat so that a FIFO, device or
    socket is refused without being opened.  Returns the descriptor (blocking
    reads), its stat and its real path.
    """
    if root is not None:
        opened = open_beneath(root, os.fspath(path), want="file", refuse_links=refuse_links)
        return opened.fd, opened.stat, root.joinpath(*opened.real)
    name = shown if shown is not None else os.path.basename(os.fspath(path))
    try:
        check_regular(os.stat(path), name)
        fd = os.open(path, _FILE_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        raise os_error(exc, name) from None
    try:
        st = os.fstat(fd)
        check_regular(st, name)
        if refuse_links and st.st_nlink > 1:
            raise StreamError(f"{name} has other hard links; this server does not serve those",
                              ErrorCode.FORBIDDEN)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st, Path(os.path.realpath(path))


def check_regular(st: os.stat_result, relative: str) -> None:
    """Refuse anything but a regular file: directories, FIFOs, devices, sockets."""
    if stat.S_ISREG(st.st_mode):
        return
    kind = describe_kind(st.st_mode)
    raise StreamError(f"{relative} is a {kind}, not a regular file", ErrorCode.NOT_A_FILE)


def describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special file"


def os_error(exc: OSError, relative: str) -> StreamError:
    """The StreamError (code and sentence) for an OSError on ``relative``."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StreamError(f"{relative}: permission denied", ErrorCode.FORBIDDEN)
    if exc.errno == errno.ENAMETOOLONG:
        return StreamError("a name in the path is too long", ErrorCode.BAD_REQUEST)
    if exc.errno == errno.ENOENT:
        return StreamError(f"{relative} does not exist", ErrorCode.NOT_FOUND)
    if exc.errno == errno.ENOTDIR:
        return StreamError(f"{relative}: a component is not a directory", ErrorCode.NOT_FOUND)
    if exc.errno == errno.ELOOP:
        return StreamError(f"{relative}: too many levels of symbolic links", ErrorCode.FORBIDDEN)
    if exc.errno == errno.ENXIO:
        return StreamError(f"{relative} is a socket or device, not a regular file", ErrorCode.NOT_A_FILE)
    return StreamError(f"{relative}: {exc.strerror}", ErrorCode.IO_ERROR)


__all__ = ["MAX_PATH_LENGTH", "MAX_SYMLINKS", "Opened", "check_regular", "clean", "describe_kind",
           "escape_name", "fs_parts", "open_beneath", "open_file", "os_error", "unescape_name"]
