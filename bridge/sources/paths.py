"""Turning a collector's path into a real path under the served root.

Every path a collector sends goes through :func:`resolve` before any
file-system call.  The checks run on the *resolved real path*, so a
symlink that leads out of the root is caught however it is spelled.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import ErrorCode, StreamError

#: Longest path accepted, in characters (Linux's PATH_MAX is 4096 bytes).
MAX_PATH_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class Resolved:
    """A path checked to lie under the root."""

    relative: str  # normalised, '/'-separated, '' for the root itself
    real: Path


def clean(path: str, *, show_hidden: bool = False) -> str:
    """Normalise a collector's path or refuse it.

    ``""`` and ``"."`` name the root.  Components ``..``, absolute paths,
    backslashes, NUL bytes and (unless ``show_hidden``) dot files are
    refused; no decoding happens, so ``%2e%2e`` is an ordinary name.
    """
    if len(path) > MAX_PATH_LENGTH:
        raise StreamError(f"path is longer than {MAX_PATH_LENGTH} characters", ErrorCode.BAD_REQUEST)
    if "\x00" in path:
        raise StreamError("path contains a NUL byte", ErrorCode.BAD_REQUEST)
    if "\\" in path:
        raise StreamError("path contains a backslash; use '/' between names", ErrorCode.FORBIDDEN)
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
        parts.append(part)
    return "/".join(parts)


def resolve(root: Path, path: str, *, show_hidden: bool = False) -> Resolved:
    """Resolve ``path`` under ``root`` (itself already a real path).

    Raises:
        StreamError: ``bad_request``, ``forbidden`` or ``not_found``.
    """
    relative = clean(path, show_hidden=show_hidden)
    candidate = root / relative if relative else root
    try:
        real = Path(os.path.realpath(candidate, strict=True))
    except FileNotFoundError:
        raise StreamError(f"{relative or '/'} does not exist", ErrorCode.NOT_FOUND) from None
    except OSError as exc:
        raise _os_error(exc, relative) from None
    if real != root and root not in real.parents:
        raise StreamError(f"{relative} leads outside the served folder", ErrorCode.FORBIDDEN)
    return Resolved(relative, real)


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
    return "special file"


def _os_error(exc: OSError, relative: str) -> StreamError:
    import errno

    if exc.errno in (errno.EACCES, errno.EPERM):
        return StreamError(f"{relative}: permission denied", ErrorCode.FORBIDDEN)
    if exc.errno == errno.ENAMETOOLONG:
        return StreamError("a name in the path is too long", ErrorCode.BAD_REQUEST)
    if exc.errno == errno.ENOTDIR:
        return StreamError(f"{relative}: a component is not a directory", ErrorCode.NOT_FOUND)
    if exc.errno == errno.ELOOP:
        return StreamError(f"{relative}: too many levels of symbolic links", ErrorCode.FORBIDDEN)
    return StreamError(f"{relative}: {exc.strerror}", ErrorCode.IO_ERROR)


os_error = _os_error
