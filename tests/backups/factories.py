"""Backup rows (and their files) made directly, for tests that need many or odd ones."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.db import Database, utcnow
from app.storage.base import BackupStorage


async def make_backup(
    database: Database,
    storage: BackupStorage | None = None,
    *,
    status: BackupStatus = BackupStatus.completed,
    backup_date: datetime | None = None,
    filename: str | None = None,
    size: int = 100,
    status_before_trash: BackupStatus | None = None,
    trashed_at: datetime | None = None,
    target_database: str = "shop",
) -> DatabaseBackup:
    """Insert a backup row; with ``storage``, also write a file of ``size`` bytes for it."""
    uid = secrets.token_hex(16)
    name = filename or f"backup_{target_database}_{uid[:8]}.sql"
    content = secrets.token_bytes(size)
    has_file = storage is not None and (
        status is BackupStatus.completed or status_before_trash is BackupStatus.completed
    )
    if has_file:
        assert storage is not None
        writer = await storage.open_writer(name)
        await writer.write(content)
        await writer.commit()
    backup = DatabaseBackup(
        filename=name,
        unique_identifier=uid,
        path=name,
        file_size=size if has_file or storage is None else 0,
        status=status,
        backup_date=backup_date or utcnow(),
        completed_at=backup_date or utcnow(),
        compression="none",
        checksum_sha256=hashlib.sha256(content).hexdigest() if has_file else None,
        trigger=BackupTrigger.manual,
        target_database=target_database,
        status_before_trash=status_before_trash,
        trashed_at=trashed_at,
    )
    async with database.sessionmaker() as session:
        session.add(backup)
        await session.commit()
    return backup
