"""Object storage roots against a real S3 API server (moto's, in a subprocess).

The catalog and its pagers are driven here as the server drives them (an
open request in, ``start`` then ``next_page`` on credit); the tests through
a running pagebridge server are in test_objects_server.py.  One moto server
serves the whole module, with IAM auth on: every request is signed by a key
moto knows, and the reader key is really refused on the secret bucket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.core import messages as m
from bridge.errors import ErrorCode, FileChangedError, StreamError
from bridge.sources.catalog import Catalog, open_catalog
from bridge.sources.objects import ObjectCatalog, ObjectPager
from tests.moto_support import Credentials, MotoServer

pytest.importorskip("s3fs")
pytest.importorskip("moto")

#: The objects the module's fixture puts at the root (tests add others).
FIXED = {"docs", "big.bin", "empty", "text.log"}
BLOCK = 64 * 1024  # read_ahead in these tests: small, so a few hundred KiB span many blocks
PAGE = 16 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    """Bytes whose every 4-byte word says where it is: a splice would show."""
    words = (size + 3) // 4
    return b"".join(((i * 2654435761 + seed) & 0xFFFFFFFF).to_bytes(4, "big") for i in range(words))[:size]


class Store:
    """The module's moto server, its buckets and its users."""

    def __init__(self, moto: MotoServer, admin: Credentials, reader: Credentials) -> None:
        self.moto = moto
        self.admin = admin
        self.reader = reader
        self.s3 = moto.client("s3", admin)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with MotoServer() as moto, pytest.MonkeyPatch.context() as env:
        s3 = moto.client("s3")
        for bucket in ("pb-data", "pb-secret", "pb-versioned"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket="pb-versioned", VersioningConfiguration={"Status": "Enabled"})
        admin = moto.user("admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
        reader = moto.user("reader", [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                       "Resource": ["arn:aws:s3:::pb-data", "arn:aws:s3:::pb-data/*"]}])
        s3.put_object(Bucket="pb-secret", Key="root/secret.txt", Body=b"not for the reader")
        moto.with_auth()
        for name, value in admin.env(moto.endpoint).items():
            env.setenv(name, value)
        data = Store(moto, admin, reader)
        data.put("pb-data", "root/big.bin", payload(300_000))
        data.put("pb-data", "root/text.log", b"".join(b"line %d\n" % i for i in range(5000)))
        data.put("pb-data", "root/docs/a.txt", b"a")
        data.put("pb-data", "root/docs/deeper/b.txt", b"b")
        data.put("pb-data", "root/.hidden", b"h")
        data.put("pb-data", "root/empty", b"")
        data.put("pb-data", "outside.txt", b"outside the served prefix")
        yield data


async def opened(catalog: Any, path: str, **fields: Any) -> tuple[ObjectPager, Any]:
    pager, _ = await catalog.make_pager(m.Open(stream=1, path=path, **fields))
    assert isinstance(pager, ObjectPager)
    return pager, await pager.start()


async def drain(pager: ObjectPager, page: int = PAGE) -> bytes:
    out = bytearray()
    while data := await pager.next_page(page):
        out += data
    return bytes(out)


@pytest.fixture
async def catalog(store: Store) -> Any:
    catalog = ObjectCatalog("s3://pb-data/root", read_ahead=BLOCK)
    yield catalog
    await catalog.close()


# ------------------------------------------------------------------ choosing


def test_the_root_picks_the_catalog(tmp_path: Any) -> None:
    """A folder or file:// URL is served as files, an s3:// URL as objects, a bad one refused."""
    assert isinstance(open_catalog(tmp_path), Catalog)
    assert isinstance(open_catalog(f"file://{tmp_path}"), Catalog)
    assert isinstance(open_catalog("s3://pb-data/root"), ObjectCatalog)
    with pytest.raises(ValueError, match="not a directory"):
        open_catalog(tmp_path / "missing")
    with pytest.raises(ValueError, match="names no bucket|not an object store URL"):
        open_catalog("s3:///nothing")
    with pytest.raises(ValueError, match="cannot serve nosuchscheme://"):
        open_catalog("nosuchscheme://x/y")


# ------------------------------------------------------------------ listing


