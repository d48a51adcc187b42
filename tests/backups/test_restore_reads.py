"""A restore reads its backup's file once: the load, the object scan and the SHA-256 check all
come from that one read (from S3, one download)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.audit.service import Actor
from app.backups.models import IntegrityStatus, RestoreStatus
from app.backups.restores import RestoreRunner
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.storage.local import LocalStorage
from tests import support
from tests.backups.test_runner import create_pending, seed


class CountingStorage(LocalStorage):
    """Local storage that counts the bytes read from each key."""

    def __init__(self, root: object) -> None:
        super().__init__(root)  # type: ignore[arg-type]
        self.read_bytes: dict[str, int] = {}

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        async for chunk in super().read(key, chunk_size=chunk_size):
            self.read_bytes[key] = self.read_bytes.get(key, 0) + len(chunk)
            yield chunk


async def test_a_restore_reads_the_backup_file_once_and_checks_it_on_the_way(
    database: Database, settings: Settings, target_database: str
) -> None:
    seed(target_database, rows=20_000)
    storage = CountingStorage(settings.backup_dir)
    engine = get_engine(settings)
    backups = BackupRunner(database=database, settings=settings, engine=engine, storage=storage)
    backup = await backups.run_backup(await create_pending(database, settings))
    support.admin_sql("DELETE FROM items WHERE id > 100", database=target_database)
    storage.read_bytes.clear()

    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=storage, queue=None, actor=Actor.system("test")
        )
        operation = await service.request_restore(backup.id)
    runner = RestoreRunner(
        database=database, settings=settings, engine=engine, storage=storage, backup_runner=backups
    )
    done = await runner.run_restore(operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert storage.read_bytes == {backup.path: backup.file_size}  # once, whole, nothing else
    assert support.admin_sql("SELECT COUNT(*) FROM items", database=target_database).strip() == (
        "20000"
    )
    reread = await backups._reload(backup.id)
    assert reread.integrity_status is IntegrityStatus.ok and reread.verified_at is not None
