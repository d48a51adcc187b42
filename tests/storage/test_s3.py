"""S3 storage against a real S3-compatible server (SeaweedFS): clear errors that never show the
secret, addressing styles, prefix, ranged and resumed reads, bounded memory, retries on
throttling, checksums checked on the wire, and the server stopped mid-upload."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from app.storage.base import StorageError
from app.storage.registry import build_storage
from app.storage.s3 import (
    DEFAULT_PART_SIZE,
    MiB,
    S3Storage,
    S3Writer,
    part_size_for,
    s3_options,
)
from tests.s3server import S3Server, running_server
from tests.storage.faultproxy import FaultProxy

PART = 5 * MiB


def _storage(server: S3Server, bucket: str, **extra: Any) -> S3Storage:
    storage = build_storage("s3", server.config(bucket, **extra))
    assert isinstance(storage, S3Storage)
    return storage


async def _store(storage: S3Storage, key: str, data: bytes, piece: int = MiB) -> int:
    writer = await storage.open_writer(key)
    for start in range(0, len(data), piece):
        await writer.write(data[start : start + piece])
    return await writer.commit()


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
async def bucket(s3_server: S3Server) -> str:
    return await s3_server.create_bucket()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_registry_builds_an_s3_storage_from_the_contract_config(
    s3_server: S3Server, bucket: str
) -> None:
    storage = _storage(s3_server, bucket, prefix="/team/prod/", storage_class="STANDARD")
    assert storage.prefix == "team/prod/" and storage.addressing_style == "path"
    assert await storage.free_bytes() is None
    await storage.check_writable()
    assert await _store(storage, "db.sql", b"hello") == 5
    assert await s3_server.keys(bucket) == ["team/prod/db.sql"]
    async with s3_server.client() as client:
        head = await client.head_object(Bucket=bucket, Key="team/prod/db.sql")
    assert head["ContentLength"] == 5

    with pytest.raises(ValueError, match="needs a bucket"):
        build_storage("s3", {"access_key_id": "a", "secret_access_key": "b"})
    with pytest.raises(ValueError, match="access key ID and a secret"):
        build_storage("s3", {"bucket": "b", "access_key_id": "a"})
    with pytest.raises(ValueError, match="endpoint URL"):
        build_storage("s3", {**s3_server.config(bucket), "endpoint_url": "ftp://x"})
    with pytest.raises(ValueError, match="part size"):
        build_storage("s3", {**s3_server.config(bucket), "part_size": 1024})
    with pytest.raises(ValueError, match="prefix"):
        build_storage("s3", {**s3_server.config(bucket), "prefix": "a/../b"})
    assert (
        s3_options({**s3_server.config(bucket), "force_path_style": False})["force_path_style"]
        is False
    )


async def test_wrong_keys_are_named_and_the_secret_is_never_shown(
    s3_server: S3Server, bucket: str
) -> None:
    wrong_secret = "wrongSECRETdoNotShow0123456789"
    storage = _storage(s3_server, bucket, secret_access_key=wrong_secret, max_attempts=1)
    assert wrong_secret not in repr(storage) and s3_server.secret_key not in repr(storage)
    with pytest.raises(StorageError, match="secret access key") as caught:
        await storage.check_writable()
    writer = await storage.open_writer("x.sql")
    await writer.write(b"x" * 100)
    with pytest.raises(StorageError, match="secret access key") as on_commit:
        await writer.commit()
    for error in (caught.value, on_commit.value):
        assert wrong_secret not in str(error) and wrong_secret not in repr(error)
        assert error.__cause__ is None and error.__suppress_context__

    unknown = _storage(s3_server, bucket, access_key_id="NOSUCHKEYID", max_attempts=1)
    with pytest.raises(StorageError, match="does not know this access key ID"):
        await unknown.check_writable()
    with pytest.raises(StorageError, match="access key ID"):
        await unknown.size("x.sql")
    assert await s3_server.keys(bucket) == []


async def test_a_missing_bucket_is_named(s3_server: S3Server) -> None:
    storage = _storage(s3_server, "no-such-bucket-here", max_attempts=1)
    message = "the bucket 'no-such-bucket-here' does not exist"
    with pytest.raises(StorageError, match=message):
        await storage.check_writable()
    with pytest.raises(StorageError, match=message):
        await storage.size("x.sql")  # not "the object vanished"
    with pytest.raises(StorageError, match=message):
        await _collect(storage.read("x.sql"))
    writer = await storage.open_writer("x.sql")
    await writer.write(os.urandom(PART + 1))  # the upload starts here
    await writer.abort()
    with pytest.raises(StorageError, match=message):
        await storage.remove_orphan_temporaries(older_than=timedelta(0))


async def test_no_permission_is_named(s3_server: S3Server, bucket: str) -> None:
    owner = _storage(s3_server, bucket)
    await _store(owner, "kept.sql", b"kept")
    reader = _storage(
        s3_server,
        bucket,
        access_key_id=s3_server.read_only_access_key,
        secret_access_key=s3_server.read_only_secret_key,
        max_attempts=1,
    )
    assert await _collect(reader.read("kept.sql")) == b"kept"
    with pytest.raises(StorageError, match="no permission to write to the bucket"):
        await reader.check_writable()
    with pytest.raises(StorageError, match="no permission"):
        await _store(reader, "new.sql", b"x" * 10)
    with pytest.raises(StorageError, match="no permission"):
        await reader.delete("kept.sql")
    assert await s3_server.keys(bucket) == ["kept.sql"]


async def test_an_unreachable_endpoint_is_named_and_transient() -> None:
    port = _closed_port()
    storage = S3Storage(
        bucket="b",
        access_key_id="k",
        secret_access_key="s3cr3t-value",
        endpoint_url=f"http://user:pw@127.0.0.1:{port}",
        force_path_style=True,
        max_attempts=1,
        connect_timeout=1,
    )
    with pytest.raises(StorageError, match=f"endpoint 127.0.0.1:{port} can't be reached") as e:
        await storage.check_writable()
    assert e.value.transient
    assert "pw" not in str(e.value) and "s3cr3t" not in str(e.value)
    with pytest.raises(StorageError, match="can't be reached"):
        await storage.size("x.sql")


class _LocalhostResolver(AbstractResolver):
    """Resolves ``*.localhost`` to 127.0.0.1, as a DNS wildcard would for a real domain."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.hosts.append(host)
        assert host == "localhost" or host.endswith(".localhost")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


