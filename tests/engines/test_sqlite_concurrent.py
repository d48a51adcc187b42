"""SQLite: a backup taken while the application writes is one consistent snapshot, and the
application is not held up by it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.engines.sqlite import SQLiteEngine
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests.engines.sqlite_support import (
    Writer,
    backup_to,
    integrity,
    ledger_consistent,
    target_of,
)


@pytest.fixture
def engine(tmp_path: Path) -> SQLiteEngine:
    return SQLiteEngine(spool_dir=tmp_path / "var" / "sqlite-spool")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups")


@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback-journal"])
async def test_a_backup_under_a_writer_thread_is_consistent(
    engine: SQLiteEngine, storage: LocalStorage, tmp_path: Path, wal: bool
) -> None:
    path = tmp_path / "busy.db"
    Writer.prepare(path, wal=wal, filler_mib=24)
    # In rollback-journal mode a writer that never pauses starves every reader (SQLite's
    # locking): the application there commits, then pauses a few milliseconds.
    writer = Writer(path, pause=0.0 if wal else 0.005)
    writer.start()
    try:
        while writer.commits < 200:
            await asyncio.sleep(0.01)
        copies = []
        for n in range(3):
            before = writer.commits
            await backup_to(engine, target_of(path), storage, f"busy-{n}.sqlite.zst")
            copies.append((before, writer.commits))
    finally:
        writer.stop.set()
        await asyncio.to_thread(writer.join, 30)
    assert writer.error is None, writer.error
    if wal:
        # The writer was never held up: it went on committing while the copies were taken.
        assert any(after > before for before, after in copies), copies
    for n, (before, after) in enumerate(copies):
        restored = tmp_path / f"restored-{n}.db"
        await engine.restore(
            target_of(restored), storage.read(f"busy-{n}.sqlite.zst"), compression=Compression.zstd
        )
        assert integrity(restored) == "ok"
        consistent, rows = ledger_consistent(restored)
        assert consistent, (n, rows)
        # A snapshot from within the backup's run: no fewer rows than before it started.
        assert before <= rows <= after, (before, rows, after)


WRITER_PROCESS = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
n = 0
print("writing", flush=True)
while True:
    n += 1
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO ledger (amount, pad) VALUES (?, ?)", (n, os.urandom(200)))
    connection.execute("UPDATE totals SET total = total + ? WHERE id = 1", (n,))
    connection.execute("COMMIT")
"""


async def test_a_backup_under_a_writer_process_is_consistent(
    engine: SQLiteEngine, storage: LocalStorage, tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    Writer.prepare(path, wal=True, filler_mib=24)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_PROCESS, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        outcome = await backup_to(engine, target_of(path), storage, "app.sqlite.zst")
        assert child.poll() is None  # still writing
        _consistent_before, rows_before = ledger_consistent(path)
    finally:
        child.kill()
        child.wait(10)
    restored = tmp_path / "restored.db"
    await engine.restore(
        target_of(restored), storage.read("app.sqlite.zst"), compression=Compression.zstd
    )
    assert integrity(restored) == "ok"
    consistent, rows = ledger_consistent(restored)
    assert consistent and 0 < rows <= rows_before
    assert outcome.raw_bytes > 24 * 1024 * 1024
