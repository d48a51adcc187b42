"""Health per source from the metadata store: failing after a failed backup, a warning when
stale (frozen clock: every evaluation is given ``now``) or shrunken or short of space, back to ok
after a success; transitions recorded once; the query count does not grow with the sources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from app.backups.models import BackupStatus
from app.config import Settings
from app.db import Database
from app.keys import configure_encryption
from app.kit.secret import Secret
from app.sources import health
from app.sources.health import Reason, SourceSnapshot
from app.sources.health_service import (
    HealthTransition,
    SourceHealthService,
    add_health_listener,
    refresh_source_health,
    remove_health_listener,
)
from app.sources.models import Source
from tests import support
from tests.api.conftest import insert_backups

# The frozen clock of these tests: every evaluation is told it is this instant.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database: Database, settings: Settings) -> AsyncIterator[Database]:
    configure_encryption(settings)
    yield database


async def add_source(
    database: Database,
    name: str,
    *,
    schedule: str | None = "0 * * * *",
    created_at: datetime = NOW - timedelta(days=30),
    enabled: bool = True,
) -> Source:
    async with database.sessionmaker() as session:
        source = Source(
            name=name,
            engine="mysql",
            url=Secret(support.target_url("unused")),
            databases=["shop"],
            exclude=[],
            schedule=schedule,
            timezone="UTC",
            retention={},
            enabled=enabled,
            created_at=created_at,
            updated_at=created_at,
        )
        session.add(source)
        await session.commit()
        return source


async def backup(
    database: Database,
    source: Source,
    *,
    ago: timedelta,
    status: BackupStatus = BackupStatus.completed,
    size: int = 10_000,
    db_name: str = "shop",
    **extra: Any,
) -> int:
    row = {
        "source_id": source.id,
        "target_database": db_name,
        "status": status,
        "backup_date": NOW - ago,
        "file_size": size,
        "duration_ms": 2500,
        **extra,
    }
    if status is BackupStatus.failed:
        row.setdefault("error_message", "Access denied for user 'backup'@'localhost'")
    return (await insert_backups(database, [row]))[0].id


async def evaluate(
    database: Database, *, now: datetime = NOW, backup_dir: Path | None = None
) -> dict[str, health.SourceHealth]:
    async with database.sessionmaker() as session:
        found = await SourceHealthService(session, backup_dir=backup_dir).evaluate(now=now)
    return {e.snapshot.name: e.health for e in found}


def codes(result: health.SourceHealth) -> list[str]:
    return [r.code for r in result.reasons]


async def test_failed_backup_makes_the_source_failing_and_a_success_brings_it_back(
    db: Database,
) -> None:
    source = await add_source(db, "shop")
    await backup(db, source, ago=timedelta(minutes=50))
    assert (await evaluate(db))["shop"] == health.OK

    await backup(db, source, ago=timedelta(minutes=20), status=BackupStatus.failed)
    failing = (await evaluate(db))["shop"]
    assert failing.status == "failing"
    assert codes(failing) == [health.LAST_BACKUP_FAILED]
    assert failing.reasons[0].database == "shop"
    assert "Access denied" in failing.reasons[0].message

    await backup(db, source, ago=timedelta(minutes=5))
    assert (await evaluate(db))["shop"] == health.OK


async def test_a_cancelled_backup_is_not_a_failure(db: Database) -> None:
    source = await add_source(db, "shop")
    await backup(db, source, ago=timedelta(minutes=50))
    await backup(
        db, source, ago=timedelta(minutes=10), status=BackupStatus.failed, cancelled_at=NOW
    )
    assert (await evaluate(db))["shop"].status == "ok"


async def test_stale_with_a_frozen_clock(db: Database) -> None:
    hourly = await add_source(db, "hourly", schedule="0 * * * *")
    manual = await add_source(db, "manual", schedule=None)
    await backup(db, hourly, ago=timedelta(minutes=80))
    await backup(db, manual, ago=timedelta(days=90))

    # 80 minutes since the last success: within 1.5 times the hourly interval (90 minutes).
    result = await evaluate(db)
    assert result["hourly"].status == "ok"
    assert result["manual"].status == "ok"  # manual-only: never stale

    # The same store 20 minutes later: 100 minutes without a completed backup.
    later = await evaluate(db, now=NOW + timedelta(minutes=20))
    assert later["hourly"].status == "warning"
    assert codes(later["hourly"]) == [health.STALE]
    assert "1.5 times" in later["hourly"].reasons[0].message
    assert later["manual"].status == "ok"

    # A success brings it back.
    await backup(db, hourly, ago=timedelta(minutes=-15))
    assert (await evaluate(db, now=NOW + timedelta(minutes=20)))["hourly"].status == "ok"


async def test_stale_uses_the_longest_gap_and_counts_from_creation(db: Database) -> None:
    weekdays = await add_source(db, "weekdays", schedule="0 9 * * mon-fri")
    fresh = await add_source(db, "fresh", created_at=NOW - timedelta(minutes=30))
    never = await add_source(db, "never", created_at=NOW - timedelta(hours=3))
    await add_source(db, "off", enabled=False)
    monday = datetime(2026, 6, 8, 10, 0, tzinfo=UTC)  # the last run was Friday 09:00
    await backup(db, weekdays, ago=NOW - datetime(2026, 6, 5, 9, 5, tzinfo=UTC))
    result = await evaluate(db, now=monday)
    # 73 hours over a weekend: within 1.5 times the longest gap (72 h), so not stale.
    assert result["weekdays"].status == "ok"
    result = await evaluate(db)
    assert result["fresh"].status == "ok"  # added 30 minutes ago, no backup yet
    assert codes(result["never"]) == [health.STALE]
    assert "since the source was added" in result["never"].reasons[0].message
    assert result["off"].status == "ok"  # disabled: not expected to run
    assert fresh.id != never.id


async def test_shrunken_newest_backup(db: Database) -> None:
    source = await add_source(db, "shop")
    other = await add_source(db, "other")
    for hours, size in enumerate([10_000, 11_000, 9_000, 10_500, 9_500, 12_000, 10_000], 2):
        await backup(db, source, ago=timedelta(hours=hours), size=size)
        await backup(db, other, ago=timedelta(hours=hours), size=size)
    # An older, tiny one beyond the seven: it does not count.
    await backup(db, source, ago=timedelta(hours=20), size=10)
    await backup(db, source, ago=timedelta(minutes=30), size=4_000)
    await backup(db, other, ago=timedelta(minutes=30), size=6_000)
    result = await evaluate(db)
    assert result["shop"].status == "warning"
    assert codes(result["shop"]) == [health.SHRUNKEN]
    assert "4000 bytes" in result["shop"].reasons[0].message
    assert "10000 bytes" in result["shop"].reasons[0].message  # the median of the seven
    assert result["other"].status == "ok"  # 6,000 is above half of 10,000

    await backup(db, source, ago=timedelta(minutes=10), size=9_800)
    assert (await evaluate(db))["shop"].status == "ok"


async def test_databases_are_judged_apart(db: Database) -> None:
    source = await add_source(db, "multi")
    await backup(db, source, ago=timedelta(minutes=30), db_name="shop")
    await backup(db, source, ago=timedelta(minutes=40), db_name="crm")
    await backup(db, source, ago=timedelta(minutes=20), db_name="crm", status=BackupStatus.failed)
    result = (await evaluate(db))["multi"]
    assert result.status == "failing"
    assert [(r.code, r.database) for r in result.reasons] == [(health.LAST_BACKUP_FAILED, "crm")]


async def test_low_free_space_is_a_warning(db: Database, tmp_path: Path) -> None:
    source = await add_source(db, "shop")
    await backup(db, source, ago=timedelta(minutes=10))
    assert (await evaluate(db, backup_dir=tmp_path))["shop"].status in {"ok", "warning"}
    snapshot = SourceSnapshot(1, "x", None, "UTC", True, NOW, local_free_ratio=0.05)
    result = health.evaluate(snapshot, NOW)
    assert result.status == "warning" and codes(result) == [health.LOW_FREE_SPACE]
    assert "5.0 %" in result.reasons[0].message
    snapshot.local_free_ratio = 0.5
    assert health.evaluate(snapshot, NOW) == health.OK


async def test_a_feature_adds_a_rule_with_its_own_grouped_data(db: Database) -> None:
    """How a feature adds a reason (here "destination unreachable"): an enricher and a rule."""
    source = await add_source(db, "shop")
    await backup(db, source, ago=timedelta(minutes=10))

    async def unreachable(session: Any, snapshots: Sequence[SourceSnapshot]) -> None:
        for snapshot in snapshots:
            snapshot.extras["unreachable_destinations"] = 1

    def rule_unreachable(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
        if snapshot.extras.get("unreachable_destinations"):
            return (
                Reason(health.DESTINATION_UNREACHABLE, "warning", "A destination does not answer."),
            )
        return ()

    health.register_enricher(unreachable)
    health.register_rule(rule_unreachable)
    try:
        result = (await evaluate(db))["shop"]
        assert result.status == "warning" and codes(result) == [health.DESTINATION_UNREACHABLE]
    finally:
        health._rules.remove(rule_unreachable)
        health._enrichers.remove(unreachable)
    assert (await evaluate(db))["shop"] == health.OK


async def test_transitions_are_recorded_once_and_emitted(db: Database) -> None:
    source = await add_source(db, "shop")
    await add_source(db, "quiet", schedule=None)
    await backup(db, source, ago=timedelta(minutes=30))
    seen: list[HealthTransition] = []

    async def listener(transitions: Sequence[HealthTransition]) -> None:
        seen.extend(transitions)

    async def refresh(now: datetime = NOW) -> list[HealthTransition]:
        async with db.sessionmaker() as session:
            return await refresh_source_health(session, backup_dir=None, now=now)

    add_health_listener(listener)
    try:
        assert await refresh() == []  # every source ok, as a new one is assumed to be
        await backup(db, source, ago=timedelta(minutes=10), status=BackupStatus.failed)
        changed = await refresh()
        assert [(t.source_name, t.previous, t.current) for t in changed] == [
            ("shop", "ok", "failing")
        ]
        assert changed[0].event == "health.changed"
        assert changed[0].payload()["reasons"][0]["code"] == health.LAST_BACKUP_FAILED
        assert await refresh(NOW + timedelta(seconds=60)) == []  # still failing: no new event
        await backup(db, source, ago=timedelta(minutes=1))
        back = await refresh(NOW + timedelta(seconds=120))
        assert [(t.previous, t.current) for t in back] == [("failing", "ok")]
        assert seen == changed + back
    finally:
        remove_health_listener(listener)
    async with db.sessionmaker() as session:
        states = await SourceHealthService(session, backup_dir=None).repository.states()
    assert {s.status for s in states.values()} == {"ok"}
    assert states[source.id].changed_at == NOW + timedelta(seconds=120)


async def test_the_statement_count_does_not_grow_with_the_sources(db: Database) -> None:
    async def statements_for_evaluation() -> int:
        executed: list[str] = []

        def count(*args: Any) -> None:
            executed.append(args[2])

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            await evaluate(db)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        return len(executed)

    async def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            source = await add_source(db, f"src{i:02d}")
            for k in range(3):
                await backup(db, source, ago=timedelta(minutes=10 + k), size=1000 + k)
            await backup(db, source, ago=timedelta(minutes=5), status=BackupStatus.failed)

    await add(2, 0)
    few = await statements_for_evaluation()
    await add(20, 2)
    many = await statements_for_evaluation()
    # The sources, the grouped backups query, the list version, one per feature's enricher.
    assert few == many <= 3 + len(health.enrichers())
    # Nothing changed since: the grouped query's answer is kept (the list version says so).
    assert await statements_for_evaluation() == many - 1
    assert len(await evaluate(db)) == 22
    # A change is seen at once.
    source = await add_source(db, "late")
    await backup(db, source, ago=timedelta(minutes=1), status=BackupStatus.failed)
    assert await statements_for_evaluation() == many
    assert (await evaluate(db))["late"].status == "failing"


async def test_the_worker_runs_the_health_job_every_minute(
    db: Database, settings: Settings
) -> None:
    from types import SimpleNamespace

    from app.bootstrap import open_bootstrap
    from app.jobs.worker import build_worker_settings
    from app.sources.health_tasks import CRON_SOURCE_HEALTH, scheduled_source_health

    for enabled in (True, False):  # health is watched whether or not backups are scheduled
        worker = build_worker_settings(settings.model_copy(update={"schedule_enabled": enabled}))
        jobs = {job.name: job for job in worker["cron_jobs"]}
        job = jobs[CRON_SOURCE_HEALTH]
        assert (job.minute, job.second, job.keep_result_s) == (set(range(60)), 30, 0)

    source = await add_source(db, "shop", created_at=datetime.now(UTC))
    await backup(db, source, ago=NOW - datetime.now(UTC), status=BackupStatus.failed)
    async with open_bootstrap(settings) as runtime:
        ctx = {"state": SimpleNamespace(settings=settings, runtime=runtime)}
        first = await scheduled_source_health(ctx)
        again = await scheduled_source_health(ctx)
    assert "shop ok->failing" in first
    assert again == "health unchanged"
