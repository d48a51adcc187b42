"""SQLite failures: a missing file, a file that is not SQLite, a damaged backup, a locked target,
a full disk, a cancel mid-copy. Each one says what is wrong (never the path), leaves no temporary
file, and never changes the target."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError
from app.engines.sqlite import SQLiteEngine
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests.engines.conftest import GatedWriter
from tests.engines.sqlite_support import backup_to, make_hard_database, snapshot, target_of
from tests.storage.conftest import tmpfs  # noqa: F401  (shared fixture)


@pytest.fixture
def engine(tmp_path: Path) -> SQLiteEngine:
    return SQLiteEngine(spool_dir=tmp_path / "var" / "sqlite-spool")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    where = tmp_path / "data"
    where.mkdir()
    return where


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def no_path_in(message: str, *paths: Path) -> None:
    for path in paths:
        assert str(path) not in message and path.name not in message, message


async def test_a_missing_file_is_refused(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = data_dir / "gone.db"
    with pytest.raises(EngineError) as caught:
        await backup_to(engine, target_of(path), storage, "gone.sqlite.zst")
    assert caught.value.message == "the SQLite database file does not exist"
    no_path_in(caught.value.message, path)
    report = await engine.check_connection(target_of(path))
    assert not report.ok and report.message == "the SQLite database file does not exist"
    assert files(engine.spool_dir) == [] and files(storage.root) == []
    assert files(data_dir) == []  # the backup did not create the file


async def test_a_file_that_is_not_sqlite_is_refused(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = data_dir / "notes.db"
    path.write_bytes(b"just some text, not a database\n" * 100)
    with pytest.raises(EngineError) as caught:
        await backup_to(engine, target_of(path), storage, "notes.sqlite.zst")
    assert "not a SQLite database" in caught.value.message
    no_path_in(caught.value.message, path)
    assert not (await engine.check_connection(target_of(path))).ok
    directory = data_dir / "dir.db"
    directory.mkdir()
    with pytest.raises(EngineError, match="not a regular file"):
        await backup_to(engine, target_of(directory), storage, "dir.sqlite.zst")
    assert files(engine.spool_dir) == []


async def test_a_backup_of_a_damaged_database_fails_its_integrity_check(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = make_hard_database(data_dir / "broken.db", rows=3000, wal=False)
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    # Scribble over a b-tree page in the middle (not the header): the file still opens.
    middle = (len(data) // page_size // 2) * page_size
    data[middle + 8 : middle + page_size - 8] = os.urandom(page_size - 16)
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError) as caught:
        await backup_to(engine, target_of(path), storage, "broken.sqlite.zst")
    assert "integrity_check" in caught.value.message or "malformed" in caught.value.message
    assert files(engine.spool_dir) == []


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "scribbled", "empty-zstd-frame"],
)
async def test_a_damaged_backup_file_leaves_the_target_untouched(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path, damage: str
) -> None:
    path = make_hard_database(data_dir / "keep.db", rows=3000)
    backup = make_hard_database(data_dir / "other.db", rows=3000, wal=False).read_bytes()
    (data_dir / "other.db").unlink()
    before = digest(path), snapshot(path)
    page_size = int.from_bytes(backup[16:18], "big")
    if damage == "garbage":
        payload, compression = os.urandom(200_000), Compression.none
    elif damage == "truncated":
        payload, compression = backup[: len(backup) // 2], Compression.none
    elif damage == "scribbled":
        middle = (len(backup) // page_size // 2) * page_size
        scribbled = bytearray(backup)
        scribbled[middle + 8 : middle + page_size - 8] = os.urandom(page_size - 16)
        payload, compression = bytes(scribbled), Compression.none
    else:
        payload, compression = b"\x28\xb5\x2f\xfd" + os.urandom(1000), Compression.zstd
    with pytest.raises(EngineError) as caught:
        await engine.restore(target_of(path), chunks_of(payload), compression=compression)
    no_path_in(caught.value.message, path)
    assert (digest(path), snapshot(path)) == before
    assert [name for name in files(data_dir) if "dbkeep" in name] == []


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO audit (message) VALUES ('uncommitted')")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Another process holding a write lock on a database until its stdin is closed."""
    started: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(child)
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        return child

    yield hold
    for child in started:
        if child.poll() is None:
            child.communicate("\n", timeout=10)


@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback-journal"])
async def test_a_restore_is_refused_while_another_process_holds_a_write_lock(
    engine: SQLiteEngine,
    storage: LocalStorage,
    data_dir: Path,
    lock_holder: Callable[[Path], subprocess.Popen[str]],
    wal: bool,
) -> None:
    path = make_hard_database(data_dir / "busy.db", wal=wal)
    await backup_to(engine, target_of(path), storage, "busy.sqlite.zst")
    holder = lock_holder(path)
    before = snapshot(path)
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        await engine.restore(
            target_of(path), storage.read("busy.sqlite.zst"), compression=Compression.zstd
        )
    assert time.monotonic() - started < 5  # refused at once: busy_timeout 0
    assert "locked" in caught.value.message and "another process" in caught.value.message
    no_path_in(caught.value.message, path)
    assert [name for name in files(data_dir) if "dbkeep" in name] == []
    holder.communicate("\n", timeout=10)
    assert snapshot(path) == before
    # Once the writer is gone the same restore goes through.
    await engine.restore(
        target_of(path), storage.read("busy.sqlite.zst"), compression=Compression.zstd
    )
    assert snapshot(path) == before


