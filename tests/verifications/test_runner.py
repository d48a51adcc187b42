"""A verification against the real MariaDB: a good backup passes; a damaged one or a manifest
that disagrees fails; no scratch database is ever left behind; the reconciler cleans up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.backups.models import DatabaseBackup
from app.backups.runner import BackupRunner
from app.config import Settings
from app.db import Database, utcnow
from app.errors import Conflict
from app.jobs.queue import ArqJobQueue, verification_job_id
from app.notifications.models import NotificationDelivery
from app.sources.health import FAILED_VERIFICATION
from app.sources.health_service import SourceHealthService
from app.storage import get_storage
from app.verifications.models import BackupVerification, VerificationStatus
from app.verifications.reconcile import STOPPED, reconcile_verifications
from app.verifications.runner import VerificationRunner
from app.verifications.service import VerificationService
from tests import support
from tests.notifications.conftest import add_channel
from tests.verifications.conftest import scratch_databases


async def _verify(database: Database, backups: BackupRunner, backup_id: int) -> BackupVerification:
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(backup_id)
    return await VerificationRunner(database=database, backups=backups).run(requested.id)


async def _restore_manifest(database: Database, backup_id: int, manifest: Any) -> None:
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, backup_id)
        assert backup is not None
        backup.manifest = manifest
        await session.commit()


async def test_a_good_backup_passes_and_leaves_no_scratch_database(
    database: Database, backups: BackupRunner, completed: int, target_database: str
) -> None:
    before = support.table_checksums(target_database)
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.passed, done.error_message
    assert done.error_message is None
    rows = {t["name"]: (t["expected_rows"], t["restored_rows"]) for t in done.tables}
    assert rows == {"items": (5000, 5000), "tags": (2, 2), "nothing": (0, 0)}
    assert done.duration_ms is not None and done.started_at and done.finished_at
    assert f"dbkeep_verify_{completed}" not in scratch_databases()
    # The source's own database was never touched.
    assert support.table_checksums(target_database) == before


async def test_a_truncated_file_fails_and_leaves_no_scratch_database(
    database: Database, backups: BackupRunner, completed: int, settings: Settings
) -> None:
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, completed)
        assert backup is not None
        path = get_storage(settings).path(backup.path)  # type: ignore[attr-defined]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.failed
    assert done.error_message and "damaged" in done.error_message
    assert f"dbkeep_verify_{completed}" not in scratch_databases()


async def test_a_manifest_that_disagrees_fails_and_notifies_once(
    database: Database, backups: BackupRunner, completed: int, settings: Settings
) -> None:
    channel = await add_channel(
        database,
        settings,
        "webhook",
        {"url": "http://127.0.0.1:9/hook", "secret": "s" * 24},
        ["verification.failed"],
    )
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, completed)
        assert backup is not None and backup.manifest is not None
        original = backup.manifest
        manifest = dict(backup.manifest)
        manifest["tables"] = [
            {**t, "rows": t["rows"] + 1} if t["name"] == "tags" else t for t in manifest["tables"]
        ]
        backup.manifest = manifest
        await session.commit()
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.failed
    assert done.error_message == "table `tags` has 2 rows, the dump held 3"
    tags = next(t for t in done.tables if t["name"] == "tags")
    assert tags == {"name": "tags", "expected_rows": 3, "restored_rows": 2}
    assert f"dbkeep_verify_{completed}" not in scratch_databases()
    async with database.sessionmaker() as session:
        queued = (await session.scalars(select(NotificationDelivery))).all()
    assert [(d.channel_id, d.event) for d in queued] == [(channel.id, "verification.failed")]
    sent = queued[0].payload["verification"]
    assert sent["id"] == done.id and sent["status"] == "failed"
    assert sent["error_message"] == "table `tags` has 2 rows, the dump held 3"
    # The source is failing for it, until a test restore passes again.
    async with database.sessionmaker() as session:
        found = await SourceHealthService(session, backup_dir=None).evaluate()
    reasons = {e.snapshot.source_id: [r.code for r in e.health.reasons] for e in found}
    assert FAILED_VERIFICATION in reasons[done.source_id]
    await _restore_manifest(database, completed, original)
    passed = await _verify(database, backups, completed)
    assert passed.status is VerificationStatus.passed
    async with database.sessionmaker() as session:
        found = await SourceHealthService(session, backup_dir=None).evaluate()
    reasons = {e.snapshot.source_id: [r.code for r in e.health.reasons] for e in found}
    assert FAILED_VERIFICATION not in reasons[done.source_id]


async def test_a_second_request_while_one_is_pending_is_refused(
    database: Database, completed: int
) -> None:
    async with database.sessionmaker() as session:
        service = VerificationService(session, queue=None, actor=Actor.system("test"))
        await service.request_for_backup(completed)
        with pytest.raises(Conflict):
            await service.request_for_backup(completed)


async def test_the_reconciler_drops_a_dead_workers_scratch_database(
    database: Database, settings: Settings, completed: int
) -> None:
    name = f"dbkeep_verify_{completed}"
    support.admin_sql(f"CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (id INT);")
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(completed)
        row = await session.get(BackupVerification, requested.id)
        assert row is not None
        row.status = VerificationStatus.running
        row.started_at = row.heartbeat_at = utcnow()
        await session.commit()
    # A live verification's database stays.
    assert await reconcile_verifications(database, settings) == (0, 0)
    assert name in scratch_databases()
    async with database.sessionmaker() as session:
        row = await session.get(BackupVerification, requested.id)
        assert row is not None
        row.heartbeat_at = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds + 5)
        await session.commit()
    failed, dropped = await reconcile_verifications(database, settings)
    assert (failed, dropped) == (1, 1)
    assert name not in scratch_databases()
    async with database.sessionmaker() as session:
        row = await session.get(BackupVerification, requested.id, populate_existing=True)
        assert row is not None and row.status is VerificationStatus.failed
        assert row.error_message == STOPPED


async def test_a_pending_verification_whose_job_vanished_is_queued_again(
    database: Database, settings: Settings, completed: int, queue: ArqJobQueue
) -> None:
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(completed)
        row = await session.get(BackupVerification, requested.id)
        assert row is not None
        row.created_at = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds + 5)
        await session.commit()
    job_id = verification_job_id(settings.queue_name, requested.id)
    assert not await queue.job_exists(job_id)
    await reconcile_verifications(database, settings, queue)
    assert await queue.job_exists(job_id)
