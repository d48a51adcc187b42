"""SQLite: back a database with every hard case up into storage, change it, restore it: it comes
back exactly (every table's ordered rows, the schema SQL, the pragmas the file keeps)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from app.engines.base import TargetSpec
from app.engines.sqlite import SQLiteEngine, sqlite_target
from app.engines.sqlite.paths import database_name_of, sqlite_path_of
from app.pipeline.checksum import sha256_of
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests.engines.sqlite_support import (
    backup_to,
    integrity,
    make_hard_database,
    snapshot,
    target_of,
)


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


def beside(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback-journal"])
@pytest.mark.parametrize("compression", list(Compression))
async def test_a_backup_restores_the_database_exactly(
    engine: SQLiteEngine,
    storage: LocalStorage,
    data_dir: Path,
    compression: Compression,
    wal: bool,
) -> None:
    path = make_hard_database(data_dir / "shop.db", wal=wal)
    before = snapshot(path)
    assert before["pragmas"]["user_version"] == 42
    assert before["pragmas"]["journal_mode"] == ("wal" if wal else "delete")
    assert {row[1] for row in before["schema"]} >= {
        "settings",
        "orders_audit",
        "big_spenders",
        "orders_by_customer",
        "sqlite_sequence",
    }
    target = target_of(path)

    progress: list[int] = []

    async def on_progress(done: int) -> None:
        progress.append(done)

    outcome = await backup_to(
        engine, target, storage, f"shop.sqlite.{compression.value}", compression
    )
    key = f"shop.sqlite.{compression.value}"
    assert await sha256_of(storage.read(key)) == (outcome.sha256, outcome.stored_bytes)
    assert outcome.raw_bytes == os.path.getsize(path) or wal  # a WAL file may hold more pages
    assert outcome.raw_bytes % before["pragmas"]["page_size"] == 0
    assert outcome.tool_version.startswith("SQLite backup API ")
    assert outcome.server_version == sqlite3.sqlite_version
    if compression is Compression.none:
        assert outcome.stored_bytes == outcome.raw_bytes
    assert list((engine.spool_dir).iterdir()) == []  # the spooled copy is gone

    # Change data, schema and pragmas; the restore puts everything back.
    connection = sqlite3.connect(path)
    connection.executescript(
        "UPDATE customers SET name = name || '!', avatar = NULL; DELETE FROM audit;"
        "DROP VIEW big_spenders; DROP TRIGGER orders_audit; CREATE TABLE extra (id INTEGER);"
        "DELETE FROM settings WHERE key = 'theme'; PRAGMA user_version = 7;"
        "INSERT INTO orders (customer_id, total) VALUES (1, 1);"
    )
    connection.commit()
    connection.close()
    assert snapshot(path) != before
    mode = stat.S_IMODE(path.stat().st_mode)

    await engine.restore(
        target, storage.read(key), compression=compression, on_progress=on_progress
    )

    assert beside(data_dir) == ["shop.db"]  # no temporary file, no stale -wal/-shm
    assert snapshot(path) == before
    assert integrity(path) == "ok"
    assert stat.S_IMODE(path.stat().st_mode) == mode
    # The application goes on using it: the AUTOINCREMENT sequence continues where it was.
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO orders (customer_id, total) VALUES (2, 2)")
    (last,) = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'orders'").fetchone()
    connection.commit()
    connection.close()
    assert last == len(before["tables"]["orders"]) + 1


async def test_a_restore_into_a_new_file_creates_it(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    path = make_hard_database(data_dir / "app.db")
    await backup_to(engine, target_of(path), storage, "app.sqlite.zst")
    copy = data_dir / "copy.db"
    await engine.restore(
        target_of(copy), storage.read("app.sqlite.zst"), compression=Compression.zstd
    )
    assert snapshot(copy) == snapshot(path)
    assert (await engine.inspect(target_of(copy))).options is not None


async def test_a_live_wal_is_in_the_copy(
    engine: SQLiteEngine, storage: LocalStorage, data_dir: Path
) -> None:
    """Rows committed to the -wal but not checkpointed yet, with the writer still connected."""
    path = make_hard_database(data_dir / "live.db")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.executemany("INSERT INTO audit (message) VALUES (?)", [("wal",)] * 2000)
    connection.commit()
    assert os.path.getsize(f"{path}-wal") > 0
    try:
        expected = snapshot(path)
        await backup_to(engine, target_of(path), storage, "live.sqlite.zst")
    finally:
        connection.close()
    restored = data_dir / "restored.db"
    await engine.restore(
        target_of(restored), storage.read("live.sqlite.zst"), compression=Compression.zstd
    )
    assert snapshot(restored) == expected


async def test_the_engine_reports_and_inspects_a_file(engine: SQLiteEngine, data_dir: Path) -> None:
    path = make_hard_database(data_dir / "my.app-db.sqlite3")
    target = target_of(path)
    assert target.database == "my_app-db"
    report = await engine.check_connection(target)
    assert report.ok, report.message
    assert report.databases == ("my_app-db",)
    assert sqlite3.sqlite_version in (report.server_version or "")
    assert f"file {path.stat().st_size} bytes" in report.message
    assert "journal mode wal" in report.message
    assert str(data_dir) not in report.message
    tools = await engine.probe()
    assert tools.ok and tools.dump_version == sqlite3.sqlite_version
    state = await engine.inspect(target)
    assert state.options is not None and state.options.character_set == "UTF-8"
    kinds = {(o.kind, o.name) for o in state.objects}
    assert {("table", "settings"), ("view", "big_spenders"), ("trigger", "orders_audit")} <= kinds
    assert await engine.list_databases(target) == ["my_app-db"]
    assert (await engine.estimate_size(target) or 0) >= path.stat().st_size
    missing = target_of(data_dir / "absent.db")
    assert (await engine.inspect(missing)).options is None
    assert await engine.estimate_size(missing) is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://relative/file.db",
        "sqlite:///",
        "sqlite:///data/",
        "sqlite:///data/../etc/file.db",
        "sqlite:///data/./file.db",
        "sqlite:////double/slash.db",
        "sqlite:///data/file.db?mode=ro",
        "sqlite:///data/nul%00.db",
    ],
)
def test_only_absolute_plain_file_paths_are_accepted(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        sqlite_path_of(url)
    assert "data" not in str(caught.value) and "relative" not in str(caught.value)
    with pytest.raises(ValueError):
        TargetSpec.from_url(url)


def test_a_file_url_names_its_path_and_its_database() -> None:
    spec = TargetSpec.from_url("sqlite:///srv/app/data%20dir/shop.db", database="ignored")
    assert (spec.scheme, spec.path, spec.database) == (
        "sqlite",
        "/srv/app/data dir/shop.db",
        "shop",
    )
    assert spec.with_database("other") is spec
    assert sqlite_target("sqlite:///x/.hidden").database == "_hidden"
    assert database_name_of("/x/-weird name!.db") == "_weird_name_"
    assert database_name_of("/x/" + "a" * 100 + ".db") == "a" * 64
