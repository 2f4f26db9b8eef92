"""The catalog: what a served root holds, and which pager answers an ``open``.

Listing and choosing a pager live here, in one place, so the server shell
never touches the file system itself.  The root given to ``pagebridge
serve`` picks the catalog (:func:`open_catalog`): a folder (or a
``file://`` URL) is served by :class:`Catalog`, any other URL
(``s3://bucket/prefix``, ``gs://``, ``memory://``...) by
:class:`~bridge.sources.objects.ObjectCatalog`.  Both answer the same calls:
``mount``, ``make_pager``, ``list``, ``check``, ``close`` and ``describe``.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..core import messages as m
from ..errors import ErrorCode, StreamError
from .base import Pager
from .files import FilePager
from .paths import clean, escape_name, open_beneath, os_error

#: Entries returned by one listing; beyond this the listing says so (``truncated``).
MAX_LISTING = 10_000
#: Listings kept for repeated requests: a folder's listing is reused while the
#: folder's own mtime is unchanged and for at most LISTING_TTL seconds (file
#: sizes change without touching the folder).  1 000 requests for one big
#: folder then cost one scan, not 1 000.
LISTING_CACHE = 8
LISTING_TTL = 2.0

#: What listing a folder gives: (normalised path, entries, truncated).
Listing = tuple[str, list[dict[str, Any]], bool]

#: A factory for a mounted source: given the open request, return a Pager.
SourceFactory = Callable[[m.Open], "Pager | Awaitable[Pager]"]


class Catalog:
    """The files under ``root`` plus the sources mounted by name.

    ``refuse_links``: refuse (and leave out of listings) files with more
    than one hard link, since a hard link to a file outside the root cannot
    be told apart from a file of the root by its path (off by default).
    """

    def __init__(self, root: Path, *, show_hidden: bool = False, refuse_links: bool = False) -> None:
        self.root = root
        self.show_hidden = show_hidden
        self.refuse_links = refuse_links
        self.mounts: dict[str, SourceFactory] = {}
        #: Where list() runs list_directory (None: the event loop's default pool).
        self.executor: Executor | None = None
        # (relative path) -> (folder identity, time listed, entries, truncated); guarded
        # by a lock because listings run in a thread pool.
        self._listings: collections.OrderedDict[
            str, tuple[tuple[int, int, int], float, list[dict[str, Any]], bool]] = \
            collections.OrderedDict()
        self._listings_lock = threading.Lock()

    def mount(self, path: str, factory: SourceFactory) -> None:
        """Serve ``factory(request)`` for opens of ``path`` (checked before files)."""
        self.mounts[path.strip("/")] = factory

    async def make_pager(self, request: m.Open) -> tuple[Pager, str]:
        """The pager for an open request, and the normalised path to announce.

        Only the spelling is checked here (no file-system call on the event
        loop): the pager opens the file beneath the root in its own thread.
        """
        factory = self.mounts.get(request.path.strip("/"))
        if factory is not None:
            pager = factory(request)
            if isinstance(pager, Awaitable):
                pager = await pager
            return pager, request.path.strip("/")
        relative = clean(request.path, show_hidden=self.show_hidden)
        # The name that appears in messages: never the server's real path.
        shown = relative or "/"
        if request.follow:
            from .follow import FollowPager

            return FollowPager(relative, request.offset, text=request.text, if_match=request.if_match,
                               name=shown, root=self.root, refuse_links=self.refuse_links), relative
        return FilePager(relative, request.offset, request.length, if_match=request.if_match,
                         name=shown, text=request.text, root=self.root,
                         refuse_links=self.refuse_links), relative

    def file_path(self, path: str) -> tuple[str, str]:
        """A file to scan or locate: (normalised path, name for messages).

        Only the spelling is checked, as for :meth:`make_pager`; the scan
        opens it beneath the root (:func:`~bridge.sources.paths.open_file`).
        Mounted sources are refused: they are streams, not files.
        """
        if path.strip("/") in self.mounts:
            raise StreamError(f"{path.strip('/')[:200]} is a live source, not a file: only files "
                              "can be scanned or located", ErrorCode.NOT_A_FILE)
        relative = clean(path, show_hidden=self.show_hidden)
        return relative, relative or "/"

    async def list(self, path: str) -> Listing:
        """(normalised path, entries, truncated) of a folder, listed in a worker thread
        (of ``executor`` when the server gave one: its bounded catalog pool)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.list_directory, path)

    async def check(self) -> None:
        """Nothing to check beyond what the constructor did."""

    async def close(self) -> None:
        """Nothing to release: files are opened per stream."""

    def describe(self) -> str:
        """The served root, for the operator."""
        return str(self.root)

    def list_directory(self, path: str) -> Listing:
        """(normalised path, entries, truncated) of a folder under the root.

        Names are in their wire form (:func:`~bridge.sources.paths.escape_name`).
        Blocking: run it in a worker thread.
        """
        relative = clean(path, show_hidden=self.show_hidden)
        entries: list[dict[str, Any]] = []
        truncated = False
        if not relative:
            for name in sorted(self.mounts):
                entries.append({"name": name, "kind": "source", "size": None, "mtime": None})
        folder = open_beneath(self.root, relative, want="dir")
        try:
            st = os.fstat(folder.fd)
            identity = (st.st_dev, st.st_ino, st.st_mtime_ns)
            cached = self._cached_listing(relative, identity)
            if cached is not None:
                return relative, entries + cached[0], cached[1]
            with os.scandir(folder.fd) as it:
                # Sort by (folders first, name) before the cap, so a capped
                # listing is the first MAX_LISTING entries, not an arbitrary
                # subset; is_dir() uses the directory's own type field (no stat).
                candidates = sorted(
                    ((not _is_dir(entry), escape_name(entry.name), entry) for entry in it
                     if self.show_hidden or not entry.name.startswith(".")),
                    key=lambda c: (c[0], c[1]))
            for _, name, entry in candidates:
                if len(entries) >= MAX_LISTING:
                    truncated = True
                    break
                info = self._entry(relative, name, entry)
                if info is not None:
                    entries.append(info)
        except OSError as exc:
            raise os_error(exc, relative or "/") from None
        finally:
            os.close(folder.fd)
        mounted = len(self.mounts) if not relative else 0
        self._remember_listing(relative, identity, entries[mounted:], truncated)
        return relative, entries, truncated

    def _cached_listing(self, key: str, identity: tuple[int, int, int],
                        ) -> tuple[builtins.list[dict[str, Any]], bool] | None:
        with self._listings_lock:
            hit = self._listings.get(key)
            if hit is None or hit[0] != identity or time.monotonic() - hit[1] > LISTING_TTL:
                return None
            self._listings.move_to_end(key)
            return hit[2], hit[3]

    def _remember_listing(self, key: str, identity: tuple[int, int, int],
                          entries: builtins.list[dict[str, Any]], truncated: bool) -> None:
        with self._listings_lock:
            self._listings[key] = (identity, time.monotonic(), entries, truncated)
            self._listings.move_to_end(key)
            while len(self._listings) > LISTING_CACHE:
                self._listings.popitem(last=False)

    def _entry(self, folder: str, name: str, entry: os.DirEntry[str]) -> dict[str, Any] | None:
        try:
            if entry.is_symlink():
                # Followed the way open follows it: a link out of the root is
                # not ours to show, nor is a dangling one.
                st = open_beneath(self.root, f"{folder}/{name}" if folder else name, want="stat").stat
            else:
                st = entry.stat(follow_symlinks=False)
        except (OSError, StreamError):
            return None  # vanished meanwhile, dangling, or leading out
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        if kind == "file" and self.refuse_links and st.st_nlink > 1:
            return None
        return {"name": name, "kind": kind, "size": st.st_size if kind == "file" else None,
                "mtime": st.st_mtime}


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


