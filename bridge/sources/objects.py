"""Object storage: a served root in S3, or in any fsspec file system.

``pagebridge serve s3://bucket/prefix`` serves the objects under
``prefix`` the way a folder is served: listing, random access, resume with
``if_match``, the same path rules (:func:`bridge.sources.paths.clean`, so no
name can leave the prefix).  What differs from files, and why:

* **Identity from the store.**  The etag is built from what the store says
  about the object (S3: its ETag, its version id when the bucket is
  versioned, its size), never from the replica that serves it, so every
  replica announces the same etag for the same object and a download begun
  on one replica resumes on another (docs/protocol.md section 5).
* **Range reads only on credit.**  :class:`ObjectPager` reads when the
  server asks it for a page, i.e. when the collector has credit.  Each read
  is one ranged GET of a *block* (``read_ahead`` bytes, at least a page),
  and while the collector takes a block the next one is fetched: at most two
  blocks per stream are held or in flight, whatever the collector does.
* **Replacement is detected, never spliced.**  Every ranged GET names the
  announced version: by ``VersionId`` on a versioned bucket (the announced
  version keeps being paged even if the key is overwritten or deleted, as an
  open file is), else by ``If-Match`` with the announced ETag, and the
  ETag of each answer is compared too (for stores that ignore If-Match).  A
  replaced or deleted object ends the stream with ``file_changed``.
* **No follow.**  An object is written whole, so ``follow`` is refused with
  ``bad_request``.

S3 goes through ``s3fs`` (its aiobotocore client, on the server's event
loop); its configuration is the standard AWS one (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., ``AWS_MAX_ATTEMPTS``).  Other
fsspec URLs (``gs://``, ``az://``, ``memory://``, ``http(s)://``...) use
the file system's blocking API in a small thread pool of their own.  Both
need optional packages: ``pip install 'pagebridge[s3]'`` (or ``[gcs]``,
``[azure]``, ``[http]``); a missing one is named in the error.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..core import messages as m
from ..errors import ErrorCode, FileChangedError, StreamError
from .base import Pager, SourceInfo, cut_at_line
from .paths import clean, escape_name, fs_parts

log = logging.getLogger("bridge.objects")

#: Bytes fetched by one ranged GET (and so held per stream, twice at most).
#: Object stores answer each request after a round trip of milliseconds
#: (tens on a real cloud store); 4 MiB blocks keep that cost under a few
#: percent at hundreds of MiB/s while two blocks per stream stay small.
#: bench/objects.py measures it.
DEFAULT_READ_AHEAD = 4 * 1024 * 1024
#: Requests to the store in flight at once, for the whole server process:
#: one stream per connection is common, but a thousand of them must not open
#: a thousand connections to the store.
DEFAULT_MAX_REQUESTS = 32
#: Entries one listing returns (the same cap as for folders).
MAX_LISTING = 10_000

#: Package to install for each URL scheme, and the extra that brings it.
EXTRAS = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"),
    "http": ("aiohttp", "http"), "https": ("aiohttp", "http"),
}

T = TypeVar("T")


def is_url(root: str) -> bool:
    """True if a served root names an object store (``scheme://...``) rather than a folder."""
    return "://" in root and not root.startswith("file://")


def missing_package(scheme: str, exc: ImportError) -> ValueError:
    """The error for a URL whose file system package is not installed."""
    package, extra = EXTRAS.get(scheme, ("fsspec", "objects"))
    return ValueError(f"serving {scheme}:// URLs needs the {package} package, which is not installed "
                      f"({exc}); install it with: pip install 'pagebridge[{extra}]'")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One version of one object, as the store describes it."""

    size: int
    etag: str  # pagebridge's etag: the same on every replica
    mtime: float | None = None
    store_etag: str | None = None  # the store's own ETag, sent back in If-Match
    version: str | None = None  # version id on a versioned bucket


def object_etag(size: int, store_etag: str | None, version: str | None, mtime: float | None) -> str:
    """The etag announced for an object: store ETag, version id and size.

    Only what the store says goes in, so every replica computes the same
    string.  Stores without an ETag fall back to the modification time.
    """
    ident = (store_etag or "").strip('"') or (f"t{mtime!r}" if mtime is not None else "")
    parts = ["o", ident, f"{size:x}"]
    if version:
        parts.append(version)
    return ":".join(parts)


class Backend:
    """What an object store must do for pagebridge.  Keys are full store keys."""

    async def stat(self, key: str, name: str) -> ObjectInfo:
        """Describe the object at ``key`` (``name`` is what errors may show)."""
        raise NotImplementedError

    async def read(self, key: str, info: ObjectInfo, start: int, end: int, name: str) -> bytes:
        """Bytes ``[start, end)`` of exactly the version ``info`` describes, or FileChangedError."""
        raise NotImplementedError

    async def listdir(self, key: str, name: str) -> tuple[list[dict[str, Any]], bool]:
        """(entries, truncated) of the "folder" ``key`` (ending in ``/``, or ``""``).

        ``name`` is the collector's path, ``""`` for the served root, which
        is listed (empty) even when nothing was ever written under it.
        """
        raise NotImplementedError

    async def check(self) -> None:
        """Raise ValueError when the root cannot be served at all (missing bucket)."""

    async def close(self) -> None:
        """Release connections and threads."""


def _entry_name_ok(name: str, show_hidden: bool) -> bool:
    """Only names a collector could open again are listed."""
    if not name or name in (".", ".."):
        return False
    return show_hidden or not name.startswith(".")


def _key(relative: str) -> str:
    """The store key (below the prefix) of a cleaned wire path: ``\\xNN`` escapes undone."""
    return "/".join(fs_parts(relative))


def _timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def sort_entries(entries: list[dict[str, Any]]) -> None:
    """Folders first, then by name in code-point order (as for folders on disk)."""
    entries.sort(key=lambda e: (e["kind"] != "dir", e["name"]))


# ---------------------------------------------------------------------- S3


class S3Backend(Backend):
    """S3 and S3-compatible stores through s3fs's aiobotocore client.

    The client is made on first use, on the event loop that uses it (the
    server's), and every request holds a slot of a semaphore shared by the
    whole process (``max_requests``) so that connections to the store stay
    bounded.
    """

    def __init__(self, bucket: str, *, show_hidden: bool = False,
                 max_requests: int = DEFAULT_MAX_REQUESTS, storage_options: dict[str, Any] | None = None,
                 ) -> None:
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:
            raise missing_package("s3", exc) from None
        self.bucket = bucket
        self.show_hidden = show_hidden
        self.max_requests = max_requests
        self.storage_options = dict(storage_options or {})
        self._client: Any = None
        self._client_lock: asyncio.Lock | None = None
        self._limit: asyncio.Semaphore | None = None

    async def _s3(self) -> Any:
        if self._client is not None:
            return self._client
        if self._client_lock is None:
            self._client_lock = asyncio.Lock()
            self._limit = asyncio.Semaphore(self.max_requests)
        async with self._client_lock:
            if self._client is None:
                import s3fs

                options = dict(self.storage_options)
                config = dict(options.pop("config_kwargs", {}))
                config.setdefault("max_pool_connections", self.max_requests)
                fs = s3fs.S3FileSystem(asynchronous=True, loop=asyncio.get_running_loop(),
                                       skip_instance_cache=True, config_kwargs=config, **options)
                # set_session() builds the aiobotocore client from the standard
                # AWS configuration (environment, profile, AWS_ENDPOINT_URL).
                self._client = await fs.set_session()
        return self._client

    async def _call(self, method: str, **kwargs: Any) -> Any:
        client = await self._s3()
        assert self._limit is not None
        async with self._limit:
            return await getattr(client, method)(Bucket=self.bucket, **kwargs)

    def _error(self, exc: Exception, name: str, *, reading: bool = False) -> StreamError:
        """A store error as a stream error; details stay in the server's log."""
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                log.warning("bucket %s does not exist", self.bucket)
                return StreamError("the object store's bucket does not exist", ErrorCode.NOT_FOUND)
            if code in ("PreconditionFailed", "412") or status == 412:
                return FileChangedError(f"{name} was replaced while it was being paged")
            if code in ("NoSuchKey", "NoSuchVersion", "404", "NotFound") or status == 404:
                if reading:
                    return FileChangedError(f"{name} was deleted while it was being paged")
                return StreamError(f"{name or '/'} does not exist", ErrorCode.NOT_FOUND)
            if code in ("InvalidRange", "416") or status == 416:
                return FileChangedError(f"{name} shrank while it was being paged")
            if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                        "InvalidClientTokenId", "AllAccessDisabled") or status == 403:
                log.warning("object store refused %s: %s %s", name, code, error.get("Message", ""))
                return StreamError(f"{name or '/'}: permission denied by the object store",
                                   ErrorCode.FORBIDDEN)
            log.warning("object store error on %s: %s %s", name, code, error.get("Message", ""))
            return StreamError(f"{name or '/'}: the object store answered {code or status}",
                               ErrorCode.IO_ERROR)
        if isinstance(exc, NoCredentialsError):
            log.warning("no credentials for the object store: %s", exc)
            return StreamError("the server has no credentials for its object store", ErrorCode.IO_ERROR)
        log.warning("object store unreachable while reading %s: %r", name, exc)
        return StreamError(f"{name or '/'}: the object store is unreachable ({type(exc).__name__})",
                           ErrorCode.IO_ERROR)

    async def stat(self, key: str, name: str) -> ObjectInfo:
        from botocore.exceptions import ClientError

        try:
            head = await self._call("head_object", Key=key)
        except ClientError as exc:
            error = self._error(exc, name)
            if error.code is ErrorCode.NOT_FOUND and await self._is_folder(key + "/"):
                raise StreamError(f"{name} is a directory, not a regular file",
                                  ErrorCode.NOT_A_FILE) from None
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 \
                    and not await self._bucket_exists():
                raise StreamError("the object store's bucket does not exist", ErrorCode.NOT_FOUND) from None
            raise error from None
        except Exception as exc:  # botocore's and aiohttp's: unreachable store, timeouts
            raise self._error(exc, name) from None
        size = int(head["ContentLength"])
        store_etag = head.get("ETag")
        version = head.get("VersionId")
        if version == "null":  # an unversioned object in a bucket with versioning suspended
            version = None
        mtime = _timestamp(head.get("LastModified"))
        return ObjectInfo(size, object_etag(size, store_etag, version, mtime), mtime, store_etag, version)

    async def _is_folder(self, prefix: str) -> bool:
        with contextlib.suppress(Exception):
            answer = await self._call("list_objects_v2", Prefix=prefix, MaxKeys=1)
            return bool(answer.get("KeyCount") or answer.get("Contents"))
        return False

    async def _bucket_exists(self) -> bool:
        try:
            await self._call("head_bucket")
        except Exception as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError):
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                return bool(status != 404)
            return True
        return True

    async def read(self, key: str, info: ObjectInfo, start: int, end: int, name: str) -> bytes:
        kwargs: dict[str, Any] = {"Key": key, "Range": f"bytes={start}-{end - 1}"}
        if info.version:
            kwargs["VersionId"] = info.version  # this version, whatever happens to the key
        elif info.store_etag:
            kwargs["IfMatch"] = info.store_etag  # 412 if the key now holds another object
        client = await self._s3()
        assert self._limit is not None
        try:
            async with self._limit:
                answer = await client.get_object(Bucket=self.bucket, **kwargs)
                body = answer["Body"]
                try:
                    data: bytes = await body.read()
                finally:
                    body.close()
        except Exception as exc:
            raise self._error(exc, name, reading=True) from None
        etag = answer.get("ETag")
        if not info.version and info.store_etag and etag and etag != info.store_etag:
            raise FileChangedError(f"{name} was replaced while it was being paged")
        if len(data) != end - start:
            raise FileChangedError(f"{name} changed while it was being paged "
                                   f"(asked for {end - start} bytes at {start}, got {len(data)})")
        return data

    async def listdir(self, key: str, name: str) -> tuple[list[dict[str, Any]], bool]:
        client = await self._s3()
        assert self._limit is not None
        entries: list[dict[str, Any]] = []
        truncated = False
        found = False
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"Prefix": key, "Delimiter": "/"}
                if token:
                    kwargs["ContinuationToken"] = token
                async with self._limit:
                    page = await client.list_objects_v2(Bucket=self.bucket, **kwargs)
                for common in page.get("CommonPrefixes", ()):
                    found = True
                    child = common["Prefix"][len(key):].rstrip("/")
                    if _entry_name_ok(child, self.show_hidden):
                        entries.append({"name": escape_name(child), "kind": "dir", "size": None,
                                        "mtime": None})
                for obj in page.get("Contents", ()):
                    found = True
                    child = obj["Key"][len(key):]
                    if "/" in child or not _entry_name_ok(child, self.show_hidden):
                        continue  # the folder's own marker object, or an unopenable name
                    entries.append({"name": escape_name(child), "kind": "file", "size": int(obj["Size"]),
                                    "mtime": _timestamp(obj.get("LastModified"))})
                if len(entries) > MAX_LISTING:
                    del entries[MAX_LISTING:]
                    truncated = True
                    break
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    break
        except Exception as exc:
            raise self._error(exc, name) from None
        if not found and name:
            # An empty prefix is no folder: tell a file from nothing at all.
            try:
                await self._call("head_object", Key=key.rstrip("/"))
            except Exception:
                raise StreamError(f"{name} does not exist", ErrorCode.NOT_FOUND) from None
            raise StreamError(f"{name} is a file, not a directory", ErrorCode.NOT_A_DIRECTORY)
        sort_entries(entries)
        return entries, truncated

    async def check(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await self._call("head_bucket")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise ValueError(f"bucket {self.bucket!r} does not exist") from None
            # 403 and the like: the credentials may still allow GetObject; serve.
            log.warning("cannot check bucket %s: %s", self.bucket, exc)
        except Exception as exc:
            log.warning("cannot reach the object store to check bucket %s: %r", self.bucket, exc)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


# ------------------------------------------------------------------ fsspec


class FsspecBackend(Backend):
    """Any fsspec file system, through its blocking API in a bounded thread pool.

    Stores without conditional reads are checked the only way fsspec allows:
    the object is described again before each block is read, and a different
    identity (size, ETag or modification time) is ``file_changed``.
    """

    def __init__(self, fs: Any, *, show_hidden: bool = False, threads: int = 8) -> None:
        self.fs = fs
        self.show_hidden = show_hidden
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pagebridge-objects")

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def _error(self, exc: Exception, name: str, *, reading: bool = False) -> StreamError:
        if isinstance(exc, StreamError):
            return exc
        if isinstance(exc, FileNotFoundError):
            if reading:
                return FileChangedError(f"{name} was deleted while it was being paged")
            return StreamError(f"{name or '/'} does not exist", ErrorCode.NOT_FOUND)
        if isinstance(exc, PermissionError):
            return StreamError(f"{name or '/'}: permission denied by the object store", ErrorCode.FORBIDDEN)
        log.warning("object store error on %s: %r", name, exc)
        return StreamError(f"{name or '/'}: the object store failed ({type(exc).__name__})",
                           ErrorCode.IO_ERROR)

    def _describe(self, info: dict[str, Any]) -> ObjectInfo:
        size = int(info.get("size") or 0)
        store_etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
        version = info.get("VersionId") or info.get("version_id") or info.get("generation")
        mtime = None
        for field in ("LastModified", "last_modified", "mtime", "updated", "created"):
            if info.get(field) is not None:
                mtime = _timestamp(info[field])
                break
        store_etag = None if store_etag is None else str(store_etag)
        version = None if version is None else str(version)
        return ObjectInfo(size, object_etag(size, store_etag, version, mtime), mtime, store_etag, version)

    async def stat(self, key: str, name: str) -> ObjectInfo:
        try:
            info = await self._run(self.fs.info, key)
        except Exception as exc:
            raise self._error(exc, name) from None
        if info.get("type") == "directory":
            raise StreamError(f"{name or '/'} is a directory, not a regular file", ErrorCode.NOT_A_FILE)
        return self._describe(info)

    async def read(self, key: str, info: ObjectInfo, start: int, end: int, name: str) -> bytes:
        try:
            now = await self.stat(key, name)
        except StreamError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                raise FileChangedError(f"{name} was deleted while it was being paged") from None
            raise
        if now.etag != info.etag:
            raise FileChangedError(f"{name} was replaced while it was being paged")
        try:
            data = await self._run(self.fs.cat_file, key, start=start, end=end)
        except Exception as exc:
            raise self._error(exc, name, reading=True) from None
        if len(data) != end - start:
            raise FileChangedError(f"{name} changed while it was being paged")
        return bytes(data)

    async def listdir(self, key: str, name: str) -> tuple[list[dict[str, Any]], bool]:
        path = key.rstrip("/") or "/"
        try:
            info = await self._run(self.fs.info, path) if name else {"type": "directory"}
            if info.get("type") != "directory":
                raise StreamError(f"{name} is a file, not a directory", ErrorCode.NOT_A_DIRECTORY)
            children = await self._run(self.fs.ls, path, detail=True)
        except Exception as exc:
            if not name and isinstance(exc, FileNotFoundError):
                return [], False  # an empty root: nothing written yet
            raise self._error(exc, name) from None
        entries: list[dict[str, Any]] = []
        truncated = False
        for child in children:
            child_name = str(child.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
            if not _entry_name_ok(child_name, self.show_hidden):
                continue
            if len(entries) >= MAX_LISTING:
                truncated = True
                break
            if child.get("type") == "directory":
                entries.append({"name": escape_name(child_name), "kind": "dir", "size": None, "mtime": None})
            else:
                described = self._describe(child)
                entries.append({"name": escape_name(child_name), "kind": "file", "size": described.size,
                                "mtime": described.mtime})
        sort_entries(entries)
        return entries, truncated

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------- pager


class ObjectPager(Pager):
    """Pages ``[offset, offset+length)`` of one object version by ranged reads.

    A read starts only when the server asks for a page (the collector has
    credit); it fetches a block of ``read_ahead`` bytes (at least the page),
    and once a page has been taken from a block the next block is fetched in
    the background.  So a stream holds at most two blocks, in memory or in
    flight, whatever its collector does.
    """

    def __init__(self, backend: Backend, key: str, name: str, offset: int = 0, length: int | None = None,
                 *, if_match: str | None = None, text: bool = False,
                 read_ahead: int = DEFAULT_READ_AHEAD, callback: Callable[..., Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(callback, **kwargs)
        if read_ahead <= 0:
            raise ValueError("read_ahead must be positive")
        self.backend = backend
        self.key = key
        self.name = name
        self.offset = offset
        self.length = length
        self.if_match = if_match
        self.text = text
        self.read_ahead = read_ahead
        self.info: ObjectInfo | None = None
        self.reads = 0  # ranged reads issued (the tests and the benchmark count them)
        self._pos = offset  # next byte to page
        self._end = offset
        self._buffer = memoryview(b"")  # bytes from _pos on, already fetched
        self._fetched_to = offset  # end of what is fetched or being fetched
        self._ahead: asyncio.Task[bytes] | None = None

    async def start(self) -> SourceInfo:
        info = await self.backend.stat(self.key, self.name)
        if self.if_match is not None and self.if_match != info.etag:
            raise FileChangedError(f"{self.name} has changed since etag {self.if_match} (now {info.etag})")
        if self.offset > info.size:
            raise StreamError(f"offset {self.offset} is beyond the end of {self.name} ({info.size} bytes)",
                              ErrorCode.BAD_REQUEST)
        self.info = info
        available = info.size - self.offset
        length = available if self.length is None else min(self.length, available)
        self._end = self.offset + length
        return SourceInfo(size=info.size, length=length, mtime=info.mtime, etag=info.etag)

    @property
    def exhausted(self) -> bool:
        return self.info is not None and self._pos >= self._end

    def _fetch(self, size: int) -> Awaitable[bytes]:
        """Read the next block (at least ``size`` bytes) after what is fetched."""
        assert self.info is not None
        start = self._fetched_to
        end = min(self._end, start + max(size, self.read_ahead))
        self._fetched_to = end
        self.reads += 1
        return self.backend.read(self.key, self.info, start, end, self.name)

    async def next_page(self, size: int) -> bytes | None:
        want = min(size, self._end - self._pos)
        if want <= 0:
            return None
        while len(self._buffer) < want:
            if self._ahead is not None:
                task, self._ahead = self._ahead, None
                block = await task
            else:
                block = await self._fetch(want - len(self._buffer))
            self._buffer = memoryview(bytes(self._buffer) + block) if self._buffer else memoryview(block)
        page = bytes(self._buffer[:want])
        if self.text and self._pos + len(page) < self._end:
            page = cut_at_line(page)
        self._buffer = self._buffer[len(page):]
        self._pos += len(page)
        if self._ahead is None and self._fetched_to < self._end:
            # Credit brought us here: fetch the next block while this one is paged.
            self._ahead = asyncio.ensure_future(self._fetch(size))
        return page

    def close(self) -> None:
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            task.cancel()
            # A read that failed meanwhile is of no interest any more.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._buffer = memoryview(b"")


# ----------------------------------------------------------------- catalog


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, bucket or host part, prefix without slashes) of a store URL."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc and parts.scheme not in ("memory",):
        raise ValueError(f"{url!r} is not an object store URL (scheme://bucket/prefix)")
    prefix = parts.path.strip("/")
    if parts.scheme == "memory":
        # memory://a/b: fsspec treats "a" as the first folder, not a host.
        prefix = "/".join(p for p in (parts.netloc, prefix) if p)
        return parts.scheme, "", prefix
    return parts.scheme, parts.netloc, prefix


def make_backend(url: str, *, show_hidden: bool = False,
                 storage_options: dict[str, Any] | None = None,
                 max_requests: int = DEFAULT_MAX_REQUESTS) -> tuple[Backend, str]:
    """The backend for a store URL and the key prefix of the served root ("" or ending in /)."""
    scheme, bucket, prefix = split_url(url)
    if scheme in ("s3", "s3a"):
        if not bucket:
            raise ValueError(f"{url!r} names no bucket")
        backend: Backend = S3Backend(bucket, show_hidden=show_hidden, max_requests=max_requests,
                                     storage_options=storage_options)
        return backend, (prefix + "/" if prefix else "")
    try:
        import fsspec

        fs = fsspec.filesystem(scheme, **(storage_options or {}))
    except ImportError as exc:
        raise missing_package(scheme, exc) from None
    except ValueError as exc:  # unknown protocol
        raise ValueError(f"cannot serve {scheme}:// URLs: {exc}") from None
    generic = FsspecBackend(fs, show_hidden=show_hidden)
    if scheme in ("http", "https"):
        root = url.rstrip("/")
    elif scheme == "memory":
        root = "/" + prefix
    else:
        root = "/".join(p for p in (bucket, prefix) if p)
    return generic, root.rstrip("/") + "/"


class ObjectCatalog:
    """A served root in object storage, plus the sources mounted by name.

    The same interface as :class:`bridge.sources.catalog.Catalog`.
    """

    def __init__(self, url: str, *, show_hidden: bool = False,
                 storage_options: dict[str, Any] | None = None,
                 read_ahead: int = DEFAULT_READ_AHEAD, max_requests: int = DEFAULT_MAX_REQUESTS) -> None:
        self.url = url
        self.show_hidden = show_hidden
        self.read_ahead = read_ahead
        self.backend, self.prefix = make_backend(url, show_hidden=show_hidden,
                                                 storage_options=storage_options,
                                                 max_requests=max_requests)
        self.mounts: dict[str, Any] = {}

    def describe(self) -> str:
        """The root, for the operator (credentials in the URL are not shown)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{parts.path}"

    def mount(self, path: str, factory: Any) -> None:
        """Serve ``factory(request)`` for opens of ``path`` (checked before objects)."""
        self.mounts[path.strip("/")] = factory

    async def make_pager(self, request: m.Open) -> tuple[Pager, str]:
        """The pager for an open request, and the normalised path to announce."""
        factory = self.mounts.get(request.path.strip("/"))
        if factory is not None:
            pager = factory(request)
            if isinstance(pager, Awaitable):
                pager = await pager
            return pager, request.path.strip("/")
        relative = clean(request.path, show_hidden=self.show_hidden)
        if request.follow:
            raise StreamError("follow is not available for objects in object storage: an object is "
                              "written whole, so it never grows; open it without follow",
                              ErrorCode.BAD_REQUEST)
        if not relative:
            raise StreamError("/ is a directory, not a regular file", ErrorCode.NOT_A_FILE)
        return ObjectPager(self.backend, self.prefix + _key(relative), relative, request.offset, request.length,
                           if_match=request.if_match, text=request.text,
                           read_ahead=self.read_ahead), relative

    async def list(self, path: str) -> tuple[str, builtins.list[dict[str, Any]], bool]:
        """(normalised path, entries, truncated) of a "folder" of the store."""
        relative = clean(path, show_hidden=self.show_hidden)
        key = self.prefix + _key(relative) + "/" if relative else self.prefix
        entries, truncated = await self.backend.listdir(key, relative)
        if not relative:
            mounted = [{"name": name, "kind": "source", "size": None, "mtime": None}
                       for name in sorted(self.mounts)]
            entries = mounted + entries
            sort_entries(entries)
        return relative, entries, truncated

    async def check(self) -> None:
        """Fail early (ValueError) if the root cannot be served, e.g. a missing bucket."""
        await self.backend.check()

    async def close(self) -> None:
        await self.backend.close()


__all__ = ["DEFAULT_READ_AHEAD", "Backend", "FsspecBackend", "ObjectCatalog", "ObjectInfo", "ObjectPager",
           "S3Backend", "is_url", "make_backend", "object_etag", "split_url"]
