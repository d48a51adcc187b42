"""Verifications run by a real ``dbkeep worker``: queued, run under the scratch server's lock,
and -- when the worker is SIGKILLed mid-way -- failed and cleaned up by the reconciler."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup
from app.db import Database
from app.jobs.queue import ArqJobQueue
from app.kit.secret import Secret
from app.sources.models import DEFAULT_SOURCE, Source
from app.verifications.models import BackupVerification, VerificationStatus
from app.verifications.reconcile import STOPPED
from app.verifications.service import VerificationService
from tests import support
from tests.worker.conftest import TableLock, WorkerFactory, seed, wait_for


def scratch_exists(name: str) -> bool:
    return bool(support.admin_sql(f"SHOW DATABASES LIKE '{name.replace('_', chr(92) + '_')}'"))


async def _set_verify_url(database: Database, mariadb_password: str) -> Source:
    async with database.sessionmaker() as session:
        source = await session.scalar(select(Source).where(Source.name == DEFAULT_SOURCE))
        assert source is not None
        source.verify_url = Secret(support.target_url("mysql", password=mariadb_password))
        await session.commit()
        return source


async def _completed_backup(
    service_factory: Callable[..., Any], queue: ArqJobQueue, database: Database
) -> DatabaseBackup:
    async with service_factory(queue) as service:
        backup = await service.create()

    async def done() -> DatabaseBackup | None:
        async with database.sessionmaker() as session:
            row = await session.get(DatabaseBackup, backup.id, populate_existing=True)
        assert row is not None
        if row.status is BackupStatus.failed:
            raise AssertionError(row.error_message)
        return row if row.status is BackupStatus.completed else None

    return await wait_for(done, timeout=60, what="the backup to complete")


async def _read(database: Database, verification_id: int) -> BackupVerification:
    async with database.sessionmaker() as session:
        row = await session.get(BackupVerification, verification_id, populate_existing=True)
    assert row is not None
    return row


async def _request(database: Database, queue: ArqJobQueue, source_id: int) -> int:
    async with database.sessionmaker() as session:
        verification = await VerificationService(
            session, queue=queue, actor=Actor.system("test")
        ).request_for_source(source_id)
    return verification.id


async def test_a_queued_verification_passes_on_a_worker(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    target_database: str,
    mariadb_password: str,
) -> None:
    seed(target_database)
    workers.start()
    source = await _set_verify_url(database, mariadb_password)
    backup = await _completed_backup(service_factory, queue, database)
    verification_id = await _request(database, queue, source.id)

    async def finished() -> BackupVerification | None:
        row = await _read(database, verification_id)
        return row if row.status in (VerificationStatus.passed, VerificationStatus.failed) else None

    done = await wait_for(finished, timeout=60, what="the verification to finish")
    assert done.status is VerificationStatus.passed, done.error_message
    assert {t["name"]: t["restored_rows"] for t in done.tables} == {"items": 300, "tags": 2}
    assert not scratch_exists(f"dbkeep_verify_{backup.id}")


@pytest.mark.slow
async def test_a_sigkilled_workers_scratch_database_is_dropped_by_the_reconciler(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    target_database: str,
    mariadb_password: str,
) -> None:
    seed(target_database)
    first = workers.start()
    source = await _set_verify_url(database, mariadb_password)
    backup = await _completed_backup(service_factory, queue, database)
    scratch = f"dbkeep_verify_{backup.id}"
    # A leftover scratch database with a table read-locked: the verification's DROP DATABASE
    # waits on it, so the worker is surely mid-way when it is killed.
    support.admin_sql(f"CREATE DATABASE `{scratch}`; CREATE TABLE `{scratch}`.t (id INT);")
    lock = TableLock(scratch, "t", "READ")
    try:
        verification_id = await _request(database, queue, source.id)

        async def running() -> bool:
            return (await _read(database, verification_id)).status is VerificationStatus.running

        await wait_for(running, timeout=30, what="the verification to run")
        await asyncio.sleep(1)
        first.kill()
    finally:
        lock.release()
    workers.start()

    async def cleaned_up() -> BackupVerification | None:
        row = await _read(database, verification_id)
        if row.status is VerificationStatus.failed and not scratch_exists(scratch):
            return row
        return None

    done = await wait_for(cleaned_up, timeout=60, what="the reconciler to clean up")
    assert done.error_message == STOPPED
    # The killed worker's client may still have run its DROP + CREATE after the lock went:
    # one more reconciler pass (every 5 s) and it is gone for good.
    await asyncio.sleep(7)
    assert not scratch_exists(scratch)
    assert (await _read(database, verification_id)).status is VerificationStatus.failed