class AnyCatalog(Protocol):
    """What the server shell needs from a catalog, of files or of objects."""

    mounts: dict[str, SourceFactory]

    def mount(self, path: str, factory: SourceFactory) -> None: ...
    async def make_pager(self, request: m.Open) -> tuple[Pager, str]: ...
    async def list(self, path: str) -> Listing: ...
    async def check(self) -> None: ...
    async def close(self) -> None: ...
    def describe(self) -> str: ...


def local_root(root: str | os.PathLike[str]) -> Path | None:
    """The folder a root names (a path or a ``file://`` URL), or None for an object store URL."""
    text = os.fspath(root)
    if text.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{text!r}: a file:// URL must name a local folder")
        return Path(unquote(parts.path))
    if "://" in text:
        return None
    return Path(text)


def open_catalog(root: str | os.PathLike[str], *, show_hidden: bool = False,
                 storage_options: dict[str, Any] | None = None) -> AnyCatalog:
    """The catalog for a served root: a folder, or an object store URL.

    Raises:
        ValueError: the folder does not exist, the URL is not understood, or
            the package its scheme needs is not installed (the message names
            the extra to install, e.g. ``pagebridge[s3]``).
    """
    folder = local_root(root)
    if folder is None:
        from .objects import ObjectCatalog

        return ObjectCatalog(os.fspath(root), show_hidden=show_hidden, storage_options=storage_options)
    real = Path(os.path.realpath(folder))
    if not real.is_dir():
        raise ValueError(f"{root} is not a directory")
    return Catalog(real, show_hidden=show_hidden)


__all__ = ["MAX_LISTING", "AnyCatalog", "Catalog", "Listing", "SourceFactory", "local_root", "open_catalog"]
