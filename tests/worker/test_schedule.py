"""The daily schedule: slots in the configured zone, one backup per slot, however many workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.bootstrap import open_bootstrap
from app.config import Settings
from app.db import Database
from app.jobs import tasks
from app.jobs.queue import ArqJobQueue
from app.jobs.schedule import (
    CRON_AUTO_TRASH,
    CRON_BACKUP,
    CRON_CLEANUP_TRASH,
    cron_jobs,
    schedule_slot,
    schedule_timezone,
)
from tests.worker.conftest import WorkerFactory, seed, wait_for

UTC_TZ = ZoneInfo("UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "time_of_day", "zone", "slot"),
    [
        ("2026-11-27 00:00:00.5", "00:00", "UTC", "backup:2026-11-27T00:00Z"),
        ("2026-11-27 23:59:59", "00:00", "UTC", "backup:2026-11-27T00:00Z"),
        ("2026-11-27 01:29:00", "01:30", "UTC", "backup:2026-11-26T01:30Z"),
        # Midnight in Berlin is 23:00 UTC the day before in winter, 22:00 in summer.
        ("2026-11-27 23:00:01", "00:00", "Europe/Berlin", "backup:2026-11-27T23:00Z"),
        ("2026-11-27 22:59:00", "00:00", "Europe/Berlin", "backup:2026-11-26T23:00Z"),
        ("2026-07-01 22:00:05", "00:00", "Europe/Berlin", "backup:2026-07-01T22:00Z"),
        # 02:30 does not exist on the spring-forward night: the slot is still one per day.
        ("2026-03-29 05:00:00", "02:30", "Europe/Berlin", "backup:2026-03-29T01:30Z"),
    ],
)
def test_slots_are_named_in_utc_from_the_configured_zone(
    now: str, time_of_day: str, zone: str, slot: str
) -> None:
    assert schedule_slot("backup", time_of_day, ZoneInfo(zone), at(now)) == slot


def test_the_cron_table_follows_the_settings(settings: Settings) -> None:
    enabled = settings.model_copy(
        update={
            "schedule_enabled": True,
            "backup_at": "03:15",
            "auto_trash_at": "04:00",
            "cleanup_trash_at": "05:45",
        }
    )
    jobs = {
        job.name: job
        for job in cron_jobs(
            enabled,
            backup=tasks.scheduled_backup,
            auto_trash=tasks.scheduled_auto_trash,
            cleanup_trash=tasks.scheduled_cleanup_trash,
        )
    }
    assert {name: (job.hour, job.minute, job.second) for name, job in jobs.items()} == {
        CRON_BACKUP: (3, 15, 0),
        CRON_AUTO_TRASH: (4, 0, 0),
        CRON_CLEANUP_TRASH: (5, 45, 0),
    }
    assert all(job.keep_result_s == 0 for job in jobs.values())
    disabled = settings.model_copy(update={"schedule_enabled": False})
    assert cron_jobs(disabled, backup=tasks.scheduled_backup, auto_trash=tasks.scheduled_auto_trash,
                     cleanup_trash=tasks.scheduled_cleanup_trash) == []  # fmt: skip


def test_an_unknown_zone_is_a_clear_error(settings: Settings) -> None:
    wrong = settings.model_copy(update={"schedule_timezone": "Mars/Olympus"})
    with pytest.raises(ValueError, match="not a known time zone"):
        schedule_timezone(wrong)


async def scheduled_rows(database: Database) -> list[DatabaseBackup]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            select(DatabaseBackup).where(DatabaseBackup.trigger == BackupTrigger.scheduled)
        )
        return list(rows)


async def test_two_workers_running_the_same_slot_make_one_backup(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    database: Database,
    target_database: str,
) -> None:
    seed(target_database, rows=20)
    # The schedule is on, but its time is far from now: the test fires the slot itself, twice,
    # as two workers whose cron both enqueued it would (different job ids defeat arq's dedupe).
    far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    for _ in range(2):
        workers.start(schedule_enabled="true", backup_at=far, auto_trash_at=far,
                      cleanup_trash_at=far)  # fmt: skip
    for n in range(4):
        await queue.redis.enqueue_job(
            CRON_BACKUP, _job_id=f"{queue.queue_name}:test-slot-{n}", _queue_name=queue.queue_name
        )

    async def settled() -> list[DatabaseBackup] | None:
        rows = await scheduled_rows(database)
        done = rows and all(r.status is BackupStatus.completed for r in rows)
        jobs_left = await queue.redis.zcard(queue.queue_name)
        return rows if done and jobs_left == 0 else None

    rows = await wait_for(settled, what="the slot's backup to complete")
    assert len(rows) == 1
    assert rows[0].schedule_slot and rows[0].schedule_slot.startswith("backup:")
    assert "another worker has it" in workers.logs()


@pytest.mark.slow
async def test_the_real_cron_on_two_workers_makes_one_backup_in_the_next_minute(
    workers: WorkerFactory,
    database: Database,
    target_database: str,
) -> None:
    seed(target_database, rows=20)
    now = datetime.now(UTC)
    if now.second > 50:  # leave the workers time to start before the minute turns
        now += timedelta(minutes=1)
    minute = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    time_of_day = minute.strftime("%H:%M")
    far = (minute + timedelta(hours=12)).strftime("%H:%M")
    for _ in range(2):
        workers.start(schedule_enabled="true", backup_at=time_of_day, auto_trash_at=far,
                      cleanup_trash_at=far)  # fmt: skip

    async def completed() -> list[DatabaseBackup] | None:
        rows = await scheduled_rows(database)
        return rows if rows and rows[0].status is BackupStatus.completed else None

    rows = await wait_for(completed, timeout=140, interval=1, what="the scheduled backup")
    assert len(rows) == 1
    assert rows[0].schedule_slot == f"backup:{minute:%Y-%m-%dT%H:%M}Z"
    assert rows[0].created_by is None


@pytest.fixture
async def schedule_state(
    worker_settings: Settings, queue: ArqJobQueue, database: Database
) -> AsyncIterator[Callable[..., tasks.WorkerState]]:
    """A worker's state with the schedule on, backups at 00:00 UTC, catch-up within 6 hours."""
    async with open_bootstrap(worker_settings) as runtime:

        def make(**changes: Any) -> tasks.WorkerState:
            settings = worker_settings.model_copy(
                update={
                    "schedule_enabled": True,
                    "backup_at": "00:00",
                    "schedule_timezone": "UTC",
                    "schedule_catch_up_hours": 6,
                    **changes,
                }
            )
            return tasks.WorkerState(
                settings=settings, runtime=runtime, redis=queue.redis, queue=queue
            )

        yield make


