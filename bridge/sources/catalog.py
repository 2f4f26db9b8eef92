"""The catalog: what a served root holds, and which pager answers an ``open``.

Listing and choosing a pager live here, in one place, so the server shell
never touches the file system itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..core import messages as m
from ..errors import ErrorCode, StreamError
from .base import Pager
from .files import FilePager
from .paths import describe_kind, os_error, resolve

#: Entries returned by one listing; beyond this the listing says so (``truncated``).
MAX_LISTING = 10_000

#: A factory for a mounted source: given the open request, return a Pager.
SourceFactory = Callable[[m.Open], "Pager | Awaitable[Pager]"]


class Catalog:
    """The files under ``root`` plus the sources mounted by name."""

    def __init__(self, root: Path, *, show_hidden: bool = False) -> None:
        self.root = root
        self.show_hidden = show_hidden
        self.mounts: dict[str, SourceFactory] = {}

    def mount(self, path: str, factory: SourceFactory) -> None:
        """Serve ``factory(request)`` for opens of ``path`` (checked before files)."""
        self.mounts[path.strip("/")] = factory

    async def make_pager(self, request: m.Open) -> tuple[Pager, str]:
        """The pager for an open request, and the normalised path to announce."""
        factory = self.mounts.get(request.path.strip("/"))
        if factory is not None:
            pager = factory(request)
            if isinstance(pager, Awaitable):
                pager = await pager
            return pager, request.path.strip("/")
        resolved = resolve(self.root, request.path, show_hidden=self.show_hidden)
        # The name that appears in messages: never the server's real path.
        shown = resolved.relative or "/"
        if request.follow:
            from .follow import FollowPager

            return FollowPager(resolved.real, request.offset, text=request.text,
                               if_match=request.if_match, name=shown), resolved.relative
        return FilePager(resolved.real, request.offset, request.length, if_match=request.if_match,
                         name=shown, text=request.text), resolved.relative

    def resolve_file(self, path: str) -> tuple[Path, str]:
        """A file to scan or index: (real path, normalised path).  Blocking.

        Mounted sources are refused: they are streams, not files.
        """
        if path.strip("/") in self.mounts:
            raise StreamError(f"{path.strip('/')[:200]} is a live source, not a file: only files "
                              "can be scanned or located", ErrorCode.NOT_A_FILE)
        resolved = resolve(self.root, path, show_hidden=self.show_hidden)
        return resolved.real, resolved.relative

    def list_directory(self, path: str) -> tuple[str, list[dict[str, Any]], bool]:
        """(normalised path, entries, truncated) of a folder under the root.

        Blocking: run it in a worker thread.
        """
        resolved = resolve(self.root, path, show_hidden=self.show_hidden)
        entries: list[dict[str, Any]] = []
        truncated = False
        if not resolved.relative:
            for name in sorted(self.mounts):
                entries.append({"name": name, "kind": "source", "size": None, "mtime": None})
        try:
            st = os.stat(resolved.real)
            if not stat.S_ISDIR(st.st_mode):
                raise StreamError(f"{resolved.relative} is a {describe_kind(st.st_mode)}, "
                                  "not a directory", ErrorCode.NOT_A_DIRECTORY)
            with os.scandir(resolved.real) as it:
                # Sort by (folders first, name) before the cap, so a capped
                # listing is the first MAX_LISTING entries, not an arbitrary
                # subset; is_dir() uses the directory's own type field (no stat).
                candidates = sorted(
                    ((not _is_dir(entry), entry.name, entry) for entry in it
                     if self.show_hidden or not entry.name.startswith(".")),
                    key=lambda c: (c[0], c[1]))
            for _, _, entry in candidates:
                if len(entries) >= MAX_LISTING:
                    truncated = True
                    break
                info = self._entry(entry)
                if info is not None:
                    entries.append(info)
        except OSError as exc:
            raise os_error(exc, resolved.relative) from None
        return resolved.relative, entries, truncated

    def _entry(self, entry: os.DirEntry[str]) -> dict[str, Any] | None:
        try:
            st = entry.stat(follow_symlinks=True)
            if entry.is_symlink():
                real = Path(os.path.realpath(entry.path))
                if real != self.root and self.root not in real.parents:
                    return None  # a link out of the root is not ours to show
        except OSError:
            return None  # dangling link or vanished meanwhile
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        return {"name": entry.name, "kind": kind, "size": st.st_size if kind == "file" else None,
                "mtime": st.st_mtime}


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


__all__ = ["MAX_LISTING", "Catalog", "SourceFactory"]
