"""Queries on ``sources``: the service's only way to the table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupStatus, DatabaseBackup, RestoreOperation, RestoreStatus
from app.kit.secret import Secret
from app.sources.models import DEFAULT_SOURCE, Source


class SourceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, source: Source) -> None:
        self.session.add(source)

    async def get(self, source_id: int) -> Source | None:
        return await self.session.get(Source, source_id)

    async def by_name(self, name: str) -> Source | None:
        return await self.session.scalar(select(Source).where(Source.name == name))

    async def default(self) -> Source | None:
        return await self.by_name(DEFAULT_SOURCE)

    async def all(self) -> list[Source]:
        return list(await self.session.scalars(select(Source).order_by(Source.name)))

    async def scheduled_ids(self) -> list[int]:
        """The sources the schedule runs: enabled, with a schedule."""
        return list(
            await self.session.scalars(
                select(Source.id)
                .where(Source.enabled.is_(True), Source.schedule.is_not(None))
                .order_by(Source.id)
            )
        )

    async def rewrite_url(self, name: str, url: Secret) -> None:
        """Store ``url`` (encrypted by the column) without reading the row's current one."""
        await self.session.execute(
            update(Source)
            .where(Source.name == name)
            .values(url=url)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, source: Source) -> None:
        # Detach the kept backups by an UPDATE rather than the foreign key's SET NULL: MariaDB
        # runs no triggers for a cascade, and the lists' version (migrations 0005, 0011) must
        # change, or a total kept for this source would outlive it.
        await self.session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.source_id == source.id)
            .values(source_id=None)
            .execution_options(synchronize_session=False)
        )
        await self.session.delete(source)

    async def last_backups(self) -> dict[int, tuple[datetime, str]]:
        """Each source's newest backup (not trashed): its date and status."""
        newest = (
            select(DatabaseBackup.source_id, func.max(DatabaseBackup.id).label("id"))
            .where(
                DatabaseBackup.source_id.is_not(None),
                DatabaseBackup.status != BackupStatus.in_trash,
            )
            .group_by(DatabaseBackup.source_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(
                DatabaseBackup.source_id, DatabaseBackup.backup_date, DatabaseBackup.status
            ).join(newest, DatabaseBackup.id == newest.c.id)
        )
        return {row[0]: (row[1], row[2].value) for row in rows if row[0] is not None}

    async def busy_backups(self, source_id: int) -> int:
        """Backups of this source that are pending or running."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(DatabaseBackup)
            .where(
                DatabaseBackup.source_id == source_id,
                DatabaseBackup.status.in_((BackupStatus.pending, BackupStatus.in_progress)),
            )
        )
        return int(count or 0)

    async def busy_restores(self, source_id: int) -> int:
        """Restores into this source that are pending or running."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(RestoreOperation)
            .where(
                RestoreOperation.target_source_id == source_id,
                RestoreOperation.status.in_((RestoreStatus.pending, RestoreStatus.in_progress)),
            )
        )
        return int(count or 0)

    async def backup_ids(self, source_id: int) -> list[int]:
        return list(
            await self.session.scalars(
                select(DatabaseBackup.id).where(DatabaseBackup.source_id == source_id)
            )
        )

    async def adopt_unattached_backups(self, source_id: int) -> int:
        """Attach every backup with no source to this one (the default, when it is made)."""
        result = await self.session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.source_id.is_(None))
            .values(source_id=source_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
