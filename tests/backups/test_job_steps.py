"""What a job asks of the runners and the service around a run: whether there is anything to
run, refusing a second restore of a database, and recording a schedule slot once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from app.audit.service import Actor
from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    RestoreOperation,
    RestorePhase,
    RestoreStatus,
)
from app.backups.restores import RestoreJob, RestoreRunner
from app.backups.runner import BackupJob, BackupRunner, NothingToRun
from app.backups.service import BackupService, target_for
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.storage import get_storage
from tests.backups.factories import make_backup


@pytest.fixture
def backup_runner(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


@pytest.fixture
def restore_runner(database: Database, settings: Settings) -> RestoreRunner:
    return RestoreRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


async def pending_restore(database: Database, settings: Settings) -> int:
    backup = await make_backup(database, get_storage(settings))
    async with database.sessionmaker() as session:
        operation = RestoreOperation(
            backup_id=backup.id,
            status=RestoreStatus.pending,
            use_safety_backup=True,
            target_database=backup.target_database,
        )
        session.add(operation)
        await session.commit()
        return operation.id


async def test_a_backup_job_runs_only_a_waiting_row(
    backup_runner: BackupRunner, database: Database, settings: Settings
) -> None:
    pending = await make_backup(database, status=BackupStatus.pending, target_database="shop")
    done = await make_backup(database, status=BackupStatus.completed)
    assert await backup_runner.backup_job(pending.id) == BackupJob(
        backup_id=pending.id,
        target_database="shop",
        # A row from before sources: DBKEEP_TARGET_URL's server, the row's database.
        target=target_for(settings, "shop"),
        attempt=1,
        max_attempts=settings.transient_retries + 1,
    )
    assert await backup_runner.backup_job(done.id) == NothingToRun("nothing to do: completed")
    assert await backup_runner.backup_job(done.id + 1000) == NothingToRun("gone")


async def test_a_second_restore_of_a_database_is_refused_while_pending_only(
    restore_runner: RestoreRunner, database: Database, settings: Settings
) -> None:
    restore_id = await pending_restore(database, settings)
    job = await restore_runner.restore_job(restore_id)
    assert isinstance(job, RestoreJob) and job.restore_id == restore_id

    assert await restore_runner.refuse_beside(restore_id, running="restore 7") is True
    async with database.sessionmaker() as session:
        row = await session.get(RestoreOperation, restore_id)
    assert row is not None
    assert (row.status, row.phase) == (RestoreStatus.failed, RestorePhase.finished)
    assert row.error_message is not None and "(restore 7)" in row.error_message
    assert row.completed_at is not None
    # Refused once: a rerun of the job finds nothing to do, and nothing refuses it twice.
    assert await restore_runner.restore_job(restore_id) == NothingToRun("nothing to do: failed")
    assert await restore_runner.refuse_beside(restore_id, running="restore 8") is False
    assert await restore_runner.restore_job(restore_id + 1000) == NothingToRun("gone")


@contextlib.asynccontextmanager
async def scheduler(database: Database, settings: Settings) -> AsyncIterator[BackupService]:
    """The service as the worker's scheduler has it, over a session of its own."""
    async with database.sessionmaker() as session:
        yield BackupService(
            session,
            settings=settings,
            storage=get_storage(settings),
            queue=None,
            actor=Actor.system("scheduler"),
        )


async def test_a_schedule_slot_is_recorded_once(
    database: Database, settings: Settings, target_database: str
) -> None:
    slot = "backup:2026-01-01T00:00"
    async with scheduler(database, settings) as service:
        assert await service.slot_taken(slot) is False
        first = await service.create_scheduled(slot)
    assert first is not None
    assert (first.status, first.trigger, first.schedule_slot) == (
        BackupStatus.pending,
        BackupTrigger.scheduled,
        slot,
    )
    # Another worker, the same slot: nothing recorded, and its session is usable again.
    async with scheduler(database, settings) as service:
        assert await service.slot_taken(slot) is True
        assert await service.create_scheduled(slot) is None
        assert await service.slot_taken("backup:2026-01-02T00:00") is False
