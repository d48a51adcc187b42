"""The reconciler's queries: unfinished rows, and completed backups to check for their file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import (
    BackupStatus,
    DatabaseBackup,
    RestoreOperation,
    RestoreStatus,
)


class ReconcileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def backups_in(self, statuses: Sequence[BackupStatus]) -> list[DatabaseBackup]:
        """Backups in ``statuses``, oldest first (there are few: only unfinished ones are asked)."""
        rows = await self.session.scalars(
            select(DatabaseBackup)
            .where(DatabaseBackup.status.in_(statuses))
            .order_by(DatabaseBackup.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def restores_in(self, statuses: Sequence[RestoreStatus]) -> list[RestoreOperation]:
        rows = await self.session.scalars(
            select(RestoreOperation)
            .where(RestoreOperation.status.in_(statuses))
            .order_by(RestoreOperation.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def completed_after(self, after_id: int, *, limit: int) -> list[tuple[int, str]]:
        """``(id, storage key)`` of completed backups with an id above ``after_id``, in id order."""
        rows = await self.session.execute(
            select(DatabaseBackup.id, DatabaseBackup.path)
            .where(DatabaseBackup.status == BackupStatus.completed, DatabaseBackup.id > after_id)
            .order_by(DatabaseBackup.id)
            .limit(limit)
        )
        return [(int(row_id), str(path)) for row_id, path in rows.all()]

    async def backup_durations(self) -> list[tuple[str, int, int]]:
        """``(status, count, total duration in ms)`` of finished backups, by status; those a
        user cancelled as "cancelled" (not failures)."""
        status = _outcome(DatabaseBackup)
        rows = await self.session.execute(
            select(
                status,
                func.count(),
                func.coalesce(func.sum(DatabaseBackup.duration_ms), 0),
            )
            .where(DatabaseBackup.status.in_((BackupStatus.completed, BackupStatus.failed)))
            .group_by(status)
        )
        return [(str(status), int(count), int(total or 0)) for status, count, total in rows.all()]

    async def restore_durations(self) -> list[tuple[str, int, int]]:
        """``(status, count, total duration in ms)`` of restore operations, by status; those a
        user cancelled as "cancelled"."""
        status = _outcome(RestoreOperation)
        rows = await self.session.execute(
            select(
                status,
                func.count(),
                func.coalesce(func.sum(RestoreOperation.duration_ms), 0),
            ).group_by(status)
        )
        return [(str(status), int(count), int(total or 0)) for status, count, total in rows.all()]


def _outcome(model: type[DatabaseBackup] | type[RestoreOperation]) -> Any:
    """The row's status, or "cancelled" when a user's cancel ended it (its status is failed or
    rolled back, as the contract says; a cancel is not counted as either)."""
    return case(
        (model.cancelled_at.is_not(None), literal("cancelled", String)),
        else_=model.status,
    ).label("outcome")