async def test_listing_has_the_folder_shape(catalog: ObjectCatalog) -> None:
    """Folders first, then names in order; sizes and mtimes; dot files and the outside left out."""
    path, entries, truncated = await catalog.list("")
    assert (path, truncated) == ("", False)
    assert [(e["name"], e["kind"], e["size"]) for e in entries if e["name"] in FIXED] == [
        ("docs", "dir", None), ("big.bin", "file", 300_000), ("empty", "file", 0),
        ("text.log", "file", 48890)]
    assert all(isinstance(e["mtime"], float) for e in entries if e["kind"] == "file")
    path, entries, _ = await catalog.list("docs/")
    assert path == "docs"
    assert [(e["name"], e["kind"]) for e in entries] == [("deeper", "dir"), ("a.txt", "file")]


async def test_listing_refusals(catalog: ObjectCatalog) -> None:
    """A file, a missing folder and an escaping path are refused with their codes."""
    cases = {"big.bin": ErrorCode.NOT_A_DIRECTORY, "nothing/here": ErrorCode.NOT_FOUND,
             "../outside.txt": ErrorCode.FORBIDDEN, ".hidden": ErrorCode.FORBIDDEN,
             "/root": ErrorCode.FORBIDDEN}
    for path, code in cases.items():
        with pytest.raises(StreamError) as caught:
            await catalog.list(path)
        assert caught.value.code is code, path


async def test_hidden_objects_are_served_when_asked(store: Store) -> None:
    """show_hidden lists and opens dot names, like for folders."""
    catalog = ObjectCatalog("s3://pb-data/root", show_hidden=True)
    try:
        _, entries, _ = await catalog.list("")
        assert ".hidden" in [e["name"] for e in entries]
        pager, _ = await opened(catalog, ".hidden")
        assert await drain(pager) == b"h"
    finally:
        await catalog.close()


# ------------------------------------------------------------------ paging


