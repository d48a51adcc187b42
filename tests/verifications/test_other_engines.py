"""Verifications of PostgreSQL (the real local server) and SQLite backups: the manifest taken at
dump time holds the exact rows per table; a good backup's verification passes with them; a
manifest that disagrees fails saying which table; no scratch database or file is ever left; the
reconciler drops leftovers; a source's verify_url is checked against its own engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.engines.postgres.manifest import PostgresManifestObserver
from app.engines.registry import EngineRegistry
from app.engines.routing import RoutingEngine
from app.errors import ValidationFailed
from app.kit.secret import Secret
from app.sources.models import Source
from app.sources.service import _checked_verify_url
from app.storage import get_storage
from app.verifications.models import BackupVerification, VerificationStatus
from app.verifications.reconcile import reconcile_verifications
from app.verifications.runner import SQLITE_SCRATCH_DIR, VerificationRunner
from app.verifications.service import VerificationService
from tests import support
from tests.engines.pg_support import (  # noqa: F401  (fixtures)
    create_database,
    drop_database,
    pg_names,
    pg_source,
    pg_sql,
    pg_url,
)
from tests.verifications.conftest import SEED

PG_SEED = r'''
CREATE SCHEMA "odd Schema";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, note text,
                    b bytea, m mood);
INSERT INTO items (name, note, b, m)
  SELECT 'it''s, (' || g || ')', E'line\nbreak\ttab \\ back' || repeat('x', g % 9),
         decode(md5(g::text), 'hex'), 'ok' FROM generate_series(1, 5000) g;
CREATE TABLE "odd Schema"."Tags ""q""" (id serial PRIMARY KEY, label text);
INSERT INTO "odd Schema"."Tags ""q""" (label) VALUES (E'a\nb'), ('\.'), (E'\\.'), ('');
CREATE TABLE nothing (id int PRIMARY KEY);
CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT g, date '2024-06-01' + g FROM generate_series(1, 300) g;
CREATE VIEW item_names AS SELECT name FROM items;
CREATE MATERIALIZED VIEW item_count AS SELECT count(*) AS n FROM items;
CREATE FUNCTION upper_label() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$;
CREATE TRIGGER tags_upper BEFORE INSERT ON "odd Schema"."Tags ""q"""
  FOR EACH ROW EXECUTE FUNCTION upper_label();
