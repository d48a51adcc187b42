"""The backup use cases against a real metadata store and local storage."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus
from app.backups.service import BackupService, SortKey, View
from app.config import Settings
from app.db import Database, utcnow
from app.errors import Conflict, NotFound
from app.storage import get_storage
from app.storage.base import BackupStorage
from tests.backups.factories import make_backup

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.fixture
def storage(settings: Settings) -> BackupStorage:
    return get_storage(settings)


@pytest.fixture
async def service(
    database: Database, settings: Settings, storage: BackupStorage
) -> AsyncIterator[BackupService]:
    async with database.sessionmaker() as session:
        yield BackupService(
            session, settings=settings, storage=storage, queue=None, actor=Actor.system("test")
        )


async def status_of(database: Database, backup_id: int) -> BackupStatus | None:
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, backup_id)
        return None if row is None else row.status


async def test_create_records_a_pending_backup_of_the_target(
    service: BackupService, target_database: str
) -> None:
    backup = await service.create(enqueue=False)
    assert backup.status is BackupStatus.pending
    assert backup.target_database == target_database
    assert backup.filename.startswith(f"backup_{target_database}_")
    assert backup.filename.endswith(".sql.zst")
    assert len(backup.unique_identifier) == 32
    assert not backup.path.startswith("/")


async def test_create_without_a_target_says_what_to_set(
    database: Database, settings: Settings, storage: BackupStorage
) -> None:
    settings = settings.model_copy(update={"target_url": None})
    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=storage, queue=None, actor=Actor.system()
        )
        with pytest.raises(Conflict, match="DBKEEP_TARGET_URL"):
            await service.create()


async def test_trash_and_restore_from_trash_keep_the_previous_status(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    completed = await make_backup(database, storage)
    failed = await make_backup(database, storage, status=BackupStatus.failed)
    for backup in (completed, failed):
        trashed = await service.trash(backup.id)
        assert trashed.status is BackupStatus.in_trash
        assert trashed.trashed_at is not None
        back = await service.restore_from_trash(backup.id)
        assert back.status is backup.status
        assert back.trashed_at is None
    with pytest.raises(Conflict, match="not in the trash"):
        await service.restore_from_trash(completed.id)


@pytest.mark.parametrize("status", [BackupStatus.pending, BackupStatus.in_progress])
async def test_running_backups_cannot_be_trashed_deleted_downloaded_or_restored(
    service: BackupService, database: Database, status: BackupStatus
) -> None:
    backup = await make_backup(database, status=status)
    for action in (
        service.trash(backup.id),
        service.delete(backup.id),
        service.open_download(backup.id),
        service.request_restore(backup.id),
    ):
        with pytest.raises(Conflict):
            await action
    assert await status_of(database, backup.id) is status


async def test_failed_and_trashed_backups_cannot_be_downloaded_or_restored(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    failed = await make_backup(database, storage, status=BackupStatus.failed)
    trashed = await make_backup(database, storage)
    await service.trash(trashed.id)
    for backup_id in (failed.id, trashed.id):
        with pytest.raises(Conflict):
            await service.open_download(backup_id)
        with pytest.raises(Conflict):
            await service.request_restore(backup_id)


async def test_a_download_whose_first_bytes_are_wrong_is_refused_before_streaming(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    backup = await make_backup(database, storage)
    writer = await storage.open_writer(backup.path)
    await writer.write(b"x" * backup.file_size)  # the recorded size, other bytes
    await writer.commit()
    for raw in (False, True):
        with pytest.raises(Conflict, match="damaged; it can't be read"):
            await service.open_download(backup.id, raw=raw)


async def test_a_download_streams_the_stored_bytes(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    backup = await make_backup(database, storage, size=300_000)
    download = await service.open_download(backup.id)
    read = b"".join([chunk async for chunk in download.chunks])
    assert len(read) == download.size == backup.file_size
    assert hashlib.sha256(read).hexdigest() == backup.checksum_sha256


async def test_delete_removes_the_row_and_the_file(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    backup = await make_backup(database, storage)
    assert await storage.size(backup.path) == backup.file_size
    await service.delete(backup.id)
    assert await status_of(database, backup.id) is None
    assert await storage.size(backup.path) is None
    with pytest.raises(NotFound):
        await service.delete(backup.id)


async def test_bulk_trash_reports_every_id(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    ok = await make_backup(database, storage)
    running = await make_backup(database, status=BackupStatus.in_progress)
    results = await service.bulk_trash([ok.id, running.id, 999_999])
    by_id = {r.id: r for r in results}
    assert by_id[ok.id].success and by_id[ok.id].status == 200
    assert not by_id[running.id].success and by_id[running.id].status == 409
    assert not by_id[999_999].success and by_id[999_999].status == 404
    assert await status_of(database, ok.id) is BackupStatus.in_trash
    assert await status_of(database, running.id) is BackupStatus.in_progress


async def test_bulk_delete_removes_files_of_deleted_rows_only(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    gone = await make_backup(database, storage)
    running = await make_backup(database, status=BackupStatus.pending)
    results = await service.bulk_delete([gone.id, running.id])
    assert [r.success for r in results] == [True, False]
    assert await storage.size(gone.path) is None
    assert await status_of(database, running.id) is BackupStatus.pending


async def test_auto_trash_at_the_exact_boundary(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    now = utcnow()
    age = 15 * DAY
    newest = await make_backup(database, storage, backup_date=now - age - 10 * SECOND)
    just_inside = await make_backup(database, storage, backup_date=now - age + SECOND)
    exactly = await make_backup(database, storage, backup_date=now - age)
    just_past = await make_backup(database, storage, backup_date=now - age - 20 * SECOND)
    old_failed = await make_backup(
        database, storage, status=BackupStatus.failed, backup_date=now - 40 * DAY
    )
    old_pending = await make_backup(
        database, status=BackupStatus.pending, backup_date=now - 40 * DAY
    )
    # ``newest`` is not the newest completed: the younger ones are, so it goes too.
    moved = await service.auto_trash(now=now)
    assert sorted(moved) == sorted([newest.id, just_past.id, old_failed.id])
    assert await status_of(database, just_inside.id) is BackupStatus.completed
    assert await status_of(database, exactly.id) is BackupStatus.completed
    assert await status_of(database, old_pending.id) is BackupStatus.pending
    assert await service.auto_trash(now=now) == []  # safe to run twice


async def test_auto_trash_never_trashes_the_newest_completed_backup(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    now = utcnow()
    older = await make_backup(database, storage, backup_date=now - 30 * DAY)
    newest = await make_backup(database, storage, backup_date=now - 20 * DAY)
    failed_newer = await make_backup(
        database, storage, status=BackupStatus.failed, backup_date=now - 16 * DAY
    )
    moved = await service.auto_trash(now=now)
    assert sorted(moved) == sorted([older.id, failed_newer.id])
    assert await status_of(database, newest.id) is BackupStatus.completed


async def test_cleanup_trash_at_the_exact_boundary(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    now = utcnow()
    await make_backup(database, storage)  # an active completed backup: nothing to protect in trash
    purge = 7 * DAY
    due = await make_backup(
        database,
        storage,
        status=BackupStatus.in_trash,
        status_before_trash=BackupStatus.completed,
        trashed_at=now - purge - SECOND,
    )
    exactly = await make_backup(
        database,
        storage,
        status=BackupStatus.in_trash,
        status_before_trash=BackupStatus.completed,
        trashed_at=now - purge,
    )
    young = await make_backup(
        database,
        storage,
        status=BackupStatus.in_trash,
        status_before_trash=BackupStatus.completed,
        trashed_at=now - purge + SECOND,
    )
    purged = await service.cleanup_trash(now=now)
    assert purged == [due.id]
    assert await storage.size(due.path) is None
    assert await status_of(database, exactly.id) is BackupStatus.in_trash
    assert await storage.size(young.path) == young.file_size
    assert await service.cleanup_trash(now=now) == []


async def test_cleanup_keeps_the_last_good_backup_when_none_is_left_outside_the_trash(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    now = utcnow()
    older = await make_backup(
        database,
        storage,
        status=BackupStatus.in_trash,
        backup_date=now - 40 * DAY,
        status_before_trash=BackupStatus.completed,
        trashed_at=now - 20 * DAY,
    )
    last_good = await make_backup(
        database,
        storage,
        status=BackupStatus.in_trash,
        backup_date=now - 30 * DAY,
        status_before_trash=BackupStatus.completed,
        trashed_at=now - 20 * DAY,
    )
    assert await service.cleanup_trash(now=now) == [older.id]
    assert await status_of(database, last_good.id) is BackupStatus.in_trash
    assert await storage.size(last_good.path) == last_good.file_size


async def test_list_searches_literally_filters_sorts_and_pages(
    service: BackupService, database: Database
) -> None:
    now = utcnow()
    names = ["a_1%.sql", "ab1x.sql", "zeta.sql", "mid_dle.sql"]
    sizes = [30, 10, 40, 20]
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        await make_backup(database, filename=name, size=size, backup_date=now - i * DAY)
    await make_backup(database, filename="broken.sql", status=BackupStatus.failed)

    literal = await service.list_backups(search="_1%")
    assert [b["filename"] for b in literal.items] == ["a_1%.sql"]
    underscore = await service.list_backups(search="_")
    assert {b["filename"] for b in underscore.items} == {"a_1%.sql", "mid_dle.sql"}
    assert (await service.list_backups(search="'; DROP TABLE users; --")).total == 0
    assert [b["filename"] for b in (await service.list_backups(search="ZETA")).items] == [
        "zeta.sql"
    ]

    by_size = await service.list_backups(sort=SortKey.size_asc, status=BackupStatus.completed)
    assert [b["file_size"] for b in by_size.items] == [10, 20, 30, 40]
    by_name = await service.list_backups(sort=SortKey.name_desc)
    assert by_name.items[0]["filename"] == "zeta.sql"
    oldest = await service.list_backups(sort=SortKey.oldest, status=BackupStatus.completed)
    assert oldest.items[0]["filename"] == "mid_dle.sql"
    failed = await service.list_backups(status=BackupStatus.failed)
    assert [b["filename"] for b in failed.items] == ["broken.sql"]

    page2 = await service.list_backups(page=2, per_page=2, sort=SortKey.name_asc)
    assert page2.total == 5 and page2.last_page == 3
    assert [b["filename"] for b in page2.items] == ["broken.sql", "mid_dle.sql"]

    await service.trash(failed.items[0]["id"])
    trash = await service.list_backups(view=View.trash, status=BackupStatus.failed)
    assert [b["filename"] for b in trash.items] == ["broken.sql"]
    assert (await service.list_backups()).total == 4


async def test_statistics_has_the_originals_eight_fields(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    now = utcnow()
    old = await make_backup(database, storage, size=100, backup_date=now - 3 * DAY)
    new = await make_backup(database, storage, size=300, backup_date=now - DAY)
    await make_backup(database, storage, status=BackupStatus.failed)
    trashed = await make_backup(database, storage, size=50)
    await service.trash(trashed.id)
    stats = await service.statistics()
    assert (stats.total_backups, stats.completed_backups, stats.failed_backups) == (4, 2, 1)
    assert stats.trashed_backups == 1
    assert stats.total_size == 450
    assert stats.average_size == 200
    assert stats.latest_backup is not None and stats.latest_backup["id"] == new.id
    assert stats.oldest_backup is not None and stats.oldest_backup["id"] == old.id


async def test_restore_request_refuses_a_missing_or_resized_file(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    missing = await make_backup(database, storage)
    await storage.delete(missing.path)
    with pytest.raises(Conflict, match="missing"):
        await service.request_restore(missing.id)
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, missing.id)
        assert row is not None and row.integrity_status is IntegrityStatus.missing


async def test_restore_request_refuses_while_a_backup_of_the_target_runs(
    service: BackupService, database: Database, storage: BackupStorage, target_database: str
) -> None:
    done = await make_backup(database, storage, target_database=target_database)
    running = await make_backup(
        database, status=BackupStatus.in_progress, target_database=target_database
    )
    with pytest.raises(Conflict, match=f"Backup {running.id}"):
        await service.request_restore(done.id)


async def test_trigger_kept_counters_match_the_table_after_every_kind_of_change(
    service: BackupService, database: Database, storage: BackupStorage
) -> None:
    from sqlalchemy import func, select, update

    from app.backups.models import BackupCounter

    rows = [await make_backup(database, storage, size=10 * (i + 1)) for i in range(5)]
    await make_backup(database, status=BackupStatus.failed)
    await service.trash(rows[0].id)
    await service.trash(rows[1].id)
    await service.restore_from_trash(rows[1].id)
    await service.delete(rows[2].id)
    await service.bulk_trash([rows[3].id, rows[4].id])
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup).where(DatabaseBackup.id == rows[3].id).values(file_size=999)
        )
        await session.commit()
        actual = {
            (status, before or ""): (n, size)
            for status, before, n, size in (
                await session.execute(
                    select(
                        DatabaseBackup.status,
                        DatabaseBackup.status_before_trash,
                        func.count(),
                        func.sum(DatabaseBackup.file_size),
                    ).group_by(DatabaseBackup.status, DatabaseBackup.status_before_trash)
                )
            ).all()
        }
        counters = {
            (c.status, c.status_before_trash): (c.row_count, c.size_sum)
            for c in await session.scalars(select(BackupCounter))
            if c.row_count
        }
    assert counters == {(k[0].value, k[1].value if k[1] else ""): v for k, v in actual.items()}


async def test_pages_name_who_started_each_backup(
    database: Database, settings: Settings, storage: BackupStorage
) -> None:
    from app.auth.models import Role, User

    async with database.sessionmaker() as session:
        user = User(email="ops@example.com", password_hash="x", role=Role.admin)
        session.add(user)
        await session.commit()
        service = BackupService(
            session,
            settings=settings,
            storage=storage,
            queue=None,
            actor=Actor(user_id=user.id, name=user.email),
        )
        created = await service.create(enqueue=False)
        await make_backup(database, storage)  # started by nobody (the CLI, say)
        page = await service.list_backups()
    by_id = {b["id"]: b["created_by_email"] for b in page.items}
    assert by_id.pop(created.id) == "ops@example.com"
    assert list(by_id.values()) == [None]
