"""The schedule: every source on its own cron in its own zone, one backup per source, database
and slot however many workers look; a bounded catch-up; disabled or unscheduled sources never."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.bootstrap import open_bootstrap
from app.config import Settings
from app.db import Database
from app.jobs import tasks
from app.jobs.queue import ArqJobQueue
from app.jobs.schedule import (
    CRON_AUTO_TRASH,
    CRON_CLEANUP_TRASH,
    CRON_SOURCES,
    cron_jobs,
    daily_cron,
    due_slot,
    schedule_timezone,
    slot_name,
)
from app.kit.secret import Secret
from app.sources.models import DEFAULT_SOURCE, Source
from tests import support
from tests.worker.conftest import WorkerFactory, seed, wait_for

HOUR = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- which slot a look takes (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "zone", "now", "last_look", "catch_up_h", "expected"),
    [
        # A worker's first look takes the newest slot of the catch-up window ...
        ("0 0 * * *", "UTC", "2026-11-27 00:10", None, 6, "2026-11-27 00:00"),
        # ... but not one older than the window,
        ("0 0 * * *", "UTC", "2026-11-27 06:00:01", None, 6, None),
        # and with catch-up off only the minute that just fired.
        ("0 0 * * *", "UTC", "2026-11-27 00:00:30", None, 0, "2026-11-27 00:00"),
        ("0 0 * * *", "UTC", "2026-11-27 00:10", None, 0, None),
        # Later looks take what fired since the last one, and a slot is never seen twice.
        (
            "* * * * *",
            "UTC",
            "2026-11-27 00:01:00.2",
            "2026-11-27 00:00:00.3",
            6,
            "2026-11-27 00:01",
        ),
        ("* * * * *", "UTC", "2026-11-27 00:01:00.2", "2026-11-27 00:01:00.1", 6, None),
        # Hours missed (a worker busy or asleep): only the newest hourly slot is taken.
        ("0 * * * *", "UTC", "2026-11-27 05:10", "2026-11-27 01:30", 6, "2026-11-27 05:00"),
        # The source's zone: midnight in Berlin is 23:00 UTC in winter.
        ("0 0 * * *", "Europe/Berlin", "2026-11-27 23:10", None, 6, "2026-11-27 23:00"),
    ],
)
def test_a_look_takes_the_newest_slot_since_the_last_within_the_catch_up_window(
    schedule: str,
    zone: str,
    now: str,
    last_look: str | None,
    catch_up_h: float,
    expected: str | None,
) -> None:
    slot = due_slot(
        schedule,
        zone,
        now=at(now),
        last_look=at(last_look) if last_look else None,
        catch_up=catch_up_h * HOUR,
    )
    assert slot == (at(expected) if expected else None)


def test_a_slot_before_the_source_existed_is_not_caught_up() -> None:
    made = at("2026-11-27 00:05")
    now = at("2026-11-27 00:10")
    assert due_slot("0 0 * * *", "UTC", now=now, last_look=None, catch_up=6 * HOUR,
                    not_before=made) is None  # fmt: skip
    assert due_slot("*/5 * * * *", "UTC", now=now, last_look=None, catch_up=6 * HOUR,
                    not_before=made) == now  # fmt: skip


def test_slot_names_and_the_default_sources_daily_expression() -> None:
    assert slot_name(3, "shop", at("2026-11-27 00:00")) == "3:shop:2026-11-27T00:00Z"
    berlin = datetime(2026, 11, 27, 1, 30, tzinfo=schedule_timezone_of("Europe/Berlin"))
    assert slot_name(3, "shop", berlin) == "3:shop:2026-11-27T00:30Z"  # named in UTC
    assert daily_cron("03:05") == "5 3 * * *"


def schedule_timezone_of(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_the_cron_table_is_one_every_minute_job_and_the_daily_retention(
    settings: Settings,
) -> None:
    enabled = settings.model_copy(
        update={"schedule_enabled": True, "auto_trash_at": "04:00", "cleanup_trash_at": "05:45"}
    )
    jobs = {
        job.name: job
        for job in cron_jobs(
            enabled,
            sources=tasks.scheduled_sources,
            auto_trash=tasks.scheduled_auto_trash,
            cleanup_trash=tasks.scheduled_cleanup_trash,
        )
    }
    # No fixed daily backup beside it: the default source's backups run through CRON_SOURCES.
    assert set(jobs) == {CRON_SOURCES, CRON_AUTO_TRASH, CRON_CLEANUP_TRASH}
    sources = jobs[CRON_SOURCES]
    assert (sources.minute, sources.hour, sources.second) == (set(range(60)), None, 0)
    assert (jobs[CRON_AUTO_TRASH].hour, jobs[CRON_AUTO_TRASH].minute) == (4, 0)
    assert (jobs[CRON_CLEANUP_TRASH].hour, jobs[CRON_CLEANUP_TRASH].minute) == (5, 45)
    assert all(job.keep_result_s == 0 for job in jobs.values())
    disabled = settings.model_copy(update={"schedule_enabled": False})
    assert cron_jobs(disabled, sources=tasks.scheduled_sources,
                     auto_trash=tasks.scheduled_auto_trash,
                     cleanup_trash=tasks.scheduled_cleanup_trash) == []  # fmt: skip


def test_an_unknown_zone_is_a_clear_error(settings: Settings) -> None:
    wrong = settings.model_copy(update={"schedule_timezone": "Mars/Olympus"})
    with pytest.raises(ValueError, match="not a known time zone"):
        schedule_timezone(wrong)


# ---- looks against the real metadata store ----------------------------------------------------

LONG_AGO = at("2026-01-01 00:00")


async def add_source(database: Database, name: str, **fields: Any) -> int:
    values: dict[str, Any] = {
        "engine": "mysql",
        "url": Secret(support.target_url(fields.pop("url_database", "unused"))),
        "databases": ["shop"],
        "exclude": [],
        "schedule": None,
        "timezone": "UTC",
        "retention": {},
        "enabled": True,
        "created_at": LONG_AGO,
        "updated_at": LONG_AGO,
        **fields,
    }
    async with database.sessionmaker() as session:
        source = Source(name=name, **values)
        session.add(source)
        await session.commit()
        return source.id


async def scheduled_rows(database: Database) -> list[DatabaseBackup]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            select(DatabaseBackup)
            .where(DatabaseBackup.trigger == BackupTrigger.scheduled)
            .order_by(DatabaseBackup.id)
        )
        return list(rows)


async def slots(database: Database) -> set[tuple[int | None, str | None, str | None]]:
    return {
        (r.source_id, r.target_database, r.schedule_slot) for r in await scheduled_rows(database)
    }


@pytest.fixture
async def worker_state(
    worker_settings: Settings, queue: ArqJobQueue, database: Database
) -> AsyncIterator[Callable[..., tasks.WorkerState]]:
    """A new worker's state (nothing looked at yet) with the schedule on: the default source
    backs up at 00:00 UTC, catch-up reaches back 6 hours."""
    settings = worker_settings.model_copy(
        update={
            "schedule_enabled": True,
            "backup_at": "00:00",
            "schedule_timezone": "UTC",
            "schedule_catch_up_hours": 6,
        }
    )
    async with open_bootstrap(settings) as runtime:
        async with database.sessionmaker() as session:  # as if made long before the test's "now"
            await session.execute(update(Source).values(created_at=LONG_AGO))
            await session.commit()

        def make() -> tasks.WorkerState:
            return tasks.WorkerState(
                settings=settings, runtime=runtime, redis=queue.redis, queue=queue
            )

        yield make


async def test_every_source_runs_on_its_own_schedule_once_per_database_and_slot(
    worker_state: Callable[..., tasks.WorkerState], database: Database, queue: ArqJobQueue
) -> None:
    hourly = await add_source(database, "hourly", databases=["app", "audit"], schedule="0 * * * *")
    # 01:30 in Berlin is 00:30 UTC in November.
    berlin = await add_source(
        database, "berlin", databases=["crm"], schedule="30 1 * * *", timezone="Europe/Berlin"
    )
    disabled = await add_source(database, "off", schedule="* * * * *", enabled=False)
    await add_source(database, "manual", schedule=None)
    async with database.sessionmaker() as session:
        default = await session.scalar(select(Source.id).where(Source.name == DEFAULT_SOURCE))
        default_db = await session.scalar(select(Source.databases).where(Source.id == default))
    assert default is not None and default_db

    first, second = worker_state(), worker_state()
    await tasks.run_schedules(first, now=at("2026-11-27 01:10"))
    expected = {
        (default, default_db[0], f"{default}:{default_db[0]}:2026-11-27T00:00Z"),
        (hourly, "app", f"{hourly}:app:2026-11-27T01:00Z"),
        (hourly, "audit", f"{hourly}:audit:2026-11-27T01:00Z"),
        (berlin, "crm", f"{berlin}:crm:2026-11-27T00:30Z"),
    }
    assert await slots(database) == expected
    assert await queue.redis.zcard(queue.queue_name) == 4  # each one queued for a worker
    rows = await scheduled_rows(database)
    assert all(r.status is BackupStatus.pending and r.created_by is None for r in rows)

    # A second worker looking at the same time (or starting a little later) adds nothing.
    outcome = await tasks.run_schedules(second, now=at("2026-11-27 01:10:20"))
    assert "taken" in outcome
    assert await slots(database) == expected

    # The next hour: only the hourly source fires, once for both workers.
    for state in (first, second):
        await tasks.run_schedules(state, now=at("2026-11-27 02:00:01"))
    assert await slots(database) - expected == {
        (hourly, "app", f"{hourly}:app:2026-11-27T02:00Z"),
        (hourly, "audit", f"{hourly}:audit:2026-11-27T02:00Z"),
    }
    sources_seen = {r.source_id for r in await scheduled_rows(database)}
    assert disabled not in sources_seen  # every minute, but disabled: never
    assert len(await scheduled_rows(database)) == 6


async def test_disabling_a_source_stops_its_schedule_and_a_fresh_look_after_enabling(
    worker_state: Callable[..., tasks.WorkerState], database: Database
) -> None:
    source = await add_source(database, "minutely", schedule="* * * * *")
    state = worker_state()
    await tasks.run_schedules(state, now=at("2026-11-27 12:00:05"))
    async with database.sessionmaker() as session:
        await session.execute(update(Source).where(Source.id == source).values(enabled=False))
        await session.commit()
    for minute in range(1, 4):
        await tasks.run_schedules(state, now=at(f"2026-11-27 12:0{minute}:05"))
    mine = {slot for src, _, slot in await slots(database) if src == source}
    assert mine == {f"{source}:shop:2026-11-27T12:00Z"}
    assert source not in state.last_looks


async def test_a_worker_started_after_a_missed_slot_takes_it_once(
    workers: WorkerFactory, database: Database, target_database: str
) -> None:
    """Two real workers and two sources on their own schedules: each worker's first look
    takes the newest slot of each source (the catch-up); together one backup per source,
    database and slot, all dumped; the default source (its time far away) takes none."""
    seed(target_database, rows=20)
    other = support.unique_name("dbkeep_other")
    support.admin_sql(f"CREATE DATABASE `{other}`")
    try:
        seed(other, rows=5)
        await _two_workers_two_sources(workers, database, target_database, other)
    finally:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{other}`")


async def _two_workers_two_sources(
    workers: WorkerFactory, database: Database, first_db: str, second_db: str
) -> None:
    from app.keys import configure_encryption

    configure_encryption(workers.settings)
    now = datetime.now(UTC)
    made = now - 2 * HOUR
    every_minute = await add_source(
        database, "minutely", databases=[first_db], schedule="* * * * *", created_at=made
    )
    every_ten = await add_source(
        database, "tenly", databases=[second_db], schedule="*/10 * * * *", created_at=made
    )
    far = (now + 12 * HOUR).strftime("%H:%M")
    for _ in range(2):
        workers.start(schedule_enabled="true", backup_at=far, auto_trash_at=far,
                      cleanup_trash_at=far, schedule_catch_up_hours=6)  # fmt: skip

    async def settled() -> list[DatabaseBackup] | None:
        rows = await scheduled_rows(database)
        sources = {r.source_id for r in rows}
        done = all(r.status is BackupStatus.completed for r in rows)
        return rows if done and {every_minute, every_ten} <= sources else None

    rows = await wait_for(settled, timeout=90, what="both sources' backups to complete")
    keys = [(r.source_id, r.target_database, r.schedule_slot) for r in rows]
    assert len(keys) == len(set(keys))  # one backup per source, database and slot
    by_source = {r.source_id for r in rows}
    assert by_source == {every_minute, every_ten}  # not the default source
    for row in rows:
        assert row.schedule_slot is not None
        minute = int(row.schedule_slot[-3:-1])
        if row.source_id == every_ten:
            assert row.target_database == second_db and minute % 10 == 0
        else:
            assert row.target_database == first_db
    # Both workers looked at the same slots at start-up: the second found them taken.
    assert "schedule.slot_taken" in workers.logs()
