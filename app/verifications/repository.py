"""All SQL of verifications. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupStatus, DatabaseBackup
from app.verifications.models import BackupVerification, VerificationStatus

UNFINISHED = (VerificationStatus.pending, VerificationStatus.running)


class VerificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, verification: BackupVerification) -> None:
        self.session.add(verification)

    async def get(self, verification_id: int) -> BackupVerification | None:
        return await self.session.get(BackupVerification, verification_id, populate_existing=True)

    async def of_source(self, source_id: int, *, limit: int = 50) -> Sequence[BackupVerification]:
        rows = await self.session.scalars(
            select(BackupVerification)
            .where(BackupVerification.source_id == source_id)
            .order_by(BackupVerification.id.desc())
            .limit(limit)
        )
        return rows.all()

    async def of_backup(self, backup_id: int, *, limit: int = 20) -> Sequence[BackupVerification]:
        rows = await self.session.scalars(
            select(BackupVerification)
            .where(BackupVerification.backup_id == backup_id)
            .order_by(BackupVerification.id.desc())
            .limit(limit)
        )
        return rows.all()

    async def unfinished_of_backup(self, backup_id: int) -> BackupVerification | None:
        return await self.session.scalar(
            select(BackupVerification)
            .where(
                BackupVerification.backup_id == backup_id,
                BackupVerification.status.in_(UNFINISHED),
            )
            .limit(1)
        )

    async def unfinished(self) -> Sequence[BackupVerification]:
        rows = await self.session.scalars(
            select(BackupVerification).where(BackupVerification.status.in_(UNFINISHED))
        )
        return rows.all()

    async def created_since(self, source_id: int, since: datetime) -> bool:
        found = await self.session.scalar(
            select(BackupVerification.id)
            .where(
                BackupVerification.source_id == source_id,
                BackupVerification.created_at >= since,
            )
            .limit(1)
        )
        return found is not None

    async def transition(
        self,
        verification_id: int,
        *,
        from_statuses: tuple[VerificationStatus, ...],
        values: dict[str, Any],
    ) -> bool:
        """Change the row only if it is in one of ``from_statuses``; whether it was."""
        result = await self.session.execute(
            update(BackupVerification)
            .where(
                BackupVerification.id == verification_id,
                BackupVerification.status.in_(from_statuses),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def newest_completed_backup(self, source_id: int) -> DatabaseBackup | None:
        return await self.session.scalar(
            select(DatabaseBackup)
            .where(
                DatabaseBackup.source_id == source_id,
                DatabaseBackup.status == BackupStatus.completed,
                DatabaseBackup.trashed_at.is_(None),
            )
            .order_by(DatabaseBackup.completed_at.desc(), DatabaseBackup.id.desc())
            .limit(1)
        )
