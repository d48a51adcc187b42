"""Fixtures for worker tests: ``dbkeep worker`` as a real process, a private Redis, polling helpers.

Each test gets its own metadata store (emptied), queue name, backup directory and target database,
so tests of several people can run at once against the shared MariaDB and Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from app.audit.service import Actor
from app.backups.models import DatabaseBackup, RestoreOperation
from app.backups.repository import BackupRepository, RestoreRepository
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.jobs.private_redis import PrivateRedis
from app.jobs.queue import ArqJobQueue
from app.keys import configure_encryption
from app.kit.encryption import install_key_ring
from app.storage import get_storage
from tests import support

DBKEEP = Path(sys.executable).parent / "dbkeep"
T = TypeVar("T")

# Short clocks so that dead workers are noticed within seconds, not minutes.
FAST = {
    "heartbeat_timeout_seconds": 5,
    "reconcile_every_seconds": 5,
    "backup_timeout_seconds": 60,
    "restore_timeout_seconds": 60,
    "transient_retries": 1,
}


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def seed(database: str, rows: int = 300) -> None:
    support.admin_sql(
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), note TEXT);"
        "CREATE TABLE tags (id INT PRIMARY KEY, label VARCHAR(40));"
        "INSERT INTO items (name, note) SELECT CONCAT('item-', seq), REPEAT('x', 80) "
        f"FROM seq_1_to_{rows};"
        "INSERT INTO tags VALUES (1, 'one'), (2, 'two');",
        database=database,
    )


def dump_processes(database: str) -> list[psutil.Process]:
    """Dump or client processes working on ``database`` (our unique test database)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            name = proc.info["name"] or ""
            cmdline = proc.info["cmdline"] or []
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if name in {"mariadb-dump", "mysqldump", "mariadb", "mysql"} and database in cmdline:
            found.append(proc)
    return found


def temporaries(backup_dir: Path) -> list[Path]:
    return [p for p in backup_dir.rglob(".tmp-*")] if backup_dir.exists() else []


def backup_files(backup_dir: Path) -> list[Path]:
    if not backup_dir.exists():
        return []
    return [p for p in backup_dir.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]


@dataclass
class WorkerProcess:
    """One ``dbkeep worker`` started for a test."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, like the OOM killer: no clean-up runs."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class WorkerFactory:
    settings: Settings
    tmp_path: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
        values = {
            "env": "test",
            "database_url": self.settings.database_url,
            "redis_url": self.settings.redis_url,
            "queue_name": self.settings.queue_name,
            "target_url": self.settings.target_url.get_secret_value()
            if self.settings.target_url
            else "",
            "backup_dir": str(self.settings.backup_dir),
            "var_dir": str(self.settings.var_dir),
            "secret_key": "test-secret-key-" + "x" * 32,
            "encryption_key": self.settings.encryption_key.get_secret_value()
            if self.settings.encryption_key
            else "",
            "schedule_enabled": "false",
            "heartbeat_timeout_seconds": self.settings.heartbeat_timeout_seconds,
            "reconcile_every_seconds": self.settings.reconcile_every_seconds,
            "backup_timeout_seconds": self.settings.backup_timeout_seconds,
            "restore_timeout_seconds": self.settings.restore_timeout_seconds,
            "transient_retries": self.settings.transient_retries,
            "log_level": "INFO",
            **overrides,
        }
        env.update({f"DBKEEP_{k.upper()}": str(v) for k, v in values.items()})
        return env

    def start(self, *, ready: bool = True, **overrides: Any) -> WorkerProcess:
        """Start ``dbkeep worker``; with ``ready``, wait until it has reconciled and polls."""
        name = f"worker{len(self.started) + 1}"
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(DBKEEP), "worker"],
                env=self.env(**overrides),
                cwd=self.tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log_path, name)
        self.started.append(worker)
        if ready:
            deadline = time.monotonic() + 30
            while "worker.started" not in worker.log():
                if not worker.alive() or time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not start:\n{worker.log()[-3000:]}")
                time.sleep(0.1)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log()[-4000:]}" for w in self.started)


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """The test's settings with the short clocks the worker processes get too."""
    return settings.model_copy(update=FAST)


@pytest.fixture(autouse=True)
def key_ring(worker_settings: Settings) -> Iterator[None]:
    """The encryption keys the worker processes have: this process reads (and tests write)
    source URLs too, e.g. the ``default`` source a worker makes at start-up."""
    configure_encryption(worker_settings)
    yield
    install_key_ring(None)


@pytest.fixture
def workers(
    worker_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(worker_settings, tmp_path)
    yield factory
    for worker in factory.started:
        worker.kill()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(factory.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
async def queue(worker_settings: Settings) -> AsyncIterator[ArqJobQueue]:
    q = ArqJobQueue.from_settings(worker_settings)
    yield q
    keys = await q.redis.keys(f"*{worker_settings.queue_name}*")
    if keys:
        await q.redis.delete(*keys)
    await q.close()


@pytest.fixture
def service_factory(database: Database, worker_settings: Settings) -> Callable[..., Any]:
    """``async with service_factory(queue) as service`` gives a BackupService on its own session."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(queue: ArqJobQueue | None = None) -> AsyncIterator[BackupService]:
        async with database.sessionmaker() as session:
            yield BackupService(
                session,
                settings=worker_settings,
                storage=get_storage(worker_settings),
                queue=queue,
                actor=Actor.system("test"),
            )

    return make


@pytest.fixture
def read_backup(database: Database) -> Callable[[int], Awaitable[DatabaseBackup]]:
    async def read(backup_id: int) -> DatabaseBackup:
        async with database.sessionmaker() as session:
            row = await BackupRepository(session).get(backup_id)
        assert row is not None
        return row

    return read


@pytest.fixture
def read_restore(database: Database) -> Callable[[int], Awaitable[RestoreOperation]]:
    async def read(restore_id: int) -> RestoreOperation:
        async with database.sessionmaker() as session:
            row = await RestoreRepository(session).get(restore_id)
        assert row is not None
        return row

    return read


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, which the test may stop, restart or wipe."""
    server = PrivateRedis.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


class TableLock:
    """An admin session holding ``LOCK TABLES ... WRITE``: a dump of that table blocks on it.
    ``mode="READ"`` lets a dump read it but blocks a restore's DROP DATABASE."""

    def __init__(self, database: str, table: str = "items", mode: str = "WRITE") -> None:
        self.proc = subprocess.Popen(
            [
                "mariadb", "--protocol=socket", f"--socket={support.MARIADB_SOCKET}", "-uroot",
                "-N", "-B", "--unbuffered", f"--database={database}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"LOCK TABLES `{table}` {mode}; SELECT 'locked';\n".encode())
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == b"locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"UNLOCK TABLES;\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


@pytest.fixture
def table_lock(target_database: str) -> Iterator[Callable[..., TableLock]]:
    held: list[TableLock] = []

    def take(table: str = "items", mode: str = "WRITE") -> TableLock:
        lock = TableLock(target_database, table, mode)
        held.append(lock)
        return lock

    yield take
    for lock in held:
        lock.release()
