"""The worker's every-minute health job: evaluate every source, store its state, and emit
``health.changed`` for each source whose status changed (app/sources/health_service.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arq.cron import CronJob, cron
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.notifications.service import notify
from app.sources.health_service import HealthTransition, refresh_source_health
from app.sources.models import Source

CRON_SOURCE_HEALTH = "cron:source-health"
# Half-way through each minute: away from the schedule's job at second 0.
HEALTH_SECOND = 30
HEALTH_TIMEOUT_S = 120


async def scheduled_source_health(ctx: dict[str, Any]) -> str:
    state = ctx["state"]
    async with state.runtime.database.sessionmaker() as session:
        transitions = await refresh_source_health(
            session, backup_dir=state.settings.backup_dir, now=utcnow()
        )
        await notify_health_changes(session, transitions)
    changed = ", ".join(f"{t.source_name} {t.previous}->{t.current}" for t in transitions)
    return f"health changed: {changed}" if changed else "health unchanged"


async def notify_health_changes(
    session: AsyncSession, transitions: Sequence[HealthTransition]
) -> None:
    """Queue one ``health.changed`` notification per source whose status changed."""
    for transition in transitions:
        source = await session.get(Source, transition.source_id)
        await notify(
            session,
            transition.event,
            source=source,
            health=transition.payload(),
            occurred_at=transition.changed_at,
        )
    await session.commit()


def health_cron_jobs() -> list[CronJob]:
    """The every-minute health job (it runs whether or not the backup schedule is on)."""
    return [
        cron(
            scheduled_source_health,
            name=CRON_SOURCE_HEALTH,
            minute=set(range(60)),
            second=HEALTH_SECOND,
            microsecond=0,
            max_tries=1,  # a minute missed is the next minute's
            timeout=HEALTH_TIMEOUT_S,
            keep_result=0,
        )
    ]
