"""Queries on the notification tables: the services' only way to them. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.notifications.models import DeliveryStatus, NotificationChannel, NotificationDelivery


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- channels --------------------------------------------------------------------------

    def add(self, row: NotificationChannel | NotificationDelivery) -> None:
        self.session.add(row)

    async def channel(self, channel_id: int) -> NotificationChannel | None:
        return await self.session.get(NotificationChannel, channel_id)

    async def channel_by_name(self, name: str) -> NotificationChannel | None:
        return await self.session.scalar(
            select(NotificationChannel).where(NotificationChannel.name == name)
        )

    async def channels(self) -> list[NotificationChannel]:
        return list(
            await self.session.scalars(
                select(NotificationChannel).order_by(NotificationChannel.name)
            )
        )

    async def enabled_channels(self) -> list[NotificationChannel]:
        return list(
            await self.session.scalars(
                select(NotificationChannel)
                .where(NotificationChannel.enabled.is_(True))
                .order_by(NotificationChannel.id)
            )
        )

    async def delete_channel(self, channel: NotificationChannel) -> None:
        # Deliveries first: SQLite enforces the cascade only with its foreign keys pragma on.
        await self.session.execute(
            delete(NotificationDelivery)
            .where(NotificationDelivery.channel_id == channel.id)
            .execution_options(synchronize_session=False)
        )
        await self.session.delete(channel)

    # ---- deliveries ------------------------------------------------------------------------

    async def delivery(self, delivery_id: int) -> NotificationDelivery | None:
        return await self.session.get(NotificationDelivery, delivery_id, populate_existing=True)

    async def deliveries_page(
        self, channel_id: int, *, page: int, per_page: int
    ) -> tuple[list[NotificationDelivery], int]:
        """One page of a channel's deliveries, newest first, and how many there are."""
        total = await self.session.scalar(
            select(func.count())
            .select_from(NotificationDelivery)
            .where(NotificationDelivery.channel_id == channel_id)
        )
        rows = await self.session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.channel_id == channel_id)
            .order_by(NotificationDelivery.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        return list(rows), int(total or 0)

    async def due_ids(self, now: datetime, *, limit: int) -> list[int]:
        """Pending deliveries whose next try is due, oldest first."""
        return list(
            await self.session.scalars(
                select(NotificationDelivery.id)
                .where(
                    NotificationDelivery.status == DeliveryStatus.pending.value,
                    NotificationDelivery.next_attempt_at <= now,
                )
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                .limit(limit)
            )
        )

    async def claim(self, delivery_id: int, *, now: datetime, lease_until: datetime) -> bool:
        """Take a due delivery for one attempt: its next try moves to ``lease_until``, so no
        other sweep takes it meanwhile, and a worker that dies mid-send leaves it due again."""
        result = await self.session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id,
                NotificationDelivery.status == DeliveryStatus.pending.value,
                NotificationDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    async def prune(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` delivered or failed deliveries made before ``before``."""
        ids = list(
            await self.session.scalars(
                select(NotificationDelivery.id)
                .where(
                    NotificationDelivery.status != DeliveryStatus.pending.value,
                    NotificationDelivery.created_at < before,
                )
                .order_by(NotificationDelivery.id)
                .limit(limit)
            )
        )
        if ids:
            await self.session.execute(
                delete(NotificationDelivery)
                .where(NotificationDelivery.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
        return len(ids)

    async def record(self, delivery_id: int, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
