"""A backup row run to the end against the real MariaDB and dump tools."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from app.audit.service import Actor
from app.backups.models import BackupStatus, IntegrityStatus
from app.backups.runner import BackupRunner, TransientBackupFailure
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.engines.base import TargetSpec
from app.errors import Conflict
from app.storage import get_storage
from tests import support


def seed(database: str, rows: int = 200) -> None:
    support.admin_sql(
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), note TEXT);"
        "INSERT INTO items (name, note) SELECT CONCAT('item-', seq), REPEAT('x', 50) "
        f"FROM seq_1_to_{rows};",
        database=database,
    )


@pytest.fixture
async def runner(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


async def create_pending(database: Database, settings: Settings) -> int:
    async with database.sessionmaker() as session:
        service = BackupService(
            session,
            settings=settings,
            storage=get_storage(settings),
            queue=None,
            actor=Actor.system("test"),
        )
        return (await service.create(enqueue=False)).id


@pytest.fixture
async def scratch_database() -> AsyncIterator[str]:
    name = support.unique_name("dbkeep_scratch")
    support.admin_sql(f"CREATE DATABASE `{name}`")
    yield name
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


async def test_a_backup_completes_with_size_checksum_and_loads_back(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    target_database: str,
    scratch_database: str,
) -> None:
    seed(target_database)
    backup_id = await create_pending(database, settings)
    seen: list[int] = []

    async def progress(done: int) -> None:
        seen.append(done)

    backup = await runner.run_backup(backup_id, on_progress=progress)
    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.file_size > 0 and backup.raw_size and backup.raw_size > backup.file_size
    assert backup.duration_ms is not None and backup.completed_at is not None
    assert backup.attempts == 1
    assert backup.integrity_status is IntegrityStatus.ok
    stored = (settings.backup_dir / backup.path).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256
    assert len(stored) == backup.file_size

    # Running the same job again (arq may) changes nothing.
    again = await runner.run_backup(backup_id)
    assert again.status is BackupStatus.completed and again.attempts == 1

    target = TargetSpec.from_url(settings.target_url.get_secret_value())  # type: ignore[union-attr]
    await runner.load(backup_id, target=target.with_database(scratch_database))
    assert support.table_checksums(scratch_database) == support.table_checksums(target_database)


async def test_a_tampered_file_is_refused_and_flagged(
    runner: BackupRunner, database: Database, settings: Settings, target_database: str
) -> None:
    seed(target_database)
    backup = await runner.run_backup(await create_pending(database, settings))
    path = settings.backup_dir / backup.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    target = TargetSpec.from_url(settings.target_url.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="checksum"):
        await runner.load(backup.id, target=target)
    assert await runner.verify(backup.id) is IntegrityStatus.corrupt
    path.write_bytes(bytes(data[:-10]))
    assert await runner.verify(backup.id) is IntegrityStatus.corrupt
    path.unlink()
    assert await runner.verify(backup.id) is IntegrityStatus.missing


async def test_wrong_password_fails_at_once_with_the_servers_reason(
    database: Database, settings: Settings, target_database: str
) -> None:
    bad = settings.model_copy(
        update={
            "target_url": SecretStr(support.target_url(target_database, password="wrong-pw-123"))
        }
    )
    runner = BackupRunner(
        database=database, settings=bad, engine=get_engine(bad), storage=get_storage(bad)
    )
    backup = await runner.run_backup(await create_pending(database, bad), max_attempts=3)
    assert backup.status is BackupStatus.failed
    assert "access denied" in (backup.error_message or "").lower()
    assert "wrong-pw-123" not in (backup.error_message or "")
    assert backup.attempts == 1
    assert not any(p.is_file() for p in settings.backup_dir.rglob("*"))


async def test_unreachable_server_is_retried_then_fails(
    database: Database, settings: Settings, target_database: str
) -> None:
    closed = settings.model_copy(
        update={
            "target_url": SecretStr(f"mysql://{support.TEST_USER}:x@127.0.0.1:1/{target_database}")
        }
    )
    runner = BackupRunner(
        database=database, settings=closed, engine=get_engine(closed), storage=get_storage(closed)
    )
    backup_id = await create_pending(database, closed)
    with pytest.raises(TransientBackupFailure):
        await runner.run_backup(backup_id, attempt=1, max_attempts=2)
    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=closed, storage=get_storage(closed), queue=None, actor=Actor.system()
        )
        assert (await service.get(backup_id)).status is BackupStatus.pending
    final = await runner.run_backup(backup_id, attempt=2, max_attempts=2)
    assert final.status is BackupStatus.failed
    assert "connect" in (final.error_message or "").lower()
    assert final.attempts == 2


async def test_a_user_can_cancel_a_running_backup(
    runner: BackupRunner, database: Database, settings: Settings, target_database: str
) -> None:
    # Hold a write lock so the dump blocks; then cancel it as a user would.
    seed(target_database, rows=10)
    backup_id = await create_pending(database, settings)
    locker = await asyncio.create_subprocess_exec(
        "mariadb",
        "--protocol=socket",
        f"--socket={support.MARIADB_SOCKET}",
        "-uroot",
        target_database,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert locker.stdin is not None
    locker.stdin.write(b"LOCK TABLES items WRITE; SELECT SLEEP(60);\n")
    await locker.stdin.drain()
    task = asyncio.create_task(runner.run_backup(backup_id))
    try:
        async with database.sessionmaker() as session:
            service = BackupService(
                session,
                settings=settings,
                storage=get_storage(settings),
                queue=None,
                actor=Actor.system(),
            )
            for _ in range(100):
                # A new transaction each time: MariaDB's repeatable read keeps one snapshot.
                await session.rollback()
                if (await service.get(backup_id)).status is BackupStatus.in_progress:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the backup never started")
            await service.cancel(backup_id)
        backup = await asyncio.wait_for(task, timeout=30)
    finally:
        locker.kill()
        await locker.wait()
    assert backup.status is BackupStatus.failed
    assert backup.error_message == "Cancelled by system."
    assert backup.cancelled
    assert not any(p.is_file() for p in settings.backup_dir.rglob("*"))
