"""``dbkeep serve`` with its embedded worker, the scale-out layout, and the private Redis."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app.backups.models import BackupStatus, DatabaseBackup
from app.cli.server import _ensure_redis
from app.config import Settings
from app.jobs.private_redis import redis_answers
from app.jobs.queue import ArqJobQueue, health_check_key
from tests.worker.conftest import DBKEEP, WorkerFactory, seed, wait_for

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, workers: WorkerFactory, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(DBKEEP), "serve", "--port", str(self.port), *args],
                env=workers.env(),
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code in {200, 503}:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def serve(workers: WorkerFactory, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(workers, tmp_path, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


async def wait_completed(read_backup: ReadBackup, backup_id: int) -> DatabaseBackup:
    async def done() -> DatabaseBackup | None:
        row = await read_backup(backup_id)
        assert row.status is not BackupStatus.failed, row.error_message
        return row if row.status is BackupStatus.completed else None

    return await wait_for(done, timeout=60, what=f"backup {backup_id} to complete")


async def test_serve_runs_the_worker_in_process_and_reports_it(
    serve: Callable[..., Server],
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
) -> None:
    seed(target_database, rows=30)
    server = serve()
    async with service_factory(queue) as service:
        backup_id = (await service.create()).id
    await wait_completed(read_backup, backup_id)

    async def worker_reported() -> dict[str, Any] | None:
        body = httpx.get(f"{server.url}/health", timeout=10).json()
        check = body["data"]["checks"]["worker"]
        return check if check["status"] == "ok" else None

    check = await wait_for(worker_reported, what="/health to show the worker")
    assert check["details"]["queue_depth"] == 0
    assert check["details"]["heartbeat_age_seconds"] is not None
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "dbkeep_worker_up 1.0" in metrics
    assert 'dbkeep_job_duration_seconds_count{kind="backup",status="completed"} 1.0' in metrics
    assert "dbkeep_queue_depth 0.0" in metrics

    # uvicorn shuts down gracefully, then re-raises the signal it caught (hence -SIGTERM); by
    # then the embedded worker has stopped and removed its heartbeat.
    assert server.stop() == -signal.SIGTERM
    log = server.log()
    assert "Application shutdown complete" in log and "worker.stopped" in log
    assert not await queue.redis.exists(health_check_key(queue.queue_name))


@pytest.mark.slow
async def test_scale_out_api_without_worker_plus_two_worker_processes(
    serve: Callable[..., Server],
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    target_database: str,
) -> None:
    seed(target_database, rows=30)
    server = serve("--no-worker")
    async with service_factory(queue) as service:
        first = (await service.create()).id
    body = httpx.get(f"{server.url}/health", timeout=10).json()
    assert body["data"]["checks"]["worker"]["status"] == "fail"  # not critical: degraded
    assert body["data"]["status"] == "degraded"
    assert (await read_backup(first)).status is BackupStatus.pending

    workers.start()
    workers.start()
    ids = [first]
    for _ in range(3):
        async with service_factory(queue) as service:
            ids.append((await service.create()).id)
    done = [await wait_completed(read_backup, backup_id) for backup_id in ids]

    # Each job ran once, and never two dumps of the one target at the same time.
    assert [row.attempts for row in done] == [1, 1, 1, 1]
    spans = sorted((row.started_at, row.completed_at) for row in done)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None and start is not None and end <= start
    logs = workers.logs()
    assert logs.count("backup.completed") == 4


def test_serve_starts_a_private_redis_when_none_answers_and_none_is_configured(
    tmp_path: Path,
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings.model_construct(_fields_set=set(), redis_url=closed, var_dir=tmp_path)
    private = _ensure_redis(settings)
    try:
        assert private is not None
        assert private.url.startswith("unix://") and str(tmp_path) in private.url
        assert redis_answers(private.url)
    finally:
        if private is not None:
            private.stop()
    assert not redis_answers(private.url)
    # A Redis the user pointed to is never replaced by a private one.
    configured = Settings.model_construct(
        _fields_set={"redis_url"}, redis_url=closed, var_dir=tmp_path
    )
    assert _ensure_redis(configured) is None


def test_the_private_redis_dies_with_a_killed_serve(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from app.jobs.private_redis import PrivateRedis\n"
        "server = PrivateRedis.start(Path(sys.argv[1]))\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "var")], stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    redis_pid = int(parent.stdout.readline())
    assert psutil.pid_exists(redis_pid)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(redis_pid) and psutil.Process(redis_pid).status() != "zombie":
        assert time.monotonic() < deadline, "redis-server outlived the process that started it"
        time.sleep(0.05)
