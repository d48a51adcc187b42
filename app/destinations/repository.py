"""Queries on ``destinations`` and ``backup_copies``: the services' only way to the tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.destinations.models import BOOTSTRAP_DESTINATION, BackupCopy, CopyStatus, Destination


class DestinationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Destination | BackupCopy) -> None:
        self.session.add(row)

    async def get(self, destination_id: int) -> Destination | None:
        return await self.session.get(Destination, destination_id)

    async def by_name(self, name: str) -> Destination | None:
        return await self.session.scalar(select(Destination).where(Destination.name == name))

    async def bootstrap(self) -> Destination | None:
        return await self.by_name(BOOTSTRAP_DESTINATION)

    async def all(self) -> list[Destination]:
        return list(await self.session.scalars(select(Destination).order_by(Destination.name)))

    async def many(self, ids: Sequence[int]) -> dict[int, Destination]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(Destination).where(Destination.id.in_(ids)))
        return {row.id: row for row in rows}

    async def stored_totals(self) -> dict[int, tuple[int, int]]:
        """Per destination: (objects, bytes) of its stored copies."""
        rows = await self.session.execute(
            select(
                BackupCopy.destination_id,
                func.count(BackupCopy.id),
                func.coalesce(func.sum(BackupCopy.size), 0),
            )
            .where(BackupCopy.status == CopyStatus.stored.value)
            .group_by(BackupCopy.destination_id)
        )
        return {int(d or 0): (int(n), int(b or 0)) for d, n, b in rows.all()}

    async def live_copies_on(self, destination_id: int) -> int:
        """Copies on the destination that are not ``deleted`` (they keep it from going)."""
        count = await self.session.scalar(
            select(func.count(BackupCopy.id)).where(
                BackupCopy.destination_id == destination_id,
                BackupCopy.status != CopyStatus.deleted.value,
            )
        )
        return int(count or 0)

    async def delete(self, destination: Destination) -> None:
        # Copies left are all "deleted": their rows go with it.
        for copy in await self.session.scalars(
            select(BackupCopy).where(BackupCopy.destination_id == destination.id)
        ):
            await self.session.delete(copy)
        await self.session.flush()
        await self.session.delete(destination)

    # ---- copies ----------------------------------------------------------------------------

    async def copies_of(self, backup_id: int) -> list[BackupCopy]:
        return list(
            await self.session.scalars(
                select(BackupCopy)
                .where(BackupCopy.backup_id == backup_id)
                .order_by(BackupCopy.position, BackupCopy.id)
            )
        )

    async def copies_of_many(self, backup_ids: Sequence[int]) -> dict[int, list[BackupCopy]]:
        result: dict[int, list[BackupCopy]] = {backup_id: [] for backup_id in backup_ids}
        if not backup_ids:
            return result
        rows = await self.session.scalars(
            select(BackupCopy)
            .where(BackupCopy.backup_id.in_(backup_ids))
            .order_by(BackupCopy.backup_id, BackupCopy.position, BackupCopy.id)
        )
        for row in rows:
            result[row.backup_id].append(row)
        return result

    async def copy(self, backup_id: int, destination_id: int) -> BackupCopy | None:
        return await self.session.scalar(
            select(BackupCopy).where(
                BackupCopy.backup_id == backup_id, BackupCopy.destination_id == destination_id
            )
        )

    async def stored_copies(self, *, limit: int, after_id: int = 0) -> list[BackupCopy]:
        return list(
            await self.session.scalars(
                select(BackupCopy)
                .where(BackupCopy.status == CopyStatus.stored.value, BackupCopy.id > after_id)
                .order_by(BackupCopy.id)
                .limit(limit)
            )
        )