async def test_paging_the_whole_object(catalog: ObjectCatalog) -> None:
    """Every byte, in order, in pages no larger than asked; the announced size and etag."""
    pager, info = await opened(catalog, "big.bin")
    assert (info.size, info.length) == (300_000, 300_000)
    assert info.etag.startswith("o:") and info.etag.endswith(f":{300_000:x}")
    pages = []
    while data := await pager.next_page(PAGE):
        pages.append(data)
    assert b"".join(pages) == payload(300_000)
    assert max(map(len, pages)) == PAGE
    assert pager.reads == -(-300_000 // BLOCK)  # one ranged GET per block, none repeated


async def test_random_access(catalog: ObjectCatalog) -> None:
    """offset and length page exactly that range; the end and beyond are handled like files."""
    whole = payload(300_000)
    for offset, length in ((0, 1), (1, 100_000), (123_457, 65_536), (299_999, None), (250_000, 10**9)):
        pager, info = await opened(catalog, "big.bin", offset=offset, length=length)
        expected = whole[offset:offset + length if length is not None else None]
        assert info.length == len(expected)
        assert await drain(pager, 7_000) == expected
    pager, info = await opened(catalog, "big.bin", offset=300_000)
    assert info.length == 0 and await drain(pager) == b""
    with pytest.raises(StreamError) as caught:
        await opened(catalog, "big.bin", offset=300_001)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    pager, info = await opened(catalog, "empty")
    assert (info.size, await drain(pager)) == (0, b"")


async def test_reads_only_on_credit(catalog: ObjectCatalog) -> None:
    """A collector that takes one page and stops costs at most two blocks of reads."""
    pager, _ = await opened(catalog, "big.bin")
    assert pager.reads == 0  # opening reads nothing
    for _ in range(3):  # three pages of the first block
        await pager.next_page(PAGE)
    await asyncio.sleep(0.2)  # whatever runs in the background has time to run
    assert pager.reads == 2  # the block of these pages, and the next one ahead
    pager.finish()


async def test_text_pages_end_at_a_newline(catalog: ObjectCatalog) -> None:
    """text: each page but the last ends with a newline, across block boundaries."""
    pager, _ = await opened(catalog, "text.log", text=True)
    pages = []
    while data := await pager.next_page(10_000):
        pages.append(data)
    assert b"".join(pages) == b"".join(b"line %d\n" % i for i in range(5000))
    assert all(p.endswith(b"\n") for p in pages)


async def test_objects_are_not_files(catalog: ObjectCatalog) -> None:
    """Folders, the root, missing keys, escaping paths and follow are refused, each with its code."""
    cases: dict[str, tuple[dict[str, Any], ErrorCode]] = {
        "docs": ({}, ErrorCode.NOT_A_FILE), "": ({}, ErrorCode.NOT_A_FILE),
        "missing.bin": ({}, ErrorCode.NOT_FOUND), "../outside.txt": ({}, ErrorCode.FORBIDDEN),
        "docs/../../outside.txt": ({}, ErrorCode.FORBIDDEN), ".hidden": ({}, ErrorCode.FORBIDDEN),
        "big.bin": ({"follow": True}, ErrorCode.BAD_REQUEST),
    }
    for path, (fields, code) in cases.items():
        with pytest.raises(StreamError) as caught:
            await opened(catalog, path, **fields)
        assert caught.value.code is code, path
        assert "pb-data" not in caught.value.message and "root/" not in caught.value.message
    with pytest.raises(StreamError, match="follow is not available for objects"):
        await opened(catalog, "big.bin", follow=True)


# ------------------------------------------------------------------ identity and resume


async def test_same_etag_on_every_replica_and_resume(store: Store) -> None:
    """Two catalogs (two replicas) announce one etag; a resume on the second completes the first."""
    first, second = (ObjectCatalog("s3://pb-data/root", read_ahead=BLOCK) for _ in range(2))
    try:
        pager, info = await opened(first, "big.bin")
        head = b"".join([await pager.next_page(PAGE) for _ in range(5)])  # type: ignore[misc]
        pager.finish()
        resumed, again = await opened(second, "big.bin", offset=len(head), if_match=info.etag)
        assert again.etag == info.etag
        assert head + await drain(resumed) == payload(300_000)
    finally:
        await first.close()
        await second.close()


async def test_if_match_refuses_another_version(catalog: ObjectCatalog, store: Store) -> None:
    """An etag from before the object was rewritten is file_changed, naming both etags."""
    store.put("pb-data", "root/rewritten.bin", b"one")
    _, before = await opened(catalog, "rewritten.bin")
    store.put("pb-data", "root/rewritten.bin", b"two")
    with pytest.raises(FileChangedError, match="has changed since etag"):
        await opened(catalog, "rewritten.bin", offset=1, if_match=before.etag)


async def test_replaced_mid_stream_is_file_changed(catalog: ObjectCatalog, store: Store) -> None:
    """The next ranged GET after a replacement fails its If-Match: file_changed, no spliced bytes."""
    store.put("pb-data", "root/replaced.bin", payload(400_000))
    pager, _ = await opened(catalog, "replaced.bin")
    got = await pager.next_page(PAGE)
    store.put("pb-data", "root/replaced.bin", payload(400_000, seed=1))  # same size, other bytes
    with pytest.raises(FileChangedError, match="was replaced while it was being paged"):
        while data := await pager.next_page(PAGE):
            got += data
    assert payload(400_000).startswith(got)  # what was paged was all of the old version
    pager.finish()


async def test_deleted_mid_stream_is_file_changed(catalog: ObjectCatalog, store: Store) -> None:
    """A deleted object ends its stream with file_changed at the next block."""
    store.put("pb-data", "root/deleted.bin", payload(400_000))
    pager, _ = await opened(catalog, "deleted.bin")
    await pager.next_page(PAGE)
    store.s3.delete_object(Bucket="pb-data", Key="root/deleted.bin")
    with pytest.raises(FileChangedError, match="was deleted while it was being paged"):
        while await pager.next_page(PAGE):
            pass
    pager.finish()


async def test_versioned_bucket_pages_the_announced_version(store: Store) -> None:
    """On a versioned bucket the etag names the version, which is paged even after an overwrite."""
    store.put("pb-versioned", "v.bin", payload(400_000))
    catalog = ObjectCatalog("s3://pb-versioned", read_ahead=BLOCK)
    try:
        pager, info = await opened(catalog, "v.bin")
        version = store.s3.head_object(Bucket="pb-versioned", Key="v.bin")["VersionId"]
        assert info.etag.endswith(f":{version}")
        first = await pager.next_page(PAGE)
        store.put("pb-versioned", "v.bin", payload(400_000, seed=7))
        assert first + await drain(pager) == payload(400_000)
        with pytest.raises(FileChangedError):  # a resume cannot mix in the new version
            await opened(catalog, "v.bin", offset=PAGE, if_match=info.etag)
    finally:
        await catalog.close()


# ------------------------------------------------------------------ errors from the store


async def test_missing_bucket(store: Store) -> None:
    """A missing bucket fails the server's start-up check, and each request with not_found."""
    catalog = ObjectCatalog("s3://pb-no-such-bucket/x")
    try:
        with pytest.raises(ValueError, match="bucket 'pb-no-such-bucket' does not exist"):
            await catalog.check()
        for call in (catalog.list(""), opened(catalog, "a.bin")):
            with pytest.raises(StreamError) as caught:
                await call
            assert caught.value.code is ErrorCode.NOT_FOUND
            assert "bucket does not exist" in caught.value.message
    finally:
        await catalog.close()


async def test_access_denied_is_forbidden(store: Store) -> None:
    """Credentials the bucket policy refuses give forbidden; the same key reads its own bucket."""
    options = {"key": store.reader.key, "secret": store.reader.secret}
    secret = ObjectCatalog("s3://pb-secret/root", storage_options=options)
    allowed = ObjectCatalog("s3://pb-data/root", storage_options=options)
    try:
        for call in (secret.list(""), opened(secret, "secret.txt")):
            with pytest.raises(StreamError) as caught:
                await call
            assert caught.value.code is ErrorCode.FORBIDDEN
            assert "permission denied by the object store" in caught.value.message
        pager, _ = await opened(allowed, "docs/a.txt")
        assert await drain(pager) == b"a"
    finally:
        await secret.close()
        await allowed.close()


async def test_store_stopped_mid_stream_is_io_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the S3 server goes away mid-stream the stream fails with io_error, in bounded time."""
    with MotoServer() as moto:
        for name, value in Credentials("k", "s").env(moto.endpoint).items():
            monkeypatch.setenv(name, value)
        s3 = moto.client("s3")
        s3.create_bucket(Bucket="pb-gone")
        s3.put_object(Bucket="pb-gone", Key="big.bin", Body=payload(400_000))
        catalog = ObjectCatalog("s3://pb-gone", read_ahead=BLOCK)
        try:
            pager, _ = await opened(catalog, "big.bin")
            await pager.next_page(PAGE)
            moto.stop()
            with pytest.raises(StreamError) as caught:
                async with asyncio.timeout(60):
                    while await pager.next_page(PAGE):
                        pass
            assert caught.value.code is ErrorCode.IO_ERROR
            assert "object store is unreachable" in caught.value.message
            pager.finish()
        finally:
            await catalog.close()


# ------------------------------------------------------------------ any fsspec store


async def test_memory_store_through_fsspec() -> None:
    """memory:// goes through the generic fsspec backend: list, page, detect a replacement."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe({"/pbtest/data/a.bin": payload(200_000), "/pbtest/data/sub/b.txt": b"b",
             "/pbtest/outside": b"x"})
    catalog = ObjectCatalog("memory://pbtest/data", read_ahead=BLOCK)
    try:
        _, entries, _ = await catalog.list("")
        assert [(e["name"], e["kind"], e["size"]) for e in entries] == [
            ("sub", "dir", None), ("a.bin", "file", 200_000)]
        pager, info = await opened(catalog, "a.bin", offset=10)
        assert await drain(pager) == payload(200_000)[10:]
        pager, _ = await opened(catalog, "a.bin")
        await pager.next_page(PAGE)
        await asyncio.sleep(0.05)
        fs.pipe_file("/pbtest/data/a.bin", payload(300_000, seed=3))
        with pytest.raises(FileChangedError):
            while await pager.next_page(PAGE):
                pass
        for path, code in (("sub", ErrorCode.NOT_A_FILE), ("none", ErrorCode.NOT_FOUND),
                           ("../outside", ErrorCode.FORBIDDEN)):
            with pytest.raises(StreamError) as caught:
                await opened(catalog, path)
            assert caught.value.code is code
    finally:
        await catalog.close()
        fs.rm("/pbtest", recursive=True)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without s3fs, serving s3:// says which extra to install."""
    import sys

    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    with pytest.raises(ValueError, match=r"pip install 'pagebridge\[s3\]'"):
        ObjectCatalog("s3://pb-data/root")



