"""``backup:verify`` of a backup that never had a file says so (never "missing")."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.config import Settings
from app.db import Database
from tests.test_cli import cli_env, dbkeep


async def _row(database: Database, **values: object) -> int:
    now = datetime.now(UTC)
    uid = secrets.token_hex(16)
    row = DatabaseBackup(
        filename=f"shop_{uid[:8]}.sql.zst",
        unique_identifier=uid,
        path=f"2026/12/shop_{uid[:8]}.sql.zst",
        file_size=0,
        backup_date=now,
        compression="zstd",
        trigger=BackupTrigger.manual,
        target_database="shop",
        bytes_processed=0,
        attempts=0,
        **values,
    )
    async with database.sessionmaker() as session:
        session.add(row)
        await session.commit()
        return row.id


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"status": BackupStatus.failed, "cancel_requested_at": datetime.now(UTC)}, "cancelled"),
        ({"status": BackupStatus.failed}, "failed before"),
        (
            {"status": BackupStatus.in_trash, "status_before_trash": BackupStatus.failed},
            "failed before",
        ),
    ],
    ids=["cancelled", "failed", "failed-in-trash"],
)
async def test_verify_of_a_backup_without_a_file_says_it_has_none(
    settings: Settings, database: Database, values: dict[str, object], reason: str
) -> None:
    backup_id = await _row(database, **values)
    result = dbkeep("backup:verify", str(backup_id), env=cli_env(settings))
    assert result.returncode == 1
    assert f"backup {backup_id} has no file" in result.stderr and reason in result.stderr
    assert "missing" not in result.stderr
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, backup_id)
        assert row is not None and row.integrity_status is None  # not flagged "missing"


async def test_verify_of_a_completed_backup_whose_file_is_gone_still_says_missing(
    settings: Settings, database: Database
) -> None:
    backup_id = await _row(database, status=BackupStatus.completed, checksum_sha256="0" * 64)
    result = dbkeep("backup:verify", str(backup_id), env=cli_env(settings))
    assert result.returncode == 1 and "is missing" in result.stderr
