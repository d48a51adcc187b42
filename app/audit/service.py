"""Recording audit events inside the caller's transaction, and reading the log back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (with the address they came from), the CLI, or the scheduler."""

    user_id: int | None
    name: str
    client_ip: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(user_id=None, name=name)


def record_event(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: int | str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the change it describes."""
    event = AuditEvent(
        user_id=actor.user_id,
        actor=actor.name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        client_ip=actor.client_ip,
        details=details,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AuditEventPage:
    events: list[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def last_page(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


class AuditService:
    """Reading the audit log (events are written by ``record_event``, with their change)."""

    def __init__(self, session: AsyncSession) -> None:
        self.events = AuditRepository(session)

    async def list_events(
        self, *, page: int, per_page: int, action: str | None, user_id: int | None
    ) -> AuditEventPage:
        """One page of events, newest first, with how many match in all."""
        events, total = await self.events.page(
            page=page, per_page=per_page, action=action, user_id=user_id
        )
        return AuditEventPage(events=events, total=total, page=page, per_page=per_page)