async def test_virtual_host_addressing(s3_server: S3Server, bucket: str) -> None:
    resolver = _LocalhostResolver()
    options = s3_options(
        {
            **s3_server.config(bucket, prefix="vh"),
            "endpoint_url": f"http://localhost:{s3_server.port}",
            "force_path_style": False,
        }
    )
    storage = S3Storage(**options, part_size=PART, resolver=resolver)
    assert storage.addressing_style == "virtual"
    data = os.urandom(PART + 100)
    await storage.check_writable()
    assert await _store(storage, "a.sql", data) == len(data)
    assert await _collect(storage.read("a.sql")) == data
    assert set(resolver.hosts) == {f"{bucket}.localhost"}  # the bucket in the host name
    assert await s3_server.keys(bucket) == ["vh/a.sql"]


async def test_a_stale_probe_object_is_removed_with_the_orphans(
    s3_server: S3Server, bucket: str
) -> None:
    storage = _storage(s3_server, bucket, prefix="p")
    async with s3_server.client() as client:  # what an interrupted check_writable leaves
        await client.put_object(Bucket=bucket, Key="p/.dbkeep-probe-0123456789ab", Body=b"")
    await _store(storage, "kept.sql", b"kept")
    assert await storage.remove_orphan_temporaries(older_than=timedelta(hours=1)) == 0
    assert await storage.remove_orphan_temporaries(older_than=timedelta(0)) == 1
    assert await s3_server.keys(bucket) == ["p/kept.sql"]