# ------------------------------------------------------------------ through a running server


async def test_server_serves_a_bucket(store: Store, start_server: Any, tmp_path: Any) -> None:
    """`serve s3://bucket/prefix`: list, random access and a verified download over the protocol."""
    from bridge import connect

    server = await start_server("s3://pb-data/root")
    async with connect(server.ws_url) as session:
        entries = await session.list("")
        # Other tests add objects beside these (replaced.bin...): look at the fixed ones.
        assert [(e.name, e.kind) for e in entries if e.name in FIXED] == [
            ("docs", "dir"), ("big.bin", "file"), ("empty", "file"), ("text.log", "file")]
        assert await session.get_all_pages("big.bin", 1000, 70_000, page_size=PAGE) == \
            payload(300_000)[1000:71_000]
        result = await session.download("big.bin", tmp_path / "big.bin", page_size=PAGE)
        assert (tmp_path / "big.bin").read_bytes() == payload(300_000)
        assert result.etag is not None and result.etag.startswith("o:")


async def test_server_resume_on_another_server(store: Store, start_server: Any) -> None:
    """Half a stream from one server, the rest from another with if_match: the exact object."""
    from bridge import connect
    from bridge.aio.client import Page

    first = await start_server("s3://pb-data/root")
    second = await start_server("s3://pb-data/root")
    async with connect(first.ws_url) as a, connect(second.ws_url) as b:
        head = bytearray()
        async with a.pages("big.bin", page_size=PAGE, window=2) as stream:
            etag = stream.etag
            async for page in stream:
                assert isinstance(page, Page)
                head += page.data
                if len(head) >= 5 * PAGE:
                    break
        rest = await b.get_all_pages("big.bin", len(head), if_match=etag)
        assert bytes(head + rest) == payload(300_000)


