"""One restore per target database, and never a restore beside a backup, kept by the store.

Requests race through the API truly at once (``asyncio.gather`` over one app); the rows are also
written straight to the store, as another process or host would, to show that the store itself
refuses a second active restore and that every way a row ends gives the target back. Run with
``DBKEEP_TEST_METADATA=mysql`` and ``=postgres`` too.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import zstandard
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    RestoreOperation,
    RestoreStatus,
    TargetActivity,
)
from app.config import Settings
from app.db import Database
from app.engines.base import TargetSpec
from app.jobs.reconciler import Reconciler
from tests.api.conftest import BackupFactory, assert_failure

BACKUPS = "/admin/api/database-backups"
SQL = b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n" * 100


def _target(settings: Settings) -> str:
    assert settings.target_url is not None
    return TargetSpec.from_url(settings.target_url.get_secret_value()).database


@pytest.fixture
async def intact(make_backup: BackupFactory, settings: Settings, database: Database) -> int:
    """A completed backup whose file is there with its recorded size and checksum."""
    backup = await make_backup()
    stored = zstandard.ZstdCompressor().compress(SQL)
    path = settings.backup_dir / backup.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stored)
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.id == backup.id)
            .values(file_size=len(stored), checksum_sha256=hashlib.sha256(stored).hexdigest())
        )
        await session.commit()
    return backup.id


async def _active_restores(database: Database) -> int:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            select(RestoreOperation.id).where(
                RestoreOperation.status.in_((RestoreStatus.pending, RestoreStatus.in_progress))
            )
        )
        return len(rows.all())


async def test_concurrent_restores_of_one_database_one_202_the_others_409(
    admin_client: httpx.AsyncClient, intact: int, database: Database
) -> None:
    responses = await asyncio.gather(
        *(admin_client.post(f"{BACKUPS}/{intact}/restore") for _ in range(6))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_failure(response, 409)
    assert await _active_restores(database) == 1


async def test_concurrent_restore_and_backup_one_202_the_other_409(
    admin_client: httpx.AsyncClient, intact: int, database: Database
) -> None:
    for _ in range(3):
        restore, backup = await asyncio.gather(
            admin_client.post(f"{BACKUPS}/{intact}/restore"),
            admin_client.post(BACKUPS),
        )
        assert sorted((restore.status_code, backup.status_code)) == [202, 409], (
            restore.text,
            backup.text,
        )
        # Clear the way for the next round: whatever was accepted ends.
        async with database.sessionmaker() as session:
            await session.execute(
                update(RestoreOperation)
                .where(RestoreOperation.status == RestoreStatus.pending)
                .values(status=RestoreStatus.failed)
            )
            await session.execute(
                update(DatabaseBackup)
                .where(DatabaseBackup.status == BackupStatus.pending)
                .values(status=BackupStatus.failed)
            )
            await session.commit()


async def test_backups_of_one_database_may_still_be_queued_together(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    responses = await asyncio.gather(*(admin_client.post(BACKUPS) for _ in range(3)))
    assert [r.status_code for r in responses] == [202, 202, 202]


async def test_the_answer_to_a_create_names_who_started_it(
    admin_client: httpx.AsyncClient, intact: int
) -> None:
    backup = await admin_client.post(BACKUPS)
    assert backup.status_code == 202
    assert backup.json()["data"]["created_by_email"] == "admin@example.com"
    # The restore answers with its requester too (the pending backup, cancelled, is out of its way).
    cancel = await admin_client.post(f"{BACKUPS}/{backup.json()['data']['id']}/cancel")
    assert cancel.status_code == 200, cancel.text
    restore = await admin_client.post(f"{BACKUPS}/{intact}/restore")
    assert restore.status_code == 202, restore.text
    assert restore.json()["data"]["requested_by_email"] == "admin@example.com"


async def test_a_backup_being_restored_cannot_be_deleted(
    admin_client: httpx.AsyncClient, intact: int, database: Database
) -> None:
    assert (await admin_client.post(f"{BACKUPS}/{intact}/restore")).status_code == 202
    body = assert_failure(await admin_client.delete(f"{BACKUPS}/{intact}"), 409)
    assert "being restored" in body["message"]
    assert await _active_restores(database) == 1


# ---- the store itself ------------------------------------------------------------------------


def _restore(backup_id: int, target: str, **values: Any) -> RestoreOperation:
    return RestoreOperation(
        backup_id=backup_id,
        status=values.pop("status", RestoreStatus.pending),
        target_database=target,
        use_safety_backup=True,
        bytes_processed=0,
        attempts=0,
        **values,
    )


def _backup(target: str, **values: Any) -> DatabaseBackup:
    now = datetime.now(UTC)
    uid = values.pop("unique_identifier", None) or hashlib.md5(repr(now).encode()).hexdigest()
    return DatabaseBackup(
        filename=f"{target}-{uid}.sql.zst",
        unique_identifier=uid,
        path=f"x/{uid}.sql.zst",
        file_size=0,
        status=values.pop("status", BackupStatus.pending),
        backup_date=now,
        compression="zstd",
        trigger=values.pop("trigger", BackupTrigger.manual),
        target_database=target,
        bytes_processed=0,
        attempts=0,
        **values,
    )


async def _insert(database: Database, row: Any) -> int:
    async with database.sessionmaker() as session:
        session.add(row)
        await session.commit()
        return int(row.id)


async def _insert_refused(database: Database, row: Any) -> None:
    async with database.sessionmaker() as session:
        session.add(row)
        with pytest.raises(DBAPIError, match="ck_target_activity"):
            await session.flush()
        await session.rollback()


async def _set_restore(database: Database, restore_id: int, **values: Any) -> None:
    async with database.sessionmaker() as session:
        await session.execute(
            update(RestoreOperation).where(RestoreOperation.id == restore_id).values(**values)
        )
        await session.commit()


async def _activity(database: Database, target: str) -> tuple[int, int]:
    async with database.sessionmaker() as session:
        row = await session.get(TargetActivity, target, populate_existing=True)
        return (row.restores, row.backups) if row else (0, 0)


@pytest.mark.parametrize(
    "end",
    [
        {"status": RestoreStatus.completed},
        {"status": RestoreStatus.failed},
        {"status": RestoreStatus.rolled_back},
        {"status": RestoreStatus.failed, "cancel_requested_at": datetime.now(UTC)},
        "deleted",
    ],
    ids=["completed", "failed", "rolled_back", "cancelled", "deleted"],
)
async def test_the_store_holds_one_restore_per_target_until_it_ends(
    make_backup: BackupFactory, database: Database, end: Any
) -> None:
    backup = await make_backup()
    first = await _insert(database, _restore(backup.id, "shop"))
    # Another process inserting a second active restore of the same target is refused ...
    await _insert_refused(database, _restore(backup.id, "shop"))
    await _insert_refused(database, _restore(backup.id, "shop", status=RestoreStatus.in_progress))
    # ... and so is a backup of it (a restore's own safety backup is not).
    await _insert_refused(database, _backup("shop"))
    await _insert(database, _backup("shop", trigger=BackupTrigger.pre_restore))
    # Another target is free; claiming it moves nothing here.
    await _insert(database, _restore(backup.id, "other"))
    await _set_restore(database, first, status=RestoreStatus.in_progress)
    assert await _activity(database, "shop") == (1, 0)

    if end == "deleted":
        async with database.sessionmaker() as session:
            await session.execute(delete(RestoreOperation).where(RestoreOperation.id == first))
            await session.commit()
    else:
        await _set_restore(database, first, **end)

    assert await _activity(database, "shop") == (0, 0)
    await _insert(database, _restore(backup.id, "shop"))


async def test_a_backup_in_progress_holds_off_restores_until_it_ends(
    make_backup: BackupFactory, database: Database
) -> None:
    backup = await make_backup()
    ids = [await _insert(database, _backup("shop", status=BackupStatus.in_progress))]
    ids.append(await _insert(database, _backup("shop")))  # two backups may be queued
    assert await _activity(database, "shop") == (0, 2)
    await _insert_refused(database, _restore(backup.id, "shop"))
    for backup_id, status in zip(ids, (BackupStatus.completed, BackupStatus.failed), strict=True):
        async with database.sessionmaker() as session:
            await session.execute(
                update(DatabaseBackup).where(DatabaseBackup.id == backup_id).values(status=status)
            )
            await session.commit()
    assert await _activity(database, "shop") == (0, 0)
    await _insert(database, _restore(backup.id, "shop"))


async def test_a_backup_failed_by_the_reconciler_gives_the_target_back(
    make_backup: BackupFactory, database: Database, settings: Settings
) -> None:
    from app.jobs.queue import ArqJobQueue
    from app.storage.local import LocalStorage

    backup = await make_backup()
    long_ago = datetime.now(UTC) - timedelta(days=2)
    stuck = await _insert(
        database,
        _backup(
            "shop", status=BackupStatus.in_progress, started_at=long_ago, heartbeat_at=long_ago
        ),
    )
    await _insert_refused(database, _restore(backup.id, "shop"))
    queue = ArqJobQueue.from_settings(settings)
    try:
        reconciler = Reconciler(
            database=database,
            settings=settings,
            storage=LocalStorage(settings.backup_dir),
            queue=queue,
            in_progress_timeout_s=60,
        )
        report = await reconciler.run_once()
    finally:
        await queue.close()
    assert report.failed == 1
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, stuck)
        assert row is not None and row.status is BackupStatus.failed
    await _insert(database, _restore(backup.id, "shop"))


async def _reconcile(database: Database, settings: Settings) -> Any:
    from app.jobs.queue import ArqJobQueue
    from app.storage.local import LocalStorage

    queue = ArqJobQueue.from_settings(settings)
    try:
        return await Reconciler(
            database=database,
            settings=settings,
            storage=LocalStorage(settings.backup_dir),
            queue=queue,
            in_progress_timeout_s=60,
        ).run_once()
    finally:
        await queue.close()


async def test_the_reconciler_recounts_a_target_a_cascade_left_held(
    make_backup: BackupFactory, database: Database, settings: Settings
) -> None:
    backup = await make_backup()
    other = await make_backup()
    await _insert(database, _restore(backup.id, "shop"))
    kept = await _insert(database, _restore(other.id, "other"))
    # Deleting the backup row takes its restore with it by the foreign key's cascade; on
    # MariaDB a cascade fires no trigger, so the counter may still say "restoring". Make it
    # say so on every store, as that would.
    async with database.sessionmaker() as session:
        await session.execute(delete(DatabaseBackup).where(DatabaseBackup.id == backup.id))
        await session.execute(
            update(TargetActivity)
            .where(TargetActivity.target_database == "shop")
            .values(restores=1)
        )
        await session.commit()
    await _insert_refused(database, _restore(other.id, "shop"))

    report = await _reconcile(database, settings)

    assert report.targets_recounted == 1
    assert await _activity(database, "shop") == (0, 0)
    assert await _activity(database, "other") == (1, 0)  # a true count is left alone
    await _insert(database, _restore(other.id, "shop"))
    await _set_restore(database, kept, status=RestoreStatus.completed)
    assert (await _reconcile(database, settings)).targets_recounted == 0
