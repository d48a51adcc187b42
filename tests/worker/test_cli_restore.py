"""``dbkeep backup:restore`` run in the foreground and queued for a worker, as a person types it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from app.backups.models import BackupTrigger, DatabaseBackup, RestoreOperation, RestoreStatus
from app.db import Database
from app.kit.secret import Secret
from app.sources.models import Source
from tests import support
from tests.worker.conftest import DBKEEP, WorkerFactory, seed, wait_for

ReadRestore = Callable[[int], Awaitable[RestoreOperation]]


def dbkeep(workers: WorkerFactory, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DBKEEP), *args],
        env=workers.env(),
        cwd=workers.tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def safety_backups(database: Database) -> int:
    async with database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(DatabaseBackup)
            .where(DatabaseBackup.trigger == BackupTrigger.pre_restore)
        )
    return int(count or 0)


async def test_restore_in_the_foreground_and_queued(
    workers: WorkerFactory,
    database: Database,
    read_restore: ReadRestore,
    target_database: str,
) -> None:
    seed(target_database)
    original = support.table_checksums(target_database)
    made = dbkeep(workers, "backup:database")
    assert made.returncode == 0, made.stderr
    backup_id = re.search(r"Backup (\d+) completed", made.stdout)
    assert backup_id is not None

    support.admin_sql("DELETE FROM items WHERE id < 50", database=target_database)
    restored = dbkeep(workers, "backup:restore", backup_id[1], "--yes")
    assert restored.returncode == 0, restored.stderr
    assert re.search(rf"Restore \d+ of backup {backup_id[1]} completed", restored.stdout)
    assert support.table_checksums(target_database) == original
    assert await safety_backups(database) == 1

    support.admin_sql("DELETE FROM tags", database=target_database)
    workers.start()
    queued = dbkeep(
        workers, "backup:restore", backup_id[1], "--yes", "--queue", "--no-safety-backup"
    )
    assert queued.returncode == 0, queued.stderr
    restore_id = re.search(r"Restore (\d+) of backup \d+ queued", queued.stdout)
    assert restore_id is not None

    async def completed() -> RestoreOperation | None:
        row = await read_restore(int(restore_id[1]))
        return row if row.status is RestoreStatus.completed else None

    done = await wait_for(completed, what="the queued restore")
    assert not done.use_safety_backup and done.safety_backup_id is None
    assert support.table_checksums(target_database) == original
    assert await safety_backups(database) == 1  # none taken for the second one


def object_names(database: str) -> set[str]:
    out = support.admin_sql(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}' "
        f"UNION ALL SELECT routine_name FROM information_schema.routines "
        f"WHERE routine_schema = '{database}'"
    )
    return set(out.split())


async def test_a_cli_restore_leaves_exactly_the_backup_unless_asked_to_keep_the_rest(
    workers: WorkerFactory, target_database: str
) -> None:
    seed(target_database)
    support.admin_sql(
        f"ALTER DATABASE `{target_database}` COLLATE utf8mb4_unicode_520_ci", database=None
    )
    made = dbkeep(workers, "backup:database")
    assert made.returncode == 0, made.stderr
    backup_id = re.search(r"Backup (\d+) completed", made.stdout)
    assert backup_id is not None
    backed = object_names(target_database)
    later = "CREATE VIEW later_view AS SELECT 1 AS one; CREATE PROCEDURE later_proc() SELECT 1;"

    support.admin_sql(later, database=target_database)
    kept = dbkeep(workers, "backup:restore", backup_id[1], "--yes", "--keep-existing-objects")
    assert kept.returncode == 0, kept.stderr
    assert object_names(target_database) == backed | {"later_view", "later_proc"}

    exact = dbkeep(workers, "backup:restore", backup_id[1], "--yes")
    assert exact.returncode == 0, exact.stderr
    assert object_names(target_database) == backed
    collation = support.admin_sql(
        "SELECT default_collation_name FROM information_schema.schemata "
        f"WHERE schema_name = '{target_database}'"
    )
    assert collation.strip() == "utf8mb4_unicode_520_ci"


async def test_a_cli_restore_into_another_source_and_database(
    workers: WorkerFactory, database: Database, target_database: str, mariadb_password: str
) -> None:
    seed(target_database)
    made = dbkeep(workers, "backup:database")
    assert made.returncode == 0, made.stderr
    backup_id = re.search(r"Backup (\d+) completed", made.stdout)
    assert backup_id is not None
    original = support.table_checksums(target_database)
    async with database.sessionmaker() as session:
        session.add(
            Source(
                name="staging",
                engine="mysql",
                url=Secret(support.target_url("", password=mariadb_password)),
                databases=["*"],
                exclude=[],
                retention={},
            )
        )
        await session.commit()
    copy = support.unique_name("dbkeep_copy")
    try:
        unknown = dbkeep(workers, "backup:restore", backup_id[1], "--yes", "--into", "nope")
        assert unknown.returncode == 1 and "'nope'" in unknown.stderr
        # A source of every database: which one is the target must be said.
        unnamed = dbkeep(workers, "backup:restore", backup_id[1], "--yes", "--into", "staging")
        assert unnamed.returncode == 1 and "name the database" in unnamed.stderr

        restored = dbkeep(
            workers, "backup:restore", backup_id[1], "--yes", "--into", "staging",
            "--database", copy,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        assert support.table_checksums(copy) == original
        assert support.table_checksums(target_database) == original
        async with database.sessionmaker() as session:
            row = await session.scalar(select(RestoreOperation))
        assert row is not None and row.target_database == copy
    finally:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{copy}`")