async def test_server_refusals_leave_the_connection_open(store: Store, start_server: Any) -> None:
    """follow, a missing key and an object store's access denied are stream errors, nothing more."""
    from bridge import connect

    server = await start_server("s3://pb-data/root")
    denied = await start_server("s3://pb-secret/root",
                                storage_options={"key": store.reader.key, "secret": store.reader.secret})
    async with connect(server.ws_url) as session, connect(denied.ws_url) as refused:
        for path, fields, code in (("big.bin", {"follow": True}, ErrorCode.BAD_REQUEST),
                                   ("nothing.bin", {}, ErrorCode.NOT_FOUND)):
            with pytest.raises(StreamError) as caught:
                await session.get_all_pages(path, **fields)
            assert caught.value.code is code
        for call in (refused.list(""), refused.get_all_pages("secret.txt")):
            with pytest.raises(StreamError) as caught:
                await call
            assert caught.value.code is ErrorCode.FORBIDDEN
        assert await session.get_all_pages("docs/a.txt") == b"a"  # still serving


async def test_server_refuses_to_start_on_a_missing_bucket(store: Store) -> None:
    """`pagebridge serve s3://missing` stops at once with one line and status 2."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bridge", "serve", "s3://pb-no-such-bucket", "--port", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "pagebridge: bucket 'pb-no-such-bucket' does not exist"


async def test_metrics_count_an_object_transfer(store: Store, start_server: Any) -> None:
    """After one object is paged, /metrics shows its pages, bytes and stream by kind."""
    import urllib.request

    from bridge import connect

    server = await start_server("s3://pb-data/root")
    async with connect(server.ws_url) as session:
        await session.get_all_pages("big.bin", page_size=PAGE)
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(server.http_url + "metrics").read().decode())
    assert 'pagebridge_streams_opened_total{kind="object"} 1.0' in text
    assert 'pagebridge_bytes_sent_total{kind="object"} 300000.0' in text
    assert f'pagebridge_pages_sent_total{{kind="object"}} {-(-300_000 // PAGE)}.0' in text
