"""Restores into another database name or another source, run by ``dbkeep worker``: the copy is
the backup's database, the database the backup came from is never touched, and the safety backup
is the target's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.backups.models import BackupStatus, BackupTrigger, RestoreStatus
from app.config import Settings
from app.db import Database
from app.errors import Conflict
from app.jobs.queue import ArqJobQueue
from app.kit.secret import Secret
from app.sources.models import Source
from tests import support
from tests.worker.conftest import WorkerFactory, seed
from tests.worker.test_worker_restores import (
    ReadBackup,
    ReadRestore,
    backed_up,
    broken_copy_of,
    change_target,
    restore_finished,
)


def database_exists(name: str) -> bool:
    return bool(
        support.admin_sql(
            f"SELECT schema_name FROM information_schema.SCHEMATA WHERE schema_name = '{name}'"
        ).strip()
    )


@pytest.fixture
def scratch_names() -> Iterator[Callable[[], str]]:
    """Unique database names that need not exist; whatever the test made is dropped after."""
    made: list[str] = []

    def make() -> str:
        made.append(support.unique_name("dbkeep_copy"))
        return made[-1]

    yield make
    for name in made:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def add_source(database: Database, mariadb_password: str) -> Callable[..., Any]:
    """Insert a source row (its URL encrypted, as the API stores it) on the test server."""

    async def add(name: str, databases: list[str], url_database: str = "") -> Source:
        source = Source(
            name=name,
            engine="mysql",
            url=Secret(support.target_url(url_database, password=mariadb_password)),
            databases=databases,
            exclude=[],
            schedule=None,
            timezone="UTC",
            retention={},
            enabled=True,
        )
        async with database.sessionmaker() as session:
            session.add(source)
            await session.commit()
        return source

    return add


async def test_a_restore_into_another_database_name_makes_a_copy_and_leaves_the_source_alone(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    scratch_names: Callable[[], str],
) -> None:
    seed(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    change_target(target_database)  # the source moved on since: the copy is the backup's state
    source_now = support.table_checksums(target_database)
    copy = scratch_names()

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id, database=copy)
    assert operation.target_database == copy
    assert operation.target_source_id == backup.source_id
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert support.table_checksums(target_database) == source_now
    # The copy is the backup: the rows as they were, not the source's later changes.
    copied = support.table_checksums(copy)
    assert copied and copied != source_now and "added_later" not in copied
    # It did not exist: nothing to back up first, and the restore did not fail for it.
    assert done.safety_backup_id is None

    # Restoring into it again: it exists now, so its safety backup is taken, of the copy.
    async with service_factory(queue) as service:
        again = await service.request_restore(backup.id, database=copy)
    second = await restore_finished(read_restore, again.id)
    assert second.status is RestoreStatus.completed, second.error_message
    safety = await read_backup(second.safety_backup_id or 0)
    assert safety.status is BackupStatus.completed and safety.trigger is BackupTrigger.pre_restore
    assert safety.target_database == copy
    assert support.table_checksums(copy) == copied
    assert support.table_checksums(target_database) == source_now


async def test_a_restore_into_another_source_backs_up_that_target_and_loads_it_there(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    scratch_names: Callable[[], str],
    add_source: Callable[..., Any],
) -> None:
    seed(target_database)
    other_db = scratch_names()
    support.admin_sql(f"CREATE DATABASE `{other_db}`")
    support.admin_sql(
        "CREATE TABLE old (id INT PRIMARY KEY); INSERT INTO old VALUES (7);", database=other_db
    )
    other = await add_source("staging", [other_db], other_db)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    source_before = support.table_checksums(target_database)

    async with service_factory(queue) as service:
        # No database named: the other source's only one.
        operation = await service.request_restore(backup.id, target_source_id=other.id)
    assert (operation.target_source_id, operation.target_database) == (other.id, other_db)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert support.table_checksums(other_db) == source_before  # "old" is gone: exactly the backup
    assert support.table_checksums(target_database) == source_before
    safety = await read_backup(done.safety_backup_id or 0)
    assert safety.status is BackupStatus.completed and safety.trigger is BackupTrigger.pre_restore
    # The safety backup is the target's: that source's database, named after it.
    assert (safety.source_id, safety.target_database) == (other.id, other_db)
    assert f"_staging_{other_db}_" in safety.filename


async def test_a_broken_load_into_a_new_database_drops_what_it_created(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
    scratch_names: Callable[[], str],
) -> None:
    seed(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    broken = await broken_copy_of(database, worker_settings, good)
    before = support.table_checksums(target_database)
    copy = scratch_names()

    async with service_factory(queue) as service:
        operation = await service.request_restore(broken.id, database=copy)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert "did not exist before" in (done.error_message or "")
    assert not database_exists(copy)
    assert support.table_checksums(target_database) == before


async def test_a_restore_into_a_database_of_another_source_excludes_a_backup_of_it(
    service_factory: Callable[..., Any],
    target_database: str,
    scratch_names: Callable[[], str],
    add_source: Callable[..., Any],
    database: Database,
    worker_settings: Settings,
) -> None:
    seed(target_database)
    other_db = scratch_names()
    support.admin_sql(f"CREATE DATABASE `{other_db}`")
    other = await add_source("staging", [other_db], other_db)
    own = await add_source("shop", [target_database], target_database)
    async with service_factory(None) as service:  # no queue: the rows stay pending
        backup = await service.create(source=own, enqueue=False)
    # Completed without running it: only the request-time rules are under test here.
    async with database.sessionmaker() as session:
        row = await session.get(type(backup), backup.id)
        assert row is not None
        row.status = BackupStatus.completed
        await session.commit()
    path = worker_settings.backup_dir / backup.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")

    async with service_factory(None) as service:
        await service.request_restore(backup.id, target_source_id=other.id)
    async with service_factory(None) as service:
        with pytest.raises(Conflict, match=other_db):
            await service.create(source=other)
        # Its own source's database is not the target: backing it up is fine.
        assert (await service.create(source=own, enqueue=False)).status is BackupStatus.pending
