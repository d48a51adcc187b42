"""Dump a real database into local storage, break it, restore it: everything comes back."""

from __future__ import annotations

import stat

import pytest

from app.backups.dumping import dump_into
from app.config import Settings
from app.engines import mysql_engine
from app.engines.base import TargetSpec
from app.engines.mysql import MySQLEngine
from app.pipeline.checksum import sha256_of
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.conftest import checksums_by_table, definitions


@pytest.fixture(params=[1, 2], ids=["sequential", "parallel"])
def engine(settings: Settings, request: pytest.FixtureRequest) -> MySQLEngine:
    """Restores go through one client session, or several (``restore_parallelism``)."""
    return mysql_engine(settings.model_copy(update={"restore_parallelism": request.param}))


@pytest.mark.parametrize("compression", list(Compression))
async def test_dump_then_restore_brings_everything_back(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    populated: str,
    compression: Compression,
) -> None:
    checksums = support.table_checksums(populated)
    defs = definitions(populated)
    assert {name.split(".")[-1] for name in checksums} == {"audit", "customers", "orders"}
    assert all(len(rows) >= 1 for rows in defs.values()), defs

    progress: list[int] = []

    async def on_progress(raw_bytes: int) -> None:
        progress.append(raw_bytes)

    await storage.check_writable()
    key = f"backup.sql.{compression.value}"
    writer = await storage.open_writer(key)
    outcome = await dump_into(
        engine, target, writer, compression=compression, on_progress=on_progress
    )
    stored = await writer.commit()

    assert stored == outcome.stored_bytes == await storage.size(key)
    assert await sha256_of(storage.read(key)) == (outcome.sha256, stored)
    assert outcome.raw_bytes > 10_000
    if compression is Compression.none:
        assert outcome.raw_bytes == stored
    else:
        assert stored < outcome.raw_bytes
    assert "MariaDB" in outcome.tool_version
    assert outcome.server_version and "MariaDB" in outcome.server_version
    assert stat.S_IMODE(storage.path(key).stat().st_mode) == 0o600
    assert stat.S_IMODE(storage.root.stat().st_mode) == 0o700
    assert [p.name for p in storage.root.iterdir()] == [key]

    # Damage data and definitions, then roll back the way a failed restore would.
    support.admin_sql(
        "UPDATE customers SET name = 'changed', avatar = NULL; DELETE FROM audit;"
        "DROP VIEW big_spenders; DROP TRIGGER orders_audit; DROP PROCEDURE add_order;"
        "DROP EVENT nightly_cleanup; CREATE TABLE extra (id INT);",
        database=populated,
    )
    assert support.table_checksums(populated) != checksums

    await engine.recreate_database(target)
    assert support.table_checksums(populated) == {}
    await engine.restore(target, storage.read(key), compression=compression)

    assert support.table_checksums(populated) == checksums
    assert definitions(populated) == defs
    # The trigger and the procedure work after the restore, not just exist.
    support.admin_sql("CALL add_order(2, 5.00);", database=populated)
    assert support.admin_sql("SELECT COUNT(*) FROM audit", database=populated).strip() == "4"


async def test_restore_into_another_database(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, populated: str
) -> None:
    writer = await storage.open_writer("copy.sql.zst")
    await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()
    scratch = target.with_database(support.unique_name("dbkeep_scratch"))
    try:
        await engine.recreate_database(scratch)
        await engine.restore(scratch, storage.read("copy.sql.zst"), compression=Compression.zstd)
        assert checksums_by_table(scratch.database) == checksums_by_table(populated)
    finally:
        await engine.drop_database(scratch)
    assert support.admin_sql(f"SHOW DATABASES LIKE '{scratch.database}'").strip() == ""


async def test_estimate_size_and_probe(
    engine: MySQLEngine, target: TargetSpec, populated: str
) -> None:
    estimate = await engine.estimate_size(target)
    assert estimate is not None and estimate > 0
    status = await engine.probe()
    assert status.ok and status.message == "ok"
    assert status.dump_tool == "mariadb-dump" and status.client_tool == "mariadb"
    assert status.sandbox_supported
