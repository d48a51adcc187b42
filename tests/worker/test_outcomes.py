"""Issue 11, items 13 and 14, with a real worker and MariaDB: a cancel is not a failure anywhere
(API, statistics, counters, metrics, messages), and a restore says which phase it is in, its bytes
and total being that phase's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from starlette.datastructures import State

from app.backups.models import BackupStatus, DatabaseBackup, RestoreOperation, RestoreStatus
from app.backups.schemas import BackupRead, RestoreRead
from app.config import Settings
from app.db import Database
from app.jobs.queue import ArqJobQueue
from app.system.metrics import Metrics
from tests import support
from tests.worker.conftest import WorkerFactory, dump_processes, seed, wait_for
from tests.worker.test_worker_restores import (
    backed_up,
    broken_copy_of,
    change_target,
    restore_finished,
)

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]
ReadRestore = Callable[[int], Awaitable[RestoreOperation]]


async def backups_metric(database: Database) -> dict[str, float]:
    metrics = Metrics()
    body = (await metrics.render(State({"database": database}))).decode()
    found = {}
    for line in body.splitlines():
        if line.startswith('dbkeep_backups{status="'):
            label, value = line.split("} ")
            found[label.split('"')[1]] = float(value)
    return found


async def test_a_cancelled_backup_is_told_apart_from_a_failed_one_everywhere(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    database: Database,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    # One cancelled before it started (no worker yet) ...
    async with service_factory(None) as service:
        pending = await service.create(enqueue=False)
        await service.cancel(pending.id)
    # ... one cancelled while its dump runs (blocked on a table lock) ...
    table_lock()
    workers.start()
    async with service_factory(queue) as service:
        running_id = (await service.create()).id

    async def dumping() -> bool:
        row = await read_backup(running_id)
        return row.status is BackupStatus.in_progress and bool(dump_processes(target_database))

    await wait_for(dumping, what="the dump to run")
    async with service_factory(queue) as service:
        await service.cancel(running_id)

    async def ended() -> DatabaseBackup | None:
        row = await read_backup(running_id)
        return row if row.status is BackupStatus.failed else None

    running = await wait_for(ended, what="the cancelled backup to end")
    # ... and one that really failed.
    async with database.sessionmaker() as session:
        failed = DatabaseBackup(
            filename="failed.sql.zst",
            unique_identifier="f" * 32,
            path="failed.sql.zst",
            status=BackupStatus.failed,
            error_message="Access denied.",
            target_database=target_database,
        )
        session.add(failed)
        await session.commit()

    cancelled_pending = await read_backup(pending.id)
    for row in (cancelled_pending, running):
        assert row.status is BackupStatus.failed  # the contract's status ...
        assert row.cancelled and row.cancelled_at is not None  # ... and why
    assert running.error_message == "Cancelled by test."
    assert cancelled_pending.error_message == "Cancelled before it started."

    async with service_factory(None) as service:
        stats = await service.statistics()
        page = await service.list_backups(per_page=10)
        read = {r.id: r for r in (BackupRead.model_validate(item) for item in page.items)}
    assert (stats.failed_backups, stats.cancelled_backups) == (1, 2)
    assert read[running_id].cancelled and read[pending.id].cancelled
    assert not read[failed.id].cancelled
    assert BackupRead.model_validate(running).model_dump()["cancelled"] is True
    metric = await backups_metric(database)
    assert (metric["failed"], metric["cancelled"]) == (1, 2)

    # The trash keeps it a cancel: out and back, it is counted as cancelled again.
    async with service_factory(None) as service:
        await service.trash(running_id)
        assert (await service.statistics()).cancelled_backups == 1
        await service.restore_from_trash(running_id)
        stats = await service.statistics()
    assert (stats.failed_backups, stats.cancelled_backups) == (1, 2)


@pytest.mark.slow
async def test_a_restore_cancelled_during_its_load_is_rolled_back_and_says_cancelled(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database, rows=20_000)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    change_target(target_database)
    before = support.table_checksums(target_database)
    # A READ lock lets the safety backup read but holds the load's DROP DATABASE: the load is
    # under way for as long as the test likes, so the cancel always lands in the middle of it.
    lock = table_lock("tags", mode="READ")
    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)

    async def in_phase(phase: str) -> bool:
        return (await read_restore(operation.id)).phase.value == phase

    await wait_for(lambda: in_phase("loading"), timeout=60, interval=0.05, what="the load")
    async with service_factory(queue) as service:
        await service.cancel_restore(backup.id, operation.id)
    await wait_for(lambda: in_phase("rolling_back"), timeout=30, what="the rollback to start")
    lock.release()
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert done.cancelled and done.cancelled_at is not None
    message = done.error_message or ""
    assert message.startswith("Cancelled by test during the load; the database was put back")
    assert "failed" not in message.lower()
    assert support.table_checksums(target_database) == before
    body = RestoreRead.model_validate(done).model_dump()
    assert (body["cancelled"], body["phase"]) == (True, "finished")


@pytest.fixture
async def phase_log(database: Database) -> AsyncIterator[Callable[[int], Awaitable[list[Any]]]]:
    """Every phase a restore enters, with its bytes and total at that moment, recorded by a
    trigger in the metadata store (so no phase is missed between two polls)."""
    dialect = database.engine.dialect.name
    key = {
        "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
    }.get(dialect, "BIGSERIAL PRIMARY KEY")
    create = (
        f"CREATE TABLE test_phase_log (seq {key}, restore_id BIGINT, phase VARCHAR(16), "
        "done BIGINT, total BIGINT)"
    )
    insert = (
        "INSERT INTO test_phase_log (restore_id, phase, done, total) "
        "VALUES (NEW.id, NEW.phase, NEW.bytes_processed, NEW.total_bytes)"
    )
    if dialect == "sqlite":
        statements = [
            create,
            "CREATE TRIGGER test_phase_log_trg AFTER UPDATE ON backup_restores "
            f"WHEN OLD.phase IS NOT NEW.phase BEGIN {insert}; END",
        ]
        drop = ["DROP TRIGGER test_phase_log_trg", "DROP TABLE test_phase_log"]
    elif dialect == "mysql":
        statements = [
            create,
            "CREATE TRIGGER test_phase_log_trg AFTER UPDATE ON backup_restores FOR EACH ROW "
            f"BEGIN IF NOT (OLD.phase <=> NEW.phase) THEN {insert}; END IF; END",
        ]
        drop = ["DROP TRIGGER test_phase_log_trg", "DROP TABLE test_phase_log"]
    else:
        statements = [
            create,
            "CREATE FUNCTION test_phase_log_fn() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {insert}; RETURN NULL; END $$",
            "CREATE TRIGGER test_phase_log_trg AFTER UPDATE ON backup_restores FOR EACH ROW "
            "WHEN (OLD.phase IS DISTINCT FROM NEW.phase) EXECUTE FUNCTION test_phase_log_fn()",
        ]
        drop = [
            "DROP TRIGGER test_phase_log_trg ON backup_restores",
            "DROP FUNCTION test_phase_log_fn()",
            "DROP TABLE test_phase_log",
        ]
    async with database.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))

    async def read(restore_id: int) -> list[Any]:
        async with database.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT phase, done, total FROM test_phase_log WHERE restore_id = :id "
                    "ORDER BY seq"
                ),
                {"id": restore_id},
            )
            return [tuple(r) for r in rows]

    try:
        yield read
    finally:
        async with database.engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))


@pytest.mark.slow
async def test_a_restore_reports_each_phase_with_that_phases_bytes_and_total(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
    phase_log: Callable[[int], Awaitable[list[Any]]],
) -> None:
    seed(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    broken = await broken_copy_of(database, worker_settings, good)  # its load fails half-way
    change_target(target_database)
    async with service_factory(queue) as service:
        operation = await service.request_restore(broken.id)
        assert RestoreRead.model_validate(operation).phase.value == "queued"
    done = await restore_finished(read_restore, operation.id)
    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert not done.cancelled
    assert (done.error_message or "").startswith("The restore failed: ")

    phases = await phase_log(operation.id)
    assert [p for p, _, _ in phases] == ["safety_backup", "loading", "rolling_back", "finished"]
    (_, safety_done, safety_total), (_, load_done, load_total), (_, back_done, back_total) = phases[
        :3
    ]
    safety = await read_backup(done.safety_backup_id or 0)
    # Each phase starts at 0 bytes of its own total: the safety backup's estimate of the target
    # (never the backup's size), the backup's size, then the safety backup's size to roll back.
    assert safety_done == 0 and safety_total
    assert (load_done, load_total) == (0, broken.raw_size)
    assert (back_done, back_total) == (0, safety.raw_size)
    assert safety_total != broken.raw_size
