"""Local storage: private files, atomic publication, clear errors, no path in any message."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from app.config import Settings
from app.storage import get_storage
from app.storage.base import StorageError
from app.storage.local import LocalStorage


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def _collect(storage: LocalStorage, key: str, chunk_size: int = 1024 * 1024) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, chunk_size=chunk_size)])


async def test_writer_publishes_only_on_commit(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await storage.check_writable()
    assert stat.S_IMODE(storage.root.stat().st_mode) == 0o700

    writer = await storage.open_writer("2024/db.sql.zst")
    await writer.write(b"a" * 3_000_000)
    await writer.write(b"b")
    assert await storage.size("2024/db.sql.zst") is None
    [temp] = _files(storage.root)
    assert temp.startswith(".tmp-db.sql.zst-")

    assert await writer.commit() == 3_000_001
    assert _files(storage.root) == ["db.sql.zst"]
    path = storage.path("2024/db.sql.zst")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert await storage.size("2024/db.sql.zst") == 3_000_001
    await writer.abort()  # after commit: nothing to undo
    assert path.exists()

    chunks = [c async for c in storage.read("2024/db.sql.zst", chunk_size=1_000_000)]
    assert [len(c) for c in chunks] == [1_000_000, 1_000_000, 1_000_000, 1]


async def test_abort_removes_the_temporary_and_is_idempotent(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    writer = await storage.open_writer("x.sql")
    await writer.write(b"partial")
    await writer.abort()
    await writer.abort()
    assert _files(storage.root) == []
    with pytest.raises(StorageError):
        await writer.write(b"more")


@pytest.mark.parametrize(
    "key", ["", "../x", "/etc/passwd", "a/../b", "-rf", "a/-x", ".tmp-x", "a//b", "a\\b", "a b"]
)
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "backups")
    with pytest.raises(StorageError, match="invalid storage key"):
        await storage.open_writer(key)
    with pytest.raises(StorageError):
        await storage.delete(key)
    assert not (tmp_path / "x").exists()


async def test_missing_and_deleted_objects(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await storage.delete("never-there.sql")
    assert await storage.size("never-there.sql") is None
    with pytest.raises(FileNotFoundError):
        await _collect(storage, "never-there.sql")
    writer = await storage.open_writer("a.sql")
    await writer.write(b"x")
    await writer.commit()
    await storage.delete("a.sql")
    assert await storage.size("a.sql") is None


async def test_orphan_temporaries_are_removed_by_age(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    old = await storage.open_writer("old.sql")
    await old.write(b"x")
    fresh = await storage.open_writer("fresh.sql")
    await fresh.write(b"y")
    done = await storage.open_writer("done.sql")
    await done.write(b"z")
    await done.commit()
    [old_temp] = [p for p in storage.root.iterdir() if p.name.startswith(".tmp-old")]
    hour_ago = time.time() - 3600
    os.utime(old_temp, (hour_ago, hour_ago))

    assert await storage.remove_orphan_temporaries(older_than=timedelta(minutes=30)) == 1
    remaining = _files(storage.root)
    assert "done.sql" in remaining and len(remaining) == 2
    assert await storage.remove_orphan_temporaries(older_than=timedelta(minutes=30)) == 0
    await fresh.abort()
    await old.abort()  # its file is already gone: still fine


async def test_check_writable_creates_a_missing_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "a" / "b" / "backups")
    await storage.check_writable()
    assert storage.root.is_dir()
    assert _files(storage.root) == []
    assert (await storage.free_bytes() or 0) > 0


async def test_check_writable_explains_an_impossible_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    storage = LocalStorage(tmp_path / "file" / "backups")
    with pytest.raises(StorageError) as caught:
        await storage.check_writable()
    assert "backup directory" in caught.value.message
    assert str(tmp_path) not in caught.value.message


async def test_read_only_directory_fails_before_any_work(
    tmpfs: Callable[..., Path],
) -> None:
    root = tmpfs("1m", read_only=True)
    storage = LocalStorage(root)
    with pytest.raises(StorageError) as caught:
        await storage.check_writable()
    assert caught.value.message == "the backup directory is on a read-only file system"
    with pytest.raises(StorageError, match="read-only"):
        await storage.open_writer("x.sql")
    missing = LocalStorage(root / "sub")
    with pytest.raises(StorageError) as caught:
        await missing.check_writable()
    assert "does not exist and can't be created" in caught.value.message
    assert str(root) not in caught.value.message


async def test_disk_full_is_reported_and_leaves_nothing(tmpfs: Callable[..., Path]) -> None:
    root = tmpfs("1m")
    storage = LocalStorage(root)
    await storage.check_writable()
    writer = await storage.open_writer("big.sql")
    with pytest.raises(StorageError) as caught:
        for _ in range(4):
            await writer.write(os.urandom(512 * 1024))
        await writer.commit()
    assert caught.value.disk_full
    assert caught.value.message == "disk full"
    await writer.abort()
    assert _files(root) == []
    # Space is back once the partial file is gone: the next backup works.
    small = await storage.open_writer("small.sql")
    await small.write(b"ok")
    assert await small.commit() == 2


def test_get_storage_uses_the_backup_dir(settings: Settings) -> None:
    storage = get_storage(settings)
    assert isinstance(storage, LocalStorage)
    assert storage.root == settings.backup_dir.absolute()


async def test_writes_from_a_thread_and_chunks_may_be_reused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await storage.check_writable()
    writer = await storage.open_writer("2026/reused.sql.zst")
    buffer = bytearray(b"a" * 300_000)
    await writer.write(memoryview(buffer))  # large: written as it is, no copy
    buffer[:] = b"b" * 300_000  # the caller reuses its buffer once write returned
    write_here = writer.thread_writer()
    assert write_here is not None
    await asyncio.to_thread(write_here, memoryview(buffer))
    buffer[:] = b"c" * 300_000
    assert await writer.commit() == 600_000
    assert await _collect(storage, "2026/reused.sql.zst") == b"a" * 300_000 + b"b" * 300_000


async def test_a_thread_write_after_abort_is_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await storage.check_writable()
    writer = await storage.open_writer("2026/aborted.sql.zst")
    write_here = writer.thread_writer()
    assert write_here is not None
    await asyncio.to_thread(write_here, memoryview(b"x" * 10))
    await writer.abort()
    with pytest.raises(StorageError, match="already closed"):
        await asyncio.to_thread(write_here, memoryview(b"y" * 10))
    assert _files(tmp_path / "backups") == []