async def test_ranged_reads_from_an_offset(s3_server: S3Server, bucket: str) -> None:
    storage = _storage(s3_server, bucket)
    data = os.urandom(3 * MiB + 7)
    await _store(storage, "r.sql", data)
    assert await _collect(storage.read("r.sql", offset=MiB + 3)) == data[MiB + 3 :]
    chunks = [c async for c in storage.read("r.sql", chunk_size=MiB, offset=len(data) - 10)]
    assert chunks == [data[-10:]]
    assert await _collect(storage.read("r.sql", offset=len(data))) == b""


async def test_a_download_cut_mid_stream_resumes_where_it_stopped(
    s3_server: S3Server, bucket: str
) -> None:
    data = os.urandom(6 * MiB + 11)
    await _store(_storage(s3_server, bucket), "cut.sql", data)
    proxy = await FaultProxy(s3_server.port, plan=[("cut", 2 * MiB + 5), ("cut", 3 * MiB)]).start()
    try:
        storage = _storage(s3_server, bucket, endpoint_url=proxy.endpoint_url)
        chunks = [c async for c in storage.read("cut.sql", chunk_size=MiB)]
        assert b"".join(chunks) == data
        assert [len(c) for c in chunks] == [MiB] * 6 + [11]
        assert proxy.injected == 2 and proxy.connections >= 3
    finally:
        await proxy.close()


async def test_throttling_is_retried_with_backoff(s3_server: S3Server, bucket: str) -> None:
    proxy = await FaultProxy(s3_server.port, plan=["slowdown", "slowdown"]).start()
    try:
        storage = _storage(
            s3_server,
            bucket,
            endpoint_url=proxy.endpoint_url,
            max_attempts=4,
            retry_mode="standard",
        )
        assert await _store(storage, "t.sql", b"throttled" * 100) == 900  # PutObject retried
        assert proxy.injected == 2
        proxy.plan = ["slowdown"] * 3
        impatient = _storage(
            s3_server,
            bucket,
            endpoint_url=proxy.endpoint_url,
            max_attempts=2,
            retry_mode="standard",
        )
        with pytest.raises(StorageError, match="busy or failing") as caught:
            await impatient.size("t.sql")
        assert caught.value.transient
    finally:
        await proxy.close()
    assert await _storage(s3_server, bucket).size("t.sql") == 900


async def test_a_byte_flipped_on_the_wire_is_refused(s3_server: S3Server, bucket: str) -> None:
    """The server checks the SHA-256 sent with the bytes: a byte flipped between dbkeep and the
    server fails the upload, and nothing is stored."""
    proxy = await FaultProxy(s3_server.port, plan=["flip"]).start()
    try:
        storage = _storage(s3_server, bucket, endpoint_url=proxy.endpoint_url, max_attempts=1)
        writer = await storage.open_writer("flip.sql")
        await writer.write(os.urandom(4096))
        with pytest.raises(StorageError, match="other bytes than were sent"):
            await writer.commit()
        assert proxy.injected == 1
        await writer.abort()
    finally:
        await proxy.close()
    assert await s3_server.keys(bucket) == []