SELECT lo_from_bytea(0, 'a large object');
'''
PG_ROWS = {
    "public.items": 5000,
    'odd Schema.Tags "q"': 4,
    "public.nothing": 0,
    "public.events_2024": 213,
    "public.events_2025": 87,
}


def pg_scratch_databases() -> list[str]:
    out = pg_sql(r"SELECT datname FROM pg_database WHERE datname LIKE 'dbkeep\_verify\_%'")
    return [line for line in out.split("\n") if line]


def runner(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=RoutingEngine(EngineRegistry(settings)),
        storage=get_storage(settings),
    )


async def add_source(database: Database, engine: str, url: str, name: str, **kw: Any) -> Source:
    async with database.sessionmaker() as session:
        row = Source(
            name=support.unique_name(engine).replace("_", "-"),
            engine=engine,
            url=Secret(url),
            databases=[name],
            exclude=[],
            retention={},
            **kw,
        )
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


async def back_up(
    database: Database, settings: Settings, source: Source, name: str
) -> DatabaseBackup:
    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=get_storage(settings), queue=None,
            actor=Actor.system("test"),
        )  # fmt: skip
        backup = await service.create(source=source, database=name, enqueue=False)
    done = await runner(database, settings).run_backup(backup.id)
    assert done.status is BackupStatus.completed, done.error_message
    assert done.manifest is not None
    return done


async def verify(database: Database, settings: Settings, backup_id: int) -> BackupVerification:
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(backup_id)
    backups = runner(database, settings)
    return await VerificationRunner(database=database, backups=backups).run(requested.id)


async def set_manifest(database: Database, backup_id: int, manifest: Any) -> None:
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, backup_id)
        assert backup is not None
        backup.manifest = manifest
        await session.commit()


def rows_of(done: BackupVerification) -> dict[str, tuple[int | None, int | None]]:
    return {t["name"]: (t["expected_rows"], t["restored_rows"]) for t in done.tables}


# ---- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def pg_database() -> Any:
    name = support.unique_name("dbkeep_pgv")
    create_database(name)
    pg_sql(PG_SEED, database=name)
    yield name
    drop_database(name)


async def test_a_postgresql_backup_is_verified_with_its_exact_rows(
    database: Database, settings: Settings, pg_database: str
) -> None:
    source = await add_source(
        database, "postgresql", pg_url(pg_database), pg_database,
        verify_url=Secret(pg_url("postgres")),
    )  # fmt: skip
    backup = await back_up(database, settings, source, pg_database)
    manifest = backup.manifest
    assert manifest is not None
    assert manifest["engine"] == "postgresql" and manifest["server_version"]
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == PG_ROWS
    assert manifest["objects"] == {
        "function": 1, "materialized view": 1, "procedure": 0, "sequence": 2, "trigger": 1,
        "type": 1, "view": 1,
    }  # fmt: skip
    before = pg_sql("SELECT count(*) FROM items", database=pg_database)

    done = await verify(database, settings, backup.id)
    assert done.status is VerificationStatus.passed, done.error_message
    assert rows_of(done) == {name: (rows, rows) for name, rows in PG_ROWS.items()}
    assert f"dbkeep_verify_{backup.id}" not in pg_scratch_databases()
    assert pg_sql("SELECT count(*) FROM items", database=pg_database) == before

    # A manifest that disagrees: the verification fails naming the table, and leaves nothing.
    wrong = dict(manifest)
    wrong["tables"] = [
        {**t, "rows": t["rows"] + 1} if t["name"] == "public.items" else t
        for t in manifest["tables"]
    ]
    await set_manifest(database, backup.id, wrong)
    failed = await verify(database, settings, backup.id)
    assert failed.status is VerificationStatus.failed
    assert failed.error_message == "table `public.items` has 5000 rows, the dump held 5001"
    assert rows_of(failed)["public.items"] == (5001, 5000)
    assert f"dbkeep_verify_{backup.id}" not in pg_scratch_databases()

    # An object kind that disagrees fails too.
    await set_manifest(database, backup.id, {**manifest, "objects": {"view": 2}})
    failed = await verify(database, settings, backup.id)
    assert failed.status is VerificationStatus.failed
    assert failed.error_message == "1 view(s) restored, the dump held 2"
    assert f"dbkeep_verify_{backup.id}" not in pg_scratch_databases()


async def test_a_postgresql_archive_is_counted_the_same_in_any_chunking(
    settings: Settings, pg_database: str, tmp_path: Path
) -> None:
    archive = tmp_path / "a.dump"
    support_dump = support_pg_dump(pg_database, archive)
    whole = PostgresManifestObserver()
    whole.feed(support_dump)
    expected = whole.result(server_version=None)
    assert {t["name"]: t["rows"] for t in expected["tables"]} == PG_ROWS
    for size in (1, 3, 7, 4096):
        observer = PostgresManifestObserver()
        for at in range(0, len(support_dump), size):
            observer.feed(memoryview(support_dump)[at : at + size])
        assert observer.result(server_version=None) == expected, size
    broken = PostgresManifestObserver()
    broken.feed(b"not an archive at all")
    assert "unreadable" in broken.result(server_version=None)


def support_pg_dump(name: str, path: Path) -> bytes:
    import subprocess

    from tests.engines.pg_support import PG_HOST, PG_PORT

    subprocess.run(
        ["pg_dump", "-Fc", "-Z0", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres",
         "-d", name, "-f", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path.read_bytes()


async def test_the_reconciler_drops_postgresql_scratch_leftovers(
    database: Database, settings: Settings, pg_database: str
) -> None:
    await add_source(
        database, "postgresql", pg_url(pg_database), pg_database,
        verify_url=Secret(pg_url("postgres")),
    )  # fmt: skip
    leftover = "dbkeep_verify_987654321"
    create_database(leftover)
    try:
        _failed, dropped = await reconcile_verifications(database, settings)
        assert dropped >= 1
        assert leftover not in pg_scratch_databases()
    finally:
        drop_database(leftover)


def test_a_verify_url_must_be_of_the_sources_engine() -> None:
    assert _checked_verify_url("postgresql", pg_url("postgres")) == pg_url("postgres")
    with pytest.raises(ValidationFailed):
        _checked_verify_url("postgresql", "mysql://root@127.0.0.1/mysql")
    with pytest.raises(ValidationFailed):
        _checked_verify_url("mysql", pg_url("postgres"))
    assert _checked_verify_url("sqlite", "sqlite:///tmp/scratch/") == "sqlite:///tmp/scratch/"
    with pytest.raises(ValidationFailed):
        _checked_verify_url("sqlite", "sqlite:///tmp/a.db")


# ---- SQLite --------------------------------------------------------------------------------------


def make_sqlite(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.executescript(
        '''
        PRAGMA journal_mode = wal;
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, b BLOB);
        CREATE TABLE "odd ""name""" (x);
        CREATE TABLE empty (id INTEGER PRIMARY KEY AUTOINCREMENT);
        CREATE INDEX items_name ON items (name);
        CREATE VIEW item_names AS SELECT name FROM items;
        CREATE TRIGGER items_upper AFTER INSERT ON items BEGIN SELECT 1; END;
        '''
    )
    connection.executemany(
        "INSERT INTO items (name, b) VALUES (?, ?)",
        [(f"it's\n{i}", bytes([i % 256]) * 10) for i in range(3000)],
    )
    connection.executemany('INSERT INTO "odd ""name""" VALUES (?)', [(1,), (None,)])
    connection.commit()
    connection.close()
    return path


SQLITE_ROWS = {"items": 3000, 'odd "name"': 2, "empty": 0}


def scratch_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("dbkeep_verify_*")) if directory.exists() else []


@pytest.mark.parametrize("with_directory", [False, True])
async def test_a_sqlite_backup_is_verified_with_its_exact_rows(
    database: Database, settings: Settings, tmp_path: Path, with_directory: bool
) -> None:
    path = make_sqlite(tmp_path / "shop.db")
    scratch = tmp_path / "scratch" if with_directory else settings.var_dir / SQLITE_SCRATCH_DIR
    verify_url = Secret(f"sqlite://{scratch}/") if with_directory else None
    source = await add_source(database, "sqlite", f"sqlite://{path}", "shop", verify_url=verify_url)
    backup = await back_up(database, settings, source, "shop")
    manifest = backup.manifest
    assert manifest is not None
    assert manifest["engine"] == "sqlite" and manifest["server_version"] == sqlite3.sqlite_version
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == SQLITE_ROWS
    assert manifest["objects"] == {"index": 1, "trigger": 1, "view": 1}

    done = await verify(database, settings, backup.id)
    assert done.status is VerificationStatus.passed, done.error_message
    assert rows_of(done) == {name: (rows, rows) for name, rows in SQLITE_ROWS.items()}
    assert scratch.is_dir() and scratch_files(scratch) == []

    tables = [{**t, "rows": 2999} if t["name"] == "items" else t for t in manifest["tables"]]
    wrong = {**manifest, "tables": tables}
    await set_manifest(database, backup.id, wrong)
    failed = await verify(database, settings, backup.id)
    assert failed.status is VerificationStatus.failed
    assert failed.error_message == "table `items` has 3000 rows, the dump held 2999"
    assert scratch_files(scratch) == []


async def test_a_damaged_sqlite_backup_fails_and_leaves_no_scratch_file(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = make_sqlite(tmp_path / "shop.db")
    source = await add_source(database, "sqlite", f"sqlite://{path}", "shop")
    backup = await back_up(database, settings, source, "shop")
    stored = get_storage(settings).path(backup.path)  # type: ignore[attr-defined]
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2])
    done = await verify(database, settings, backup.id)
    assert done.status is VerificationStatus.failed
    assert done.error_message and "damaged" in done.error_message
    assert scratch_files(settings.var_dir / SQLITE_SCRATCH_DIR) == []


async def test_the_reconciler_removes_sqlite_scratch_leftovers(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = make_sqlite(tmp_path / "shop.db")
    await add_source(database, "sqlite", f"sqlite://{path}", "shop")
    scratch = settings.var_dir / SQLITE_SCRATCH_DIR
    scratch.mkdir(parents=True)
    (scratch / "dbkeep_verify_77.sqlite").write_bytes(b"x")
    (scratch / "dbkeep_verify_77.sqlite-wal").write_bytes(b"x")
    (scratch / "keep-me.txt").write_bytes(b"x")
    _failed, dropped = await reconcile_verifications(database, settings)
    assert dropped == 1
    assert sorted(p.name for p in scratch.iterdir()) == ["keep-me.txt"]


async def test_the_hard_postgresql_fixture_verifies(
    database: Database,
    settings: Settings,
    pg_source: str,  # noqa: F811
) -> None:
    """Every hard case of pg_fixture.sql (extensions, partitions, ranges, domains ...)."""
    source = await add_source(
        database, "postgresql", pg_url(pg_source), pg_source,
        verify_url=Secret(pg_url("postgres")),
    )  # fmt: skip
    backup = await back_up(database, settings, source, pg_source)
    assert backup.manifest is not None and "unreadable" not in backup.manifest
    done = await verify(database, settings, backup.id)
    assert done.status is VerificationStatus.passed, done.error_message
    assert done.tables and all(t["expected_rows"] == t["restored_rows"] for t in done.tables)
    assert f"dbkeep_verify_{backup.id}" not in pg_scratch_databases()


async def test_a_mysql_backup_through_the_routing_engine_has_its_manifest(
    database: Database, settings: Settings, source: Source, target_database: str
) -> None:
    """The runners hold a routing engine in production: the manifest stage is the target's."""
    support.admin_sql(SEED, database=target_database)
    backup = await back_up(database, settings, source, target_database)
    assert backup.manifest is not None and backup.manifest["engine"] == "mysql"
    assert {t["name"]: t["rows"] for t in backup.manifest["tables"]} == {
        "items": 5000, "tags": 2, "nothing": 0,
    }  # fmt: skip
