"""Backups queued for ``dbkeep worker`` processes, and what happens when a dump is interrupted."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.backups.models import BackupStatus, DatabaseBackup
from app.config import Settings
from app.jobs.queue import ArqJobQueue
from tests.worker.conftest import (
    WorkerFactory,
    backup_files,
    dump_processes,
    seed,
    temporaries,
    wait_for,
)

FINISHED = {BackupStatus.completed, BackupStatus.failed}
ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]


async def queue_backup(service_factory: Callable[..., Any], queue: ArqJobQueue) -> int:
    async with service_factory(queue) as service:
        return int((await service.create()).id)


async def wait_status(
    read_backup: ReadBackup,
    backup_id: int,
    statuses: set[BackupStatus],
    *,
    timeout: float = 30,
) -> DatabaseBackup:
    async def probe() -> DatabaseBackup | None:
        row = await read_backup(backup_id)
        return row if row.status in statuses else None

    return await wait_for(probe, timeout=timeout, what=f"backup {backup_id} to be {statuses}")


async def wait_dump_running(database: str, read_backup: ReadBackup, backup_id: int) -> None:
    await wait_status(read_backup, backup_id, {BackupStatus.in_progress})

    async def running() -> bool:
        return bool(dump_processes(database))

    await wait_for(running, timeout=15, what="mariadb-dump to be running")


async def no_dump_processes(database: str) -> None:
    async def gone() -> bool:
        return not dump_processes(database)

    await wait_for(gone, timeout=15, what="no dump process left")


async def test_a_queued_backup_is_run_by_a_worker_process(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
) -> None:
    seed(target_database)
    workers.start()
    backup_id = await queue_backup(service_factory, queue)

    backup = await wait_status(read_backup, backup_id, FINISHED)

    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.attempts == 1
    assert backup.file_size > 0 and backup.checksum_sha256
    assert backup.started_at and backup.completed_at and backup.duration_ms is not None
    assert [p.name for p in backup_files(worker_settings.backup_dir)] == [backup.filename]
    assert temporaries(worker_settings.backup_dir) == []
    status = await queue.status()
    assert status.reachable and status.worker_seen


@pytest.mark.slow
async def test_sigterm_mid_dump_kills_the_dump_and_the_job_reruns_cleanly(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    lock = table_lock()  # the dump blocks on the locked table: "mid-dump" for as long as we like
    first = workers.start()
    backup_id = await queue_backup(service_factory, queue)
    await wait_dump_running(target_database, read_backup, backup_id)

    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0

    # No orphan dump, no partial file, and the row is ready for the next worker (not stuck).
    assert dump_processes(target_database) == []
    assert temporaries(worker_settings.backup_dir) == []
    row = await read_backup(backup_id)
    assert row.status is BackupStatus.pending, (row.status, row.error_message)
    assert await queue.job_exists(f"{worker_settings.queue_name}:backup:{backup_id}")

    lock.release()
    workers.start()
    backup = await wait_status(read_backup, backup_id, FINISHED)
    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.attempts == 2
    assert len(backup_files(worker_settings.backup_dir)) == 1
    assert temporaries(worker_settings.backup_dir) == []


@pytest.mark.slow
async def test_sigkill_mid_dump_leaves_no_orphan_and_the_backup_ends_completed(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    lock = table_lock()
    # A short dump timeout: temporaries older than it (plus a heartbeat timeout) are orphans.
    first = workers.start(backup_timeout_seconds=10)
    backup_id = await queue_backup(service_factory, queue)
    await wait_dump_running(target_database, read_backup, backup_id)

    first.kill()
    # The dump dies with its worker even though it is blocked and writes nothing.
    await no_dump_processes(target_database)
    lock.release()
    assert (await read_backup(backup_id)).status is BackupStatus.in_progress

    # A new worker notices the silent heartbeat, reruns the job at once (not after arq's
    # job timeout), and removes the dead attempt's temporary file.
    workers.start(backup_timeout_seconds=10)
    backup = await wait_status(read_backup, backup_id, FINISHED, timeout=60)
    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.attempts == 2
    assert len(backup_files(worker_settings.backup_dir)) == 1

    async def partial_removed() -> bool:
        return not temporaries(worker_settings.backup_dir)

    await wait_for(partial_removed, timeout=60, what="the killed attempt's partial file to go")


@pytest.mark.slow
async def test_a_dump_hanging_past_the_timeout_fails_and_cleans_up(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    table_lock()  # held for the whole test: the server never answers the dump
    workers.start(backup_timeout_seconds=10)
    backup_id = await queue_backup(service_factory, queue)

    backup = await wait_status(read_backup, backup_id, FINISHED, timeout=60)

    assert backup.status is BackupStatus.failed
    assert "timed out" in (backup.error_message or "")
    await no_dump_processes(target_database)
    assert temporaries(worker_settings.backup_dir) == []
    assert backup_files(worker_settings.backup_dir) == []


async def test_cancelling_a_running_backup_stops_the_dump_and_removes_the_file(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
    table_lock: Callable[..., Any],
) -> None:
    seed(target_database)
    table_lock()
    workers.start()
    backup_id = await queue_backup(service_factory, queue)
    await wait_dump_running(target_database, read_backup, backup_id)

    async with service_factory(queue) as service:
        await service.cancel(backup_id)

    backup = await wait_status(read_backup, backup_id, {BackupStatus.failed}, timeout=15)
    assert "cancel" in (backup.error_message or "").lower()
    await no_dump_processes(target_database)
    assert temporaries(worker_settings.backup_dir) == []
    assert backup_files(worker_settings.backup_dir) == []
