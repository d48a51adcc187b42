"""Restores that must fail: damaged files, SQL errors, shell escapes, bad credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.backups.dumping import dump_into
from app.config import Settings
from app.engines import mysql_engine
from app.engines.base import EngineError, FailureKind, TargetSpec
from app.engines.mysql import MySQLEngine
from app.pipeline.checksum import sha256_of
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.conftest import checksums_by_table


@pytest.fixture(params=[1, 2], ids=["sequential", "parallel"])
def engine(settings: Settings, request: pytest.FixtureRequest) -> MySQLEngine:
    """Restores go through one client session, or several (``restore_parallelism``)."""
    return mysql_engine(settings.model_copy(update={"restore_parallelism": request.param}))


async def _store(storage: LocalStorage, key: str, data: bytes) -> None:
    writer = await storage.open_writer(key)
    await writer.write(data)
    await writer.commit()


async def _restore_fails(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    key: str,
    compression: Compression,
) -> EngineError:
    with pytest.raises(EngineError) as caught:
        await engine.restore(target, storage.read(key), compression=compression)
    assert "\n" not in caught.value.message
    assert target.password not in caught.value.message
    return caught.value


@pytest.mark.parametrize("compression", list(Compression))
async def test_truncated_backup_is_detected_and_refused(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    populated: str,
    compression: Compression,
) -> None:
    key = f"cut.sql.{compression.value}"
    writer = await storage.open_writer(key)
    outcome = await dump_into(engine, target, writer, compression=compression)
    await writer.commit()
    original = checksums_by_table(populated)

    path = storage.path(key)
    os.truncate(path, path.stat().st_size * 2 // 3)
    # What the runner checks before any restore: the recorded checksum no longer matches.
    digest, size = await sha256_of(storage.read(key))
    assert size < outcome.stored_bytes and digest != outcome.sha256

    scratch = target.with_database(support.unique_name("dbkeep_scratch"))
    await engine.recreate_database(scratch)
    try:
        error = await _restore_fails(engine, storage, scratch, key, compression)
    finally:
        await engine.drop_database(scratch)
    assert error.kind is FailureKind.permanent
    if compression is Compression.none:
        assert error.message.startswith("incomplete dump")
    else:
        assert "the backup file is damaged" in error.message
    assert checksums_by_table(populated) == original


async def test_altered_backup_changes_the_checksum(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, populated: str
) -> None:
    writer = await storage.open_writer("altered.sql.zst")
    outcome = await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()
    path = storage.path("altered.sql.zst")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    digest, size = await sha256_of(storage.read("altered.sql.zst"))
    assert size == outcome.stored_bytes and digest != outcome.sha256


async def test_sql_error_reports_the_line_without_the_sql(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec
) -> None:
    await _store(
        storage,
        "bad.sql",
        b"CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n"
        b"INSERT INTO t VALUES ('private value' oops);\n-- Dump completed on 2024-01-01\n",
    )
    error = await _restore_fails(engine, storage, target, "bad.sql", Compression.none)
    assert error.message.startswith("mariadb failed with error 1064 at line 3: You have an error")
    assert "private value" not in error.message
    # What ran before the error stays: the caller rolls back.
    assert support.admin_sql("SELECT a FROM t", database=target.database).split() == ["1"]


async def test_shell_escapes_in_a_dump_are_refused(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    await _store(
        storage,
        "evil.sql",
        f"CREATE TABLE t (a INT);\n\\! touch {marker}\n-- Dump completed on x\n".encode(),
    )
    with pytest.raises(EngineError, match="sandbox"):
        await engine.restore(target, storage.read("evil.sql"), compression=Compression.none)
    assert not marker.exists()


async def test_restore_with_wrong_password_or_missing_file(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec
) -> None:
    await _store(storage, "ok.sql", b"SELECT 1;\n-- Dump completed on x\n")
    wrong = TargetSpec.from_url(support.target_url(target.database, password="nope-nope"))
    error = await _restore_fails(engine, storage, wrong, "ok.sql", Compression.none)
    assert error.message.startswith("access denied for user 'dbkeep_test'")
    error = await _restore_fails(engine, storage, target, "gone.sql", Compression.none)
    assert error.message == "the backup file is missing"
    await engine.restore(target, storage.read("ok.sql"), compression=Compression.none)