async def test_a_write_lock_held_too_long_fails_the_backup_as_transient(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In rollback-journal mode an exclusive lock keeps readers out: the backup waits for it a
    while, then fails as worth retrying, rather than hang (Python retries a locked step for
    ever)."""
    import app.engines.sqlite.engine as module

    monkeypatch.setattr(module, "READ_BUSY_MS", 500)
    path = make_hard_database(data_dir / "exclusive.db", wal=False)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        with pytest.raises(EngineError) as caught:
            await backup_to(engine, target_of(path), storage, "x.sqlite.zst")
    finally:
        connection.execute("ROLLBACK")
        connection.close()
    assert time.monotonic() - started < 10
    assert "locked by another process" in caught.value.message
    assert caught.value.kind.value == "transient"
    assert files(engine.spool_dir) == []


async def test_a_cancel_while_the_database_is_locked_stops_at_once(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = make_hard_database(data_dir / "exclusive.db", wal=False)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        task = asyncio.create_task(backup_to(engine, target_of(path), storage, "x.sqlite.zst"))
        await asyncio.sleep(0.5)
        assert not task.done()
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2
    finally:
        connection.execute("ROLLBACK")
        connection.close()
    assert files(engine.spool_dir) == []


async def test_a_full_disk_on_restore_leaves_the_target_untouched(
    engine: SQLiteEngine,
    storage: LocalStorage,
    data_dir: Path,
    tmpfs: Callable[..., Path],  # noqa: F811
) -> None:
    big = make_hard_database(data_dir / "big.db", rows=20000)
    await backup_to(engine, target_of(big), storage, "big.sqlite.zst")
    small_disk = tmpfs("2m")
    path = make_hard_database(small_disk / "small.db", rows=500)
    before = digest(path), snapshot(path)
    assert big.stat().st_size > 2 * 1024 * 1024
    with pytest.raises(EngineError) as caught:
        await engine.restore(
            target_of(path), storage.read("big.sqlite.zst"), compression=Compression.zstd
        )
    assert "no space left on the device" in caught.value.message
    no_path_in(caught.value.message, path)
    assert (digest(path), snapshot(path)) == before
    assert [name for name in files(small_disk) if "dbkeep" in name] == []


async def test_a_full_spool_disk_fails_the_backup_cleanly(
    storage: LocalStorage,
    data_dir: Path,
    tmpfs: Callable[..., Path],  # noqa: F811
) -> None:
    engine = SQLiteEngine(spool_dir=tmpfs("1m") / "spool")
    path = make_hard_database(data_dir / "big.db", rows=20000)
    with pytest.raises(EngineError) as caught:
        await backup_to(engine, target_of(path), storage, "big.sqlite.zst")
    assert "full" in caught.value.message or "space" in caught.value.message
    assert files(engine.spool_dir) == []
    assert files(storage.root) == []


async def test_a_cancel_mid_copy_stops_and_leaves_nothing(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = make_hard_database(data_dir / "cancel.db", rows=30000)
    before = snapshot(path)
    await storage.check_writable()
    writer = GatedWriter(await storage.open_writer("cancel.sqlite"), after=256 * 1024)
    task = asyncio.create_task(
        dump_into(engine, target_of(path), writer, compression=Compression.none)
    )
    await asyncio.wait_for(writer.reached.wait(), 30)
    assert len(files(engine.spool_dir)) == 1  # the copy is being streamed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert files(engine.spool_dir) == []
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []
    assert [name for name in files(data_dir) if "dbkeep" in name] == []
    assert snapshot(path) == before


async def test_a_cancel_mid_restore_leaves_the_target_untouched(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = make_hard_database(data_dir / "target.db", rows=3000)
    backup = make_hard_database(data_dir / "other.db", rows=30000).read_bytes()
    before = digest(path)
    sent = asyncio.Event()
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for n, start in enumerate(range(0, len(backup), 65536)):
            if n == 3:
                sent.set()
                await gate.wait()
            yield backup[start : start + 65536]

    task = asyncio.create_task(
        engine.restore(target_of(path), slow(), compression=Compression.none)
    )
    await asyncio.wait_for(sent.wait(), 30)
    assert [name for name in files(data_dir) if "dbkeep" in name] != []  # half written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert digest(path) == before
    assert [name for name in files(data_dir) if "dbkeep" in name] == []
