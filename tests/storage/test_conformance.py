"""One storage contract, two backends: local directories and a real S3-compatible server.

Every test runs against ``LocalStorage`` and ``S3Storage`` (SeaweedFS on loopback, 5 MiB parts so
that multipart uploads happen with little data): nothing is visible before ``commit()``, ``abort()``
leaves nothing (no temporary file, no open multipart upload), a missing object is
``FileNotFoundError`` / ``None``, reads stream in chunks, a flipped bit is caught by
``verified``, delete is idempotent, and orphans of a crashed writer are cleaned.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from app.pipeline.checksum import ChecksumMismatch, verified
from app.storage.base import BackupStorage, StorageError, StorageWriter
from app.storage.local import TEMP_PREFIX, LocalStorage
from app.storage.registry import build_storage
from app.storage.s3 import S3Storage, S3Writer
from tests.s3server import S3Server

PART = 5 * 1024 * 1024


@dataclass
class Backend:
    name: str
    storage: BackupStorage
    visible: Callable[[], Awaitable[list[str]]]
    temporaries: Callable[[], Awaitable[int]]
    flip_bit: Callable[[str, int], Awaitable[None]]


def _local_backend(root: Path) -> Backend:
    storage = LocalStorage(root)

    async def visible() -> list[str]:
        return sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(TEMP_PREFIX)
        )

    async def temporaries() -> int:
        return sum(1 for p in root.rglob(f"{TEMP_PREFIX}*") if p.is_file())

    async def flip_bit(key: str, offset: int) -> None:
        path = storage.path(key)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))

    return Backend("local", storage, visible, temporaries, flip_bit)


async def _s3_backend(server: S3Server) -> Backend:
    bucket = await server.create_bucket()
    prefix = "dbkeep/test"
    storage = build_storage("s3", server.config(bucket, prefix=prefix, part_size=PART))
    assert isinstance(storage, S3Storage)

    async def visible() -> list[str]:
        keys = await server.keys(bucket)
        assert all(k.startswith(prefix + "/") for k in keys)
        return [k.removeprefix(prefix + "/") for k in keys]

    async def temporaries() -> int:
        return len(await server.multipart_uploads(bucket))

    async def flip_bit(key: str, offset: int) -> None:
        async with server.client() as client:
            response = await client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")
            data = bytearray(await response["Body"].read())
            data[offset] ^= 0x01
            await client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=bytes(data))

    return Backend("s3", storage, visible, temporaries, flip_bit)


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        yield _local_backend(tmp_path / "backups")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        yield await _s3_backend(server)


async def _collect(storage: BackupStorage, key: str, chunk_size: int = 1024 * 1024) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, chunk_size=chunk_size)])


async def _abandon(writer: StorageWriter) -> None:
    """What a crashed process leaves: the writer neither committed nor aborted."""
    if isinstance(writer, S3Writer):
        await writer._close_client()  # the connection dies with the process


async def test_nothing_is_visible_before_commit(backend: Backend) -> None:
    storage = backend.storage
    await storage.check_writable()
    data = os.urandom(2 * PART + 12345)  # three parts on S3
    writer = await storage.open_writer("2026/12/db.sql.zst")
    for start in range(0, len(data), 1024 * 1024):
        await writer.write(data[start : start + 1024 * 1024])
    assert await storage.size("2026/12/db.sql.zst") is None
    assert await backend.visible() == []
    assert await backend.temporaries() == 1
    with pytest.raises(FileNotFoundError):
        await _collect(storage, "2026/12/db.sql.zst")

    assert await writer.commit() == len(data)
    assert await backend.visible() == ["2026/12/db.sql.zst"]
    assert await backend.temporaries() == 0
    assert await storage.size("2026/12/db.sql.zst") == len(data)
    assert await _collect(storage, "2026/12/db.sql.zst") == data
    await writer.abort()  # after commit: nothing to undo
    assert await storage.size("2026/12/db.sql.zst") == len(data)


async def test_a_small_backup_and_an_empty_one(backend: Backend) -> None:
    storage = backend.storage
    writer = await storage.open_writer("small.sql")
    await writer.write(b"CREATE TABLE t (id int);\n")
    await writer.write(memoryview(b"INSERT INTO t VALUES (1);\n"))
    assert await writer.commit() == 51
    assert await _collect(storage, "small.sql") == (
        b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
    )
    empty = await storage.open_writer("empty.sql")
    assert await empty.commit() == 0
    assert await storage.size("empty.sql") == 0
    assert await _collect(storage, "empty.sql") == b""


async def test_abort_leaves_nothing(backend: Backend) -> None:
    storage = backend.storage
    writer = await storage.open_writer("aborted.sql")
    await writer.write(os.urandom(PART + 1))
    await writer.write(os.urandom(PART))
    assert await backend.temporaries() == 1
    await writer.abort()
    await writer.abort()
    assert await backend.visible() == []
    assert await backend.temporaries() == 0
    assert await storage.size("aborted.sql") is None
    with pytest.raises(StorageError):
        await writer.write(b"more")
    with pytest.raises(StorageError):
        await writer.commit()


async def test_a_missing_object(backend: Backend) -> None:
    storage = backend.storage
    assert await storage.size("never/there.sql") is None
    with pytest.raises(FileNotFoundError):
        await _collect(storage, "never/there.sql")
    await storage.delete("never/there.sql")


async def test_reads_stream_in_chunks(backend: Backend) -> None:
    storage = backend.storage
    data = os.urandom(3_000_001)
    writer = await storage.open_writer("chunks.sql")
    await writer.write(data)
    await writer.commit()
    chunks = [c async for c in storage.read("chunks.sql", chunk_size=1_000_000)]
    assert [len(c) for c in chunks] == [1_000_000, 1_000_000, 1_000_000, 1]
    assert b"".join(chunks) == data

    # A reader that stops early releases the object (no hanging connection, no open file).
    stream = storage.read("chunks.sql", chunk_size=65536)
    first = await anext(aiter(stream))
    assert first == data[:65536]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_flipped_bit_is_caught(backend: Backend) -> None:
    storage = backend.storage
    data = os.urandom(PART + 4096)
    digest = hashlib.sha256(data).hexdigest()
    writer = await storage.open_writer("flip.sql")
    await writer.write(data)
    await writer.commit()
    intact = verified(storage.read("flip.sql"), size=len(data), sha256=digest)
    assert b"".join([c async for c in intact]) == data

    await backend.flip_bit("flip.sql", len(data) // 2)
    assert await storage.size("flip.sql") == len(data)  # same size: only the digest tells
    received = 0
    with pytest.raises(ChecksumMismatch):
        async for chunk in verified(storage.read("flip.sql"), size=len(data), sha256=digest):
            received += len(chunk)
    assert received < len(data)  # the last chunk is held back: never a complete wrong file


async def test_delete_is_idempotent(backend: Backend) -> None:
    storage = backend.storage
    writer = await storage.open_writer("a/b/gone.sql")
    await writer.write(b"x" * 1000)
    await writer.commit()
    await storage.delete("a/b/gone.sql")
    await storage.delete("a/b/gone.sql")
    assert await storage.size("a/b/gone.sql") is None
    assert await backend.visible() == []


async def test_orphans_of_a_crashed_writer_are_cleaned(backend: Backend) -> None:
    storage = backend.storage
    kept = await storage.open_writer("kept.sql")
    await kept.write(b"k" * 100)
    await kept.commit()
    crashed = await storage.open_writer("crashed.sql")
    await crashed.write(os.urandom(PART + 10))
    await _abandon(crashed)
    assert await backend.temporaries() == 1

    assert await storage.remove_orphan_temporaries(older_than=timedelta(hours=1)) == 0
    assert await backend.temporaries() == 1
    assert await storage.remove_orphan_temporaries(older_than=timedelta(0)) == 1
    assert await backend.temporaries() == 0
    assert await backend.visible() == ["kept.sql"]
    assert await storage.remove_orphan_temporaries(older_than=timedelta(0)) == 0


async def test_unsafe_keys_are_refused(backend: Backend) -> None:
    for key in ["", "../x", "/etc/passwd", "a/../b", "-rf", ".tmp-x", "a//b"]:
        with pytest.raises(StorageError, match="invalid storage key"):
            await backend.storage.open_writer(key)
        with pytest.raises(StorageError, match="invalid storage key"):
            await backend.storage.size(key)


async def test_a_key_is_written_over_whole(backend: Backend) -> None:
    """Writing a key again replaces the object at commit, never mixes the two."""
    storage = backend.storage
    for content in (b"first" * 1000, b"second" * 7):
        writer = await storage.open_writer("again.sql")
        await writer.write(content)
        await writer.commit()
        assert await _collect(storage, "again.sql") == content