async def test_a_failed_part_aborts_the_upload(s3_server: S3Server, bucket: str) -> None:
    """A part refused by the server (its upload was aborted behind the writer's back) fails the
    writer, which aborts the upload itself: nothing visible, nothing left open."""
    storage = _storage(s3_server, bucket, part_size=PART, max_attempts=1)
    writer = await storage.open_writer("gone.sql")
    await writer.write(os.urandom(PART + 1))
    [upload] = await s3_server.multipart_uploads(bucket)
    async with s3_server.client() as client:
        await client.abort_multipart_upload(
            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    with pytest.raises(StorageError):
        for _ in range(3):
            await writer.write(os.urandom(PART))
        await writer.commit()
    assert await s3_server.keys(bucket) == []
    assert await s3_server.multipart_uploads(bucket) == []


async def test_memory_stays_bounded_by_the_part_size(s3_server: S3Server, bucket: str) -> None:
    storage = _storage(s3_server, bucket, part_size=PART, max_inflight_parts=2)
    piece = os.urandom(MiB)
    await storage.check_writable()  # botocore's service model (~7 MiB) is loaded once, before
    gc.collect()
    tracemalloc.start()
    try:
        writer = await storage.open_writer("big.sql")
        for _ in range(96):
            await writer.write(piece)
        size = await writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 96 * MiB
    # The buffer (a part + a chunk) and 2 parts in flight, each twice (our bytes and aiohttp's
    # BytesIO payload): about 5.5 parts, whatever the backup's size (96 MiB here).
    assert peak < 7 * PART, peak
    assert await storage.size("big.sql") == 96 * MiB


async def test_larger_parts_go_out_fewer_at_a_time(s3_server: S3Server, bucket: str) -> None:
    """Past part 5,000 parts double; then half as many are in flight, so the bytes held stay
    the same (checked on a writer moved to part 5,001, against the real server)."""
    storage = _storage(s3_server, bucket, part_size=PART, max_inflight_parts=2)
    writer = await storage.open_writer("late.sql")
    assert isinstance(writer, S3Writer)
    data = os.urandom(PART)
    await writer.write(data)  # part 1
    writer._next_part = 5_001  # as if 5,000 parts had gone (part numbers only grow)
    most = 0
    original = writer._start_part

    def counting(part: bytes) -> None:
        nonlocal most
        original(part)
        most = max(most, len(part) * len(writer._inflight))  # bytes in flight

    writer._start_part = counting  # type: ignore[method-assign]
    for _ in range(6):
        await writer.write(data)  # 30 MiB: 10 MiB parts, one at a time
    assert most <= 2 * PART
    await writer.abort()
    assert await s3_server.multipart_uploads(bucket) == []


def test_parts_grow_so_that_a_large_dump_fits_in_ten_thousand_parts() -> None:
    base = DEFAULT_PART_SIZE
    assert part_size_for(1, base) == part_size_for(5_000, base) == base
    assert part_size_for(5_001, base) == 2 * base
    assert part_size_for(10_000, base) == 4 * base
    total = sum(part_size_for(n, base) for n in range(1, 10_001))
    assert total == 20_000 * base  # 156 GiB at 8 MiB parts; 50 GB needs ~5,980 parts
    assert sum(part_size_for(n, base) for n in range(1, 5_981)) >= 50 * 10**9


@pytest.mark.slow
async def test_the_server_stopped_mid_upload() -> None:
    """The write fails with a transient StorageError; abort() can't reach the server, so the
    multipart upload stays, nothing is visible, and remove_orphan_temporaries aborts it once the
    server is back; a new upload then works."""
    with running_server() as server:
        bucket = await server.create_bucket()
        storage = _storage(server, bucket, part_size=PART, max_attempts=2, retry_mode="standard")
        writer = await storage.open_writer("cut.sql")
        for _ in range(2):
            await writer.write(os.urandom(PART))
        await asyncio.sleep(0.2)
        server.stop(kill=True)
        with pytest.raises(StorageError, match="can't be reached") as caught:
            for _ in range(4):
                await writer.write(os.urandom(PART))
            await writer.commit()
        assert caught.value.transient
        await writer.abort()  # the server is down: no error, the upload is left for later

        server.start()
        assert await server.keys(bucket) == []
        assert len(await server.multipart_uploads(bucket)) == 1
        assert await storage.remove_orphan_temporaries(older_than=timedelta(hours=1)) == 0
        assert await storage.remove_orphan_temporaries(older_than=timedelta(0)) == 1
        assert await server.multipart_uploads(bucket) == []
        data = os.urandom(PART + 3)
        assert await _store(storage, "cut.sql", data) == len(data)
        assert await _collect(storage.read("cut.sql")) == data


@pytest.mark.slow
async def test_the_server_stopped_mid_download_ends_in_an_error() -> None:
    with running_server() as server:
        bucket = await server.create_bucket()
        storage = _storage(server, bucket, max_attempts=1)
        await _store(storage, "d.sql", os.urandom(8 * MiB))
        received = 0
        with pytest.raises(StorageError, match="can't be reached"):
            async for chunk in storage.read("d.sql", chunk_size=MiB):
                received += len(chunk)
                if received == MiB:
                    server.stop(kill=True)
        assert received < 8 * MiB
