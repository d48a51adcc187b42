"""The delivery job: send every notification that is due. arq runs it as a cron job every
DBKEEP_NOTIFY_SWEEP_SECONDS (and once at start-up); the rows hold the state, so a restarted
worker picks up where the last one stopped and a delivery is never lost with the queue."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob, cron

from app.config import Settings
from app.jobs.tasks import WorkerState
from app.notifications.delivery import deliver_due, prune_deliveries

DELIVER_NOTIFICATIONS = "notifications:deliver"


async def deliver_notifications(ctx: dict[str, Any]) -> str:
    """Send the due deliveries, one attempt each; say how many went and how many wait."""
    state = ctx["state"]
    assert isinstance(state, WorkerState)
    sessionmaker = state.runtime.database.sessionmaker
    results = await deliver_due(sessionmaker, state.settings)
    await prune_deliveries(sessionmaker, state.settings)
    sent = sum(1 for result in results if result.ok)
    return f"{sent} delivered, {len(results) - sent} not yet"


def notification_cron(settings: Settings) -> CronJob:
    every = settings.notify_sweep_seconds
    return cron(
        deliver_notifications,
        name=DELIVER_NOTIFICATIONS,
        second=set(range(0, 60, every)),
        microsecond=0,
        run_at_startup=True,
        max_tries=1,  # the next sweep is the retry
        timeout=600,  # rows still claimed when it stops are due again after their lease
        keep_result=0,
    )
