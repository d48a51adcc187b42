"""``dbkeep backup:verify ID --restore``: a test restore run by the CLI, its verdict, exit code."""

from __future__ import annotations

from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.verifications.models import BackupVerification, VerificationStatus
from tests.test_cli import cli_env, dbkeep
from tests.verifications.conftest import scratch_databases


async def test_verify_restore_passes_a_good_backup_and_reports_each_table(
    settings: Settings, database: Database, completed: int
) -> None:
    result = dbkeep("backup:verify", str(completed), "--restore", env=cli_env(settings))
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout
    assert "items: expected 5000, restored 5000" in result.stdout
    assert f"dbkeep_verify_{completed}" not in scratch_databases()
    async with database.sessionmaker() as session:
        rows = list(await session.scalars(select(BackupVerification)))
    assert [(r.status, r.trigger) for r in rows] == [(VerificationStatus.passed, "cli")]


async def test_verify_restore_of_a_damaged_file_fails_with_exit_1(
    settings: Settings, database: Database, completed: int
) -> None:
    from app.backups.models import DatabaseBackup
    from app.storage import get_storage

    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, completed)
        assert backup is not None
    path = get_storage(settings).path(backup.path)  # type: ignore[attr-defined]
    path.write_bytes(path.read_bytes()[:-100])
    result = dbkeep("backup:verify", str(completed), "--restore", env=cli_env(settings))
    assert result.returncode == 1
    assert "failed" in result.stderr and "damaged" in result.stderr
    assert f"dbkeep_verify_{completed}" not in scratch_databases()
