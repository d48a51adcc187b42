"""The queue when Redis is down, restarted or emptied: 503 at request time, recovery later."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from app.backups.models import BackupStatus, DatabaseBackup, RestoreStatus
from app.config import Settings
from app.db import Database
from app.errors import ServiceUnavailable
from app.jobs.private_redis import PrivateRedis
from app.jobs.queue import ArqJobQueue
from app.storage import get_storage
from tests.backups.factories import make_backup
from tests.worker.conftest import DBKEEP, WorkerFactory, seed, wait_for

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there once the socket is closed


async def wait_completed(read_backup: ReadBackup, backup_id: int, timeout: float = 30) -> None:
    async def done() -> bool:
        row = await read_backup(backup_id)
        assert row.status is not BackupStatus.failed, row.error_message
        return row.status is BackupStatus.completed

    await wait_for(done, timeout=timeout, what=f"backup {backup_id} to complete")


async def test_redis_down_at_enqueue_is_503_and_leaves_nothing_pending(
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    database: Database,
    worker_settings: Settings,
) -> None:
    down = ArqJobQueue.from_settings(
        worker_settings.model_copy(update={"redis_url": closed_port_url()})
    )
    try:
        async with service_factory(down) as service:
            with pytest.raises(ServiceUnavailable) as raised:
                await service.create()
        assert raised.value.status_code == 503
        assert raised.value.message == (
            "The job queue (Redis) is unavailable; the backup was not queued."
        )
        async with service_factory(None) as service:
            page = await service.list_backups()
        [row] = page.items
        assert row["status"] is BackupStatus.failed  # not pending forever
        assert row["error_message"] == raised.value.message

        completed = await make_backup(
            database, get_storage(worker_settings), target_database=row["target_database"] or ""
        )
        async with service_factory(down) as service:
            with pytest.raises(ServiceUnavailable, match="restore was not queued"):
                await service.request_restore(completed.id)
            [operation] = await service.list_restores(completed.id)
        assert operation.status is RestoreStatus.failed
    finally:
        await down.close()


def test_cli_queue_with_redis_down_is_one_clear_line(
    worker_settings: Settings, database: Database, target_database: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    assert worker_settings.target_url is not None
    env.update(
        DBKEEP_ENV="test",
        DBKEEP_DATABASE_URL=worker_settings.database_url,
        DBKEEP_TARGET_URL=worker_settings.target_url.get_secret_value(),
        DBKEEP_BACKUP_DIR=str(worker_settings.backup_dir),
        DBKEEP_VAR_DIR=str(worker_settings.var_dir),
        DBKEEP_REDIS_URL=closed_port_url(),
        DBKEEP_QUEUE_NAME=worker_settings.queue_name,
    )
    result = subprocess.run(
        [str(DBKEEP), "backup:database", "--queue"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "dbkeep: error: The job queue (Redis) is unavailable; the backup was not queued."
    )


async def test_enqueueing_a_row_twice_makes_one_job(
    queue: ArqJobQueue, worker_settings: Settings
) -> None:
    await queue.enqueue_backup(7)
    await queue.enqueue_backup(7)
    await queue.enqueue_restore(7)

    jobs = await queue.redis.zrange(worker_settings.queue_name, 0, -1)
    assert sorted(jobs) == sorted(
        [
            f"{worker_settings.queue_name}:backup:7".encode(),
            f"{worker_settings.queue_name}:restore:7".encode(),
        ]
    )
    assert (await queue.status()).depth == 2


@pytest.mark.slow
async def test_worker_survives_a_redis_restart_and_the_reconciler_requeues_lost_jobs(
    workers: WorkerFactory,
    private_redis: PrivateRedis,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
    worker_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    seed(target_database, rows=50)
    settings = worker_settings.model_copy(update={"redis_url": private_redis.url})
    redis_dir = private_redis.directory.parent

    def restart_redis_empty() -> PrivateRedis:
        private_redis.stop()  # nothing persisted: the queue is lost
        server = PrivateRedis.start(redis_dir)
        assert server.url == private_redis.url
        private_redis.process = server.process
        return server

    queue = ArqJobQueue.from_settings(settings)
    try:
        worker = workers.start(redis_url=private_redis.url)

        # 1. Redis restarts under a running worker: it keeps taking jobs afterwards.
        restart_redis_empty()
        async with service_factory(queue) as service:
            first = (await service.create()).id
        await wait_completed(read_backup, first)

        # 2. A row whose job vanished while it waited (recorded, then the queue was lost):
        # the periodic reconciler queues it again.
        async with service_factory(None) as service:
            second = (await service.create(enqueue=False)).id
        await wait_completed(read_backup, second, timeout=30)

        # 3. Queued while no worker ran, then Redis restarted empty: the next worker's
        # start-up reconcile finds the pending row and queues it.
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        async with service_factory(queue) as service:
            third = (await service.create()).id
        restart_redis_empty()
        assert (await read_backup(third)).status is BackupStatus.pending
        workers.start(redis_url=private_redis.url)
        await wait_completed(read_backup, third)
        assert "reconcile.requeued" in workers.logs()
    finally:
        await queue.close()
