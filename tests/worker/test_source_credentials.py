"""A source's password, measured where it could leak while a real worker backs the source up:
the dump's argv and environment (``ps``), the worker's own, its log, the row's messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psutil
import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup
from app.config import Settings
from app.db import Database
from app.engines.registry import EngineRegistry
from app.jobs.queue import ArqJobQueue
from app.keys import configure_encryption
from app.sources.schemas import SourceCreate
from app.sources.service import SourceService
from tests import support
from tests.worker.conftest import WorkerFactory, dump_processes, seed, wait_for

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]


@pytest.fixture
def account(target_database: str) -> Iterator[tuple[str, str]]:
    with support.mariadb_account(
        "dbkeep_cred", on=f"`{target_database}`.*", password_prefix="Leak-"
    ) as account:
        yield account


async def add_source(database: Database, settings: Settings, name: str, url: str) -> Any:
    configure_encryption(settings)
    async with database.sessionmaker() as session:
        service = SourceService(
            session, settings=settings, engines=EngineRegistry(settings), actor=Actor.system("t")
        )
        return await service.create(SourceCreate(name=name, url=url))


def leaks(process: psutil.Process, secret: str) -> list[str]:
    found = [arg for arg in process.cmdline() if secret in arg]
    found += [f"{k}=..." for k, v in process.environ().items() if secret in v]
    return found


async def test_a_source_password_is_nowhere_while_a_worker_dumps_it(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    database: Database,
    worker_settings: Settings,
    target_database: str,
    account: tuple[str, str],
    table_lock: Callable[..., Any],
) -> None:
    user, password = account
    seed(target_database)
    url = (
        f"mysql://{user}:{password}@{support.MARIADB_HOST}:{support.MARIADB_PORT}/{target_database}"
    )
    source = await add_source(database, worker_settings, "shop", url)
    lock = table_lock()  # the dump waits on it: measured while it runs
    worker = workers.start()
    async with service_factory(queue) as service:
        backup = await service.create(source=source)

    async def dumping() -> list[psutil.Process]:
        return dump_processes(target_database)

    children = await wait_for(dumping, timeout=60, what="the dump to start")
    for child in children:
        assert leaks(child, password) == [], child.cmdline()
    assert leaks(psutil.Process(worker.proc.pid), password) == []
    lock.release()

    async def done() -> DatabaseBackup | None:
        row = await read_backup(backup.id)
        return row if row.status is BackupStatus.completed else None

    row = await wait_for(done, timeout=60, what="the backup to complete")
    assert row.source_id == source.id and row.target_database == target_database
    assert password not in "".join(w.log() for w in workers.started)

    # A wrong password fails with the server's reason, and says neither password.
    wrong = await add_source(
        database, worker_settings, "wrong", url.replace(password, "Nope-" + password)
    )
    async with service_factory(queue) as service:
        failed_id = (await service.create(source=wrong)).id

    async def failed() -> DatabaseBackup | None:
        row = await read_backup(failed_id)
        return row if row.status is BackupStatus.failed else None

    row = await wait_for(failed, timeout=60, what="the backup to fail")
    assert "access denied" in (row.error_message or "").lower()
    assert password not in (row.error_message or "")
    assert password not in "".join(w.log() for w in workers.started)