async def test_a_worker_starting_soon_after_a_missed_slot_takes_its_backup(
    schedule_state: Callable[..., tasks.WorkerState], database: Database, queue: ArqJobQueue
) -> None:
    state = schedule_state()

    outcome = await tasks.catch_up_missed_backup(state, now=at("2026-11-27 00:10:00"))

    [row] = await scheduled_rows(database)
    assert outcome == f"backup:2026-11-27T00:00Z: backup {row.id}"
    assert row.schedule_slot == "backup:2026-11-27T00:00Z" and row.status is BackupStatus.pending
    assert await queue.redis.zcard(queue.queue_name) == 1  # queued for the worker
    # A second worker starting, or the same one again: the slot is taken, nothing more.
    again = await tasks.catch_up_missed_backup(state, now=at("2026-11-27 00:20:00"))
    assert again == "backup:2026-11-27T00:00Z: taken"
    assert len(await scheduled_rows(database)) == 1


@pytest.mark.parametrize(
    ("now", "changes", "outcome"),
    [
        ("2026-11-27 06:00:01", {}, "no recent slot was missed"),
        ("2026-11-27 00:10:00", {"schedule_catch_up_hours": 0}, "catch-up is off"),
        ("2026-11-27 00:10:00", {"schedule_enabled": False}, "catch-up is off"),
    ],
)
async def test_no_catch_up_when_the_slot_is_old_or_catch_up_is_off(
    schedule_state: Callable[..., tasks.WorkerState],
    database: Database,
    now: str,
    changes: dict[str, Any],
    outcome: str,
) -> None:
    assert await tasks.catch_up_missed_backup(schedule_state(**changes), now=at(now)) == outcome
    assert await scheduled_rows(database) == []


async def test_a_worker_started_after_the_backup_time_takes_the_missed_backup(
    workers: WorkerFactory, database: Database, target_database: str
) -> None:
    seed(target_database, rows=20)
    now = datetime.now(UTC)
    missed = (now - timedelta(minutes=3)).strftime("%H:%M")
    far = (now + timedelta(hours=12)).strftime("%H:%M")
    workers.start(schedule_enabled="true", backup_at=missed, auto_trash_at=far,
                  cleanup_trash_at=far)  # fmt: skip

    async def completed() -> list[DatabaseBackup] | None:
        rows = await scheduled_rows(database)
        return rows if rows and rows[0].status is BackupStatus.completed else None

    [row] = await wait_for(completed, what="the missed slot's backup to complete")
    assert row.schedule_slot == schedule_slot("backup", missed, UTC_TZ, now)
    assert "schedule.catching_up" in workers.logs()
