"""Restores run by ``dbkeep worker``: safety backup first, roll back when the load breaks."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import zstandard
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    RestoreOperation,
    RestoreStatus,
)
from app.backups.repository import RestoreRepository
from app.config import Settings
from app.db import Database, utcnow
from app.errors import Conflict
from app.jobs.queue import ArqJobQueue
from app.storage import get_storage
from tests import support
from tests.worker.conftest import WorkerFactory, dump_processes, seed, wait_for

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]
ReadRestore = Callable[[int], Awaitable[RestoreOperation]]
FINISHED = {RestoreStatus.completed, RestoreStatus.failed, RestoreStatus.rolled_back}


async def backed_up(
    service_factory: Callable[..., Any], queue: ArqJobQueue, read_backup: ReadBackup
) -> DatabaseBackup:
    """A completed backup of the target, made by the running worker."""
    async with service_factory(queue) as service:
        backup_id = (await service.create()).id

    async def done() -> DatabaseBackup | None:
        row = await read_backup(backup_id)
        assert row.status is not BackupStatus.failed, row.error_message
        return row if row.status is BackupStatus.completed else None

    return await wait_for(done, what="the backup to complete")


async def restore_finished(read_restore: ReadRestore, restore_id: int) -> RestoreOperation:
    async def done() -> RestoreOperation | None:
        row = await read_restore(restore_id)
        return row if row.status in FINISHED else None

    return await wait_for(done, timeout=60, what=f"restore {restore_id} to finish")


def lock_waits(database: str) -> list[str]:
    """Statements about ``database`` that the server holds waiting for a lock."""
    out = support.admin_sql(
        "SELECT id FROM information_schema.PROCESSLIST "
        f"WHERE info LIKE '%{database}%' AND state LIKE 'Waiting for%lock%' "
        "AND id <> CONNECTION_ID()"
    )
    return out.split()


def change_target(database: str) -> None:
    support.admin_sql(
        "UPDATE items SET name = CONCAT(name, '-changed') WHERE id <= 100;"
        "DELETE FROM items WHERE id > 250;"
        "INSERT INTO tags VALUES (3, 'three');"
        "CREATE TABLE added_later (id INT PRIMARY KEY);",
        database=database,
    )


async def broken_copy_of(
    database: Database, settings: Settings, good: DatabaseBackup
) -> DatabaseBackup:
    """A backup whose dump loads its first table, then fails on a bad statement.

    Its checksum is recorded honestly, so it passes every integrity check: only the load fails.
    """
    storage = get_storage(settings)
    stored = b"".join([chunk async for chunk in storage.read(good.path)])
    sql = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
    marker = b"-- Table structure for table `tags`"
    assert marker in sql
    broken_sql = sql.replace(marker, b"INSERT INTO no_such_table VALUES (1);\n" + marker, 1)
    data = zstandard.ZstdCompressor().compress(broken_sql)
    uid = secrets.token_hex(16)
    key = f"crafted/broken_{uid[:8]}.sql.zst"
    writer = await storage.open_writer(key)
    await writer.write(data)
    size = await writer.commit()
    row = DatabaseBackup(
        filename=key.rsplit("/", 1)[1],
        unique_identifier=uid,
        path=key,
        file_size=size,
        raw_size=len(broken_sql),
        status=BackupStatus.completed,
        backup_date=utcnow(),
        completed_at=utcnow(),
        compression="zstd",
        checksum_sha256=hashlib.sha256(data).hexdigest(),
        trigger=BackupTrigger.manual,
        target_database=good.target_database,
    )
    async with database.sessionmaker() as session:
        session.add(row)
        await session.commit()
    return row


async def test_a_restore_takes_a_safety_backup_then_loads_the_backup(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
) -> None:
    seed(target_database)
    original = support.table_checksums(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    change_target(target_database)
    changed = support.table_checksums(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert done.started_at and done.completed_at and done.duration_ms is not None
    # The dashboard's progress bar ends full, however short the load was.
    assert done.total_bytes and done.bytes_processed >= done.total_bytes
    restored = support.table_checksums(target_database)
    # The backup's tables are back as they were; a table made later is gone (it is in the
    # safety backup).
    assert restored == original
    assert done.safety_backup_id is not None
    safety = await read_backup(done.safety_backup_id)
    assert safety.status is BackupStatus.completed and safety.trigger is BackupTrigger.pre_restore
    assert safety.file_size > 0  # kept like any other backup, holding the state before
    assert changed != original


@pytest.mark.slow
async def test_a_dump_that_breaks_half_way_is_rolled_back_to_the_exact_state_before(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    seed(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    broken = await broken_copy_of(database, worker_settings, good)
    change_target(target_database)
    before = support.table_checksums(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(broken.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert "no_such_table" in (done.error_message or "")
    assert "put back as it was before" in (done.error_message or "")
    assert support.table_checksums(target_database) == before
    safety = await read_backup(done.safety_backup_id or 0)
    assert safety.status is BackupStatus.completed


async def test_without_a_safety_backup_a_broken_load_fails_and_says_so(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    seed(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    broken = await broken_copy_of(database, worker_settings, good)

    async with service_factory(queue) as service:
        operation = await service.request_restore(broken.id, use_safety_backup=False)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.failed
    assert done.safety_backup_id is None
    assert "may be partly restored" in (done.error_message or "")


@pytest.mark.parametrize("where", ["middle", "last byte"])
async def test_a_damaged_backup_file_is_caught_while_it_loads_and_the_target_put_back(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    worker_settings: Settings,
    target_database: str,
    where: str,
) -> None:
    seed(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    path = worker_settings.backup_dir / backup.path
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if where == "middle" else len(data) - 1
    data[at] ^= 0xFF  # same size, different bytes: only the checksum can tell
    path.write_bytes(bytes(data))
    change_target(target_database)
    before = support.table_checksums(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)  # the size is right: accepted
    done = await restore_finished(read_restore, operation.id)

    # The file is checked as it loads (one read): the mismatch stops the load before its end
    # and the safety backup puts the target back.
    assert done.status is RestoreStatus.rolled_back, done.error_message
    message = done.error_message or ""
    assert f"the file of backup {backup.id} is damaged" in message, message
    assert "SHA-256" in message and "put back" in message
    assert support.table_checksums(target_database) == before
    assert (await read_backup(backup.id)).integrity_status == "corrupt"


async def test_a_truncated_backup_file_is_refused_before_the_target_is_touched(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    worker_settings: Settings,
    target_database: str,
) -> None:
    seed(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    path = worker_settings.backup_dir / backup.path
    path.write_bytes(path.read_bytes()[:-10])
    change_target(target_database)
    before = support.table_checksums(target_database)

    async with service_factory(queue) as service:
        with pytest.raises(Conflict, match="damaged"):
            await service.request_restore(backup.id)
    assert support.table_checksums(target_database) == before
    assert (await read_backup(backup.id)).integrity_status == "corrupt"


async def test_a_second_restore_request_is_409_naming_the_running_one(
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    from tests.backups.factories import make_backup

    backup = await make_backup(
        database, get_storage(worker_settings), target_database=target_database
    )
    async with service_factory(queue) as service:
        first = await service.request_restore(backup.id)
    async with service_factory(queue) as service:
        with pytest.raises(Conflict, match=f"Restore {first.id} into database") as raised:
            await service.request_restore(backup.id)
    assert raised.value.status_code == 409


@pytest.mark.slow
async def test_two_restores_racing_on_two_workers_run_one_and_refuse_the_other(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    workers.start()
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    # A second operation for the same target can't even be recorded while the first is active
    # (the store enforces it), however the two requests raced; the first runs once, whichever
    # worker takes it, even when its job is queued twice.
    lock = table_lock()
    async with database.sessionmaker() as session:
        first_op = RestoreOperation(
            backup_id=backup.id,
            status=RestoreStatus.pending,
            use_safety_backup=True,
            target_database=target_database,
        )
        RestoreRepository(session).add(first_op)
        await session.commit()
        first_id = first_op.id
    with pytest.raises(IntegrityError):
        async with database.sessionmaker() as session:
            RestoreRepository(session).add(
                RestoreOperation(
                    backup_id=backup.id,
                    status=RestoreStatus.pending,
                    use_safety_backup=True,
                    target_database=target_database,
                )
            )
            await session.commit()
    await queue.enqueue_restore(first_id)

    async def first_holds_target() -> bool:
        return (await read_restore(first_id)).status is RestoreStatus.in_progress

    await wait_for(first_holds_target, what="the first restore to start")
    await queue.enqueue_restore(first_id)
    lock.release()
    first = await restore_finished(read_restore, first_id)

    assert first.status is RestoreStatus.completed, first.error_message
    assert first.attempts == 1


@pytest.mark.slow
async def test_a_restore_whose_worker_is_killed_is_resumed_by_another_worker(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    original = support.table_checksums(target_database)
    first = workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    support.admin_sql("DELETE FROM items WHERE id > 10", database=target_database)
    lock = table_lock()  # the safety backup blocks: the restore is under way
    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)

    async def safety_started() -> int | None:
        row = await read_restore(operation.id)
        return row.safety_backup_id if dump_processes(target_database) else None

    safety_id = await wait_for(safety_started, what="the safety backup to run")
    first.kill()
    lock.release()
    workers.start()
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert done.attempts == 2
    assert done.safety_backup_id == safety_id  # the same safety backup, finished, not a second
    assert (await read_backup(safety_id)).status is BackupStatus.completed
    async with database.sessionmaker() as session:
        pre_restore = await session.scalars(
            select(DatabaseBackup).where(DatabaseBackup.trigger == BackupTrigger.pre_restore)
        )
        assert len(list(pre_restore)) == 1
    assert support.table_checksums(target_database) == original


async def test_a_restore_cancelled_during_its_safety_backup_leaves_the_database_alone(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    change_target(target_database)
    before = support.table_checksums(target_database)
    lock = table_lock()  # the safety backup blocks on it
    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)

    async def safety_started() -> int | None:
        row = await read_restore(operation.id)
        return row.safety_backup_id if dump_processes(target_database) else None

    safety_id = await wait_for(safety_started, what="the safety backup to run")
    async with service_factory(queue) as service:
        asked = await service.cancel_restore(backup.id, operation.id)
    assert asked.status is RestoreStatus.in_progress and asked.cancel_requested_at
    done = await restore_finished(read_restore, operation.id)
    lock.release()

    assert done.status is RestoreStatus.failed
    assert done.error_message == "Cancelled by test before the database was changed."
    assert done.cancelled
    assert (await read_backup(safety_id)).status is BackupStatus.failed  # stopped too
    assert support.table_checksums(target_database) == before
    assert dump_processes(target_database) == []


async def test_a_restore_cancelled_during_its_load_stops_every_client(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    lock = table_lock()  # dropping the database waits for it: the load is under way, and stuck
    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id, use_safety_backup=False)

    async def loading() -> bool:
        row = await read_restore(operation.id)
        return row.status is RestoreStatus.in_progress and bool(lock_waits(target_database))

    await wait_for(loading, what="the load to start")
    async with service_factory(queue) as service:
        await service.cancel_restore(backup.id, operation.id)
    done = await restore_finished(read_restore, operation.id)

    # The server no longer runs what the killed clients asked for: releasing the lock does not
    # let a DROP queued behind it go ahead after the cancel.
    async def nothing_waits() -> bool:
        return not lock_waits(target_database)

    await wait_for(nothing_waits, timeout=5, what="the killed statements to go")
    lock.release()
    assert support.table_checksums(target_database)  # the database and its tables are there

    assert done.status is RestoreStatus.failed
    assert (done.error_message or "").startswith("Cancelled by test during the load")
    assert done.cancelled
    assert "may be partly restored" in (done.error_message or "")  # no safety backup to use
    assert dump_processes(target_database) == []
