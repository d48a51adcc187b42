"""All SQL for reading the audit log. Never commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        *,
        page: int,
        per_page: int,
        action: str | None = None,
        user_id: int | None = None,
    ) -> tuple[list[AuditEvent], int]:
        """One page of events, newest first, and how many match in all."""
        query = select(AuditEvent)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if user_id is not None:
            query = query.where(AuditEvent.user_id == user_id)
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await self.session.scalars(
            query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return list(rows), int(total or 0)
