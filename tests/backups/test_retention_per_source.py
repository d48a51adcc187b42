"""Retention wired to the metadata store: each source's rule on its own backups (per database),
the settings' rule on backups without a source, pinned / newest / running never trashed, the
preview equal to what auto-trash then does, purge by each source's age, run twice = no change.
(The rules themselves are tested in tests/sources/test_retention.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database, utcnow
from app.keys import configure_encryption
from app.kit.secret import Secret
from app.sources.models import Source
from app.storage import get_storage
from tests import support
from tests.api.conftest import insert_backups

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
COMPLETED, FAILED, PENDING, TRASH = (
    BackupStatus.completed,
    BackupStatus.failed,
    BackupStatus.pending,
    BackupStatus.in_trash,
)


@pytest.fixture
async def service(database: Database, settings: Settings) -> AsyncIterator[BackupService]:
    configure_encryption(settings)
    async with database.sessionmaker() as session:
        yield BackupService(
            session,
            settings=settings,
            storage=get_storage(settings),
            queue=None,
            actor=Actor.system("test"),
        )


async def add_source(database: Database, name: str, retention: dict[str, Any]) -> Source:
    async with database.sessionmaker() as session:
        source = Source(
            name=name,
            engine="mysql",
            url=Secret(support.target_url("unused")),
            databases=["shop", "blog"],
            exclude=[],
            timezone="UTC",
            retention=retention,
        )
        session.add(source)
        await session.commit()
        return source


async def backups(database: Database, *rows: dict[str, Any]) -> list[int]:
    made = await insert_backups(database, [dict(row) for row in rows])
    return [backup.id for backup in made]


async def statuses(database: Database) -> dict[int, BackupStatus]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(DatabaseBackup.id, DatabaseBackup.status))
        return {backup_id: status for backup_id, status in rows}


async def test_each_source_follows_its_own_rule_and_source_less_backups_the_settings(
    service: BackupService, database: Database, settings: Settings
) -> None:
    now = utcnow()
    gfs = await add_source(database, "gfs", {"trash_after_days": 15, "keep_last": 2})
    aged = await add_source(database, "aged", {"trash_after_days": 3, "purge_after_days": 1})

    def row(source: Source | None, age: timedelta, **extra: Any) -> dict[str, Any]:
        return {"source_id": source.id if source else None, "backup_date": now - age, **extra}

    # gfs, database shop: keep-last 2 keeps the two newest; an old pinned one stays; a pending
    # one stays; the rest go, however young (age plays no part under keep_*).
    g_new, g_second, g_third, g_pinned, g_pending = await backups(
        database,
        row(gfs, 1 * DAY),
        row(gfs, 2 * DAY),
        row(gfs, 3 * DAY),
        row(gfs, 90 * DAY, pinned=True),
        row(gfs, 100 * DAY, status=PENDING),
    )
    # gfs, database blog: its only completed backup is old, but the newest of its database.
    [g_blog] = await backups(database, row(gfs, 400 * DAY, target_database="blog"))
    # aged: trash after 3 days, at the exact boundary (older is strict).
    a_exact, a_past, a_failed = await backups(
        database,
        row(aged, 3 * DAY),
        row(aged, 3 * DAY + SECOND),
        row(aged, 3 * DAY + SECOND, status=FAILED),
    )
    # No source: the settings' 15 days, not "aged"'s 3.
    n_young, n_past, n_newest_blog = await backups(
        database,
        row(None, 15 * DAY - SECOND),
        row(None, 15 * DAY + SECOND),
        row(None, 50 * DAY, target_database="blog"),
    )
    assert settings.trash_after_days == 15

    previews = {
        source.id: await service.retention_preview(source, now=now) for source in (gfs, aged)
    }
    planned = {d.backup_id for p in previews.values() for d in p if d.action == "trash"}
    reasons = {d.backup_id: d.reasons for p in previews.values() for d in p}
    assert all(s is not TRASH for s in (await statuses(database)).values())  # preview only

    moved = set(await service.auto_trash(now=now))

    assert moved == {g_third, a_past, a_failed, n_past}
    # The preview said exactly what auto-trash then did, for the sources' backups.
    assert planned == moved - {n_past}
    assert "pinned" in reasons[g_pinned] and "newest completed backup" in reasons[g_new]
    assert reasons[g_third] == ("not kept by keep-last 2",)
    after = await statuses(database)
    for kept in (g_new, g_second, g_pinned, g_blog, a_exact, n_young, n_newest_blog):
        assert after[kept] is COMPLETED, kept
    assert after[g_pending] is PENDING
    # Twice changes nothing.
    assert await service.auto_trash(now=now) == []
    assert await statuses(database) == after


async def test_the_newest_completed_backup_of_each_database_of_a_source_is_never_trashed(
    service: BackupService, database: Database
) -> None:
    now = utcnow()
    source = await add_source(database, "old", {"trash_after_days": 1})
    newest_shop, older_shop, newest_blog = await backups(
        database,
        {"source_id": source.id, "backup_date": now - 30 * DAY},
        {"source_id": source.id, "backup_date": now - 40 * DAY},
        {"source_id": source.id, "backup_date": now - 60 * DAY, "target_database": "blog"},
    )
    # A failed newer one is no "last good backup".
    [failed] = await backups(
        database, {"source_id": source.id, "backup_date": now - 2 * DAY, "status": FAILED}
    )
    assert set(await service.auto_trash(now=now)) == {older_shop, failed}
    after = await statuses(database)
    assert after[newest_shop] is COMPLETED and after[newest_blog] is COMPLETED


async def test_cleanup_purges_by_each_sources_age_and_keeps_each_databases_last_good_backup(
    service: BackupService, database: Database
) -> None:
    now = utcnow()
    quick = await add_source(database, "quick", {"purge_after_days": 1})

    def trashed(source: Source | None, ago: timedelta, **extra: Any) -> dict[str, Any]:
        return {
            "source_id": source.id if source else None,
            "status": TRASH,
            "status_before_trash": COMPLETED,
            "trashed_at": now - ago,
            "backup_date": now - 30 * DAY,
            **extra,
        }

    # quick, shop: a completed backup is left outside the trash, so trash past 1 day goes.
    await backups(database, {"source_id": quick.id, "backup_date": now - DAY})
    q_due, q_exact, q_pinned = await backups(
        database,
        trashed(quick, DAY + SECOND),
        trashed(quick, DAY),
        trashed(quick, 5 * DAY, pinned=True),
    )
    # quick, blog: only trashed backups: the newest of them is the last good one and stays.
    q_blog_old, q_blog_last = await backups(
        database,
        trashed(quick, 5 * DAY, target_database="blog", backup_date=now - 50 * DAY),
        trashed(quick, 5 * DAY, target_database="blog", backup_date=now - 40 * DAY),
    )
    # No source: the settings' 7 days (and a completed one of its own left outside the trash).
    await backups(database, {"source_id": None, "backup_date": now - DAY})
    n_young, n_due = await backups(
        database, trashed(None, DAY + SECOND), trashed(None, 7 * DAY + SECOND)
    )

    purged = set(await service.cleanup_trash(now=now))

    assert purged == {q_due, q_blog_old, n_due}
    left = await statuses(database)
    for kept in (q_exact, q_pinned, q_blog_last, n_young):
        assert left[kept] is TRASH, kept
    assert await service.cleanup_trash(now=now) == []
    assert await statuses(database) == left


async def test_a_source_whose_rule_cant_be_read_trashes_nothing(
    service: BackupService, database: Database
) -> None:
    now = utcnow()
    broken = await add_source(database, "broken", {"trash_after_days": 1, "keep_forever": 3})
    ids = await backups(
        database,
        {"source_id": broken.id, "backup_date": now - 10 * DAY},
        {"source_id": broken.id, "backup_date": now - 20 * DAY},
    )
    assert await service.auto_trash(now=now) == []
    assert all(s is COMPLETED for i, s in (await statuses(database)).items() if i in ids)
