"""The reconciler against the real metadata store, Redis and backup directory."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from arq.constants import in_progress_key_prefix

from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus
from app.config import Settings
from app.db import Database, utcnow
from app.jobs.queue import ArqJobQueue, backup_job_id
from app.jobs.reconciler import Reconciler, backup_attempt_budget
from app.jobs.worker import in_progress_timeout
from app.storage import get_storage
from tests.backups.factories import make_backup

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]


@pytest.fixture
def reconciler(database: Database, worker_settings: Settings, queue: ArqJobQueue) -> Reconciler:
    return Reconciler(
        database=database,
        settings=worker_settings,
        storage=get_storage(worker_settings),
        queue=queue,
        in_progress_timeout_s=in_progress_timeout(worker_settings),
    )


async def unfinished(database: Database, status: BackupStatus, **values: Any) -> DatabaseBackup:
    row = await make_backup(database, status=status)
    async with database.sessionmaker() as session:
        stored = await session.get(DatabaseBackup, row.id)
        assert stored is not None
        for name, value in values.items():
            setattr(stored, name, value)
        await session.commit()
    return row


async def test_a_completed_backup_whose_file_vanished_is_flagged_missing_once(
    reconciler: Reconciler, database: Database, worker_settings: Settings, read_backup: ReadBackup
) -> None:
    storage = get_storage(worker_settings)
    kept = await make_backup(database, storage)
    gone = await make_backup(database, storage)
    await storage.delete(gone.path)

    report = await reconciler.run_once()

    assert report.missing_flagged == 1
    assert (await read_backup(gone.id)).integrity_status is IntegrityStatus.missing
    assert (await read_backup(kept.id)).integrity_status is None
    reconciler._last_file_check = 0.0  # the check is throttled; force a second pass
    assert (await reconciler.run_once()).missing_flagged == 0


async def test_only_temporaries_older_than_any_live_dump_are_removed(
    reconciler: Reconciler, worker_settings: Settings
) -> None:
    folder = worker_settings.backup_dir / "2026" / "11"
    folder.mkdir(parents=True)
    old = folder / ".tmp-backup_shop_old.sql.zst-abc123"
    fresh = folder / ".tmp-backup_shop_new.sql.zst-def456"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    limit = worker_settings.backup_timeout_seconds + worker_settings.heartbeat_timeout_seconds
    stamp = time.time() - limit - 5
    os.utime(old, (stamp, stamp))

    report = await reconciler.run_once()

    assert report.orphans_removed == 1
    assert not old.exists() and fresh.exists()


async def test_a_pending_row_whose_job_was_lost_is_queued_again(
    reconciler: Reconciler, database: Database, queue: ArqJobQueue
) -> None:
    row = await unfinished(database, BackupStatus.pending)

    report = await reconciler.run_once()

    assert report.requeued == 1
    assert await queue.job_exists(backup_job_id(queue.queue_name, row.id))
    assert (await reconciler.run_once()).requeued == 0  # queued once, not twice


async def test_a_silent_in_progress_row_gets_its_job_rerun_now(
    reconciler: Reconciler, database: Database, queue: ArqJobQueue, worker_settings: Settings
) -> None:
    silent = utcnow() - timedelta(seconds=worker_settings.heartbeat_timeout_seconds + 1)
    row = await unfinished(
        database, BackupStatus.in_progress, started_at=silent, heartbeat_at=silent, attempts=1
    )
    job_id = backup_job_id(queue.queue_name, row.id)
    await queue.enqueue_backup(row.id)
    # A worker took the job and died: arq's marker would hold the job for its whole timeout.
    await queue.redis.psetex(in_progress_key_prefix + job_id, 3_600_000, b"1")

    report = await reconciler.run_once()

    assert report.released == 1
    assert not await queue.redis.exists(in_progress_key_prefix + job_id)
    assert await queue.job_exists(job_id)


async def test_a_live_in_progress_row_is_left_alone(
    reconciler: Reconciler, database: Database, queue: ArqJobQueue
) -> None:
    row = await unfinished(
        database, BackupStatus.in_progress, started_at=utcnow(), heartbeat_at=utcnow(), attempts=1
    )
    job_id = backup_job_id(queue.queue_name, row.id)
    await queue.enqueue_backup(row.id)
    await queue.redis.psetex(in_progress_key_prefix + job_id, 3_600_000, b"1")

    report = await reconciler.run_once()

    assert not report.any()
    assert await queue.redis.exists(in_progress_key_prefix + job_id)


async def test_a_row_that_keeps_killing_its_worker_is_failed(
    reconciler: Reconciler, database: Database, worker_settings: Settings, read_backup: ReadBackup
) -> None:
    silent = utcnow() - timedelta(seconds=worker_settings.heartbeat_timeout_seconds + 1)
    row = await unfinished(
        database,
        BackupStatus.in_progress,
        started_at=silent,
        heartbeat_at=silent,
        attempts=backup_attempt_budget(worker_settings),
    )

    report = await reconciler.run_once()

    assert report.failed == 1
    failed = await read_backup(row.id)
    assert failed.status is BackupStatus.failed
    assert "giving up" in (failed.error_message or "")


async def test_a_row_running_past_its_timeout_is_failed(
    reconciler: Reconciler, database: Database, worker_settings: Settings, read_backup: ReadBackup
) -> None:
    long_ago = utcnow() - timedelta(
        seconds=worker_settings.backup_timeout_seconds
        + 2 * worker_settings.heartbeat_timeout_seconds
        + 1
    )
    row = await unfinished(
        database, BackupStatus.in_progress, started_at=long_ago, heartbeat_at=utcnow()
    )

    await reconciler.run_once()

    failed = await read_backup(row.id)
    assert failed.status is BackupStatus.failed
    assert "did not finish within" in (failed.error_message or "")


@pytest.mark.parametrize("schedule_enabled", [True, False])
async def test_the_reconciler_knows_how_long_arq_keeps_its_markers(
    worker_settings: Settings, schedule_enabled: bool
) -> None:
    from app.jobs.worker import create_worker

    settings = worker_settings.model_copy(update={"schedule_enabled": schedule_enabled})
    worker = create_worker(settings, handle_signals=False)
    assert in_progress_timeout(settings) == worker.in_progress_timeout_s
