"""The cron table: every minute, the sources whose schedule fired; auto-trash and trash cleanup
each day at their configured times.

arq's cron dedupes a minute only while the job key exists, gives cron jobs one try and never
catches up a time that passed while no worker was up. So the every-minute job looks at each
source's own schedule (``app.sources.cron``, in the source's time zone) for the slots since its
last look, and a slot is made unique by the metadata store: each scheduled backup row carries
``schedule_slot`` = ``"<source id>:<database>:<slot, UTC>Z"`` (UNIQUE), so however many workers
run the schedule, the second insert fails and that worker knows another one has it.
Retention is idempotent, so running it twice needs no such guard.

The ``default`` source (DBKEEP_TARGET_URL) gets the schedule ``M H * * *`` of DBKEEP_BACKUP_AT
in DBKEEP_SCHEDULE_TIMEZONE when it is made: its backups run through the same every-minute job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arq.cron import CronJob, cron

from app.config import Settings
from app.sources.cron import slots_between

CRON_SOURCES = "cron:sources"
CRON_AUTO_TRASH = "cron:auto_trash"
CRON_CLEANUP_TRASH = "cron:cleanup_trash"

CronCoroutine = Callable[..., Awaitable[Any]]
# arq's limit for each cron job (they only record rows and queue them, or run retention).
CRON_TIMEOUT_S = 300
# The every-minute job's own period: with catch-up off, a look still reaches back this far.
TICK = timedelta(minutes=1)


def schedule_timezone(settings: Settings) -> ZoneInfo:
    """The zone the HH:MM times are read in; a clear error for an unknown name."""
    try:
        return ZoneInfo(settings.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"DBKEEP_SCHEDULE_TIMEZONE={settings.schedule_timezone!r} is not a known time zone "
            "(use an IANA name such as UTC or Europe/Berlin)"
        ) from None


def daily_cron(at: str) -> str:
    """``HH:MM`` as the five-field expression of a daily run (``"0 3 * * *"`` for 03:00)."""
    hour, minute = _hour_minute(at)
    return f"{minute} {hour} * * *"


def _hour_minute(at: str) -> tuple[int, int]:
    hour, minute = at.split(":")
    return int(hour), int(minute)


def slot_name(source_id: int, database: str, slot: datetime) -> str:
    """The UNIQUE ``schedule_slot`` of one database's backup, e.g. ``3:shop:2026-11-27T00:00Z``."""
    return f"{source_id}:{database}:{slot.astimezone(UTC):%Y-%m-%dT%H:%M}Z"


def due_slot(
    schedule: str,
    timezone: str,
    *,
    now: datetime,
    last_look: datetime | None,
    catch_up: timedelta,
    not_before: datetime | None = None,
) -> datetime | None:
    """The slot a look at ``now`` takes for one schedule, or None.

    The slots considered fired in ``(last_look, now]`` (the first look of a worker: the
    catch-up window), never further back than ``catch_up`` (at least one tick) nor before
    ``not_before`` (when the source was made). Of those only the newest is taken: a backup
    now holds everything a missed earlier one would have, and a worker that was down for a
    day must not start a day of hourly backups at once.
    """
    start = now - max(catch_up, TICK)
    if last_look is not None:
        start = max(start, last_look)
    if not_before is not None:
        start = max(start, not_before)
    if start >= now:
        return None
    slots = slots_between(schedule, timezone, start, now)
    return slots[-1] if slots else None


def cron_jobs(
    settings: Settings,
    *,
    sources: CronCoroutine,
    auto_trash: CronCoroutine,
    cleanup_trash: CronCoroutine,
) -> list[CronJob]:
    """The every-minute sources job and the two daily retention jobs, or none when the
    schedule is off (DBKEEP_SCHEDULE_ENABLED=false)."""
    if not settings.schedule_enabled:
        return []
    jobs = [
        cron(
            sources,  # type: ignore[arg-type]
            name=CRON_SOURCES,
            minute=set(range(60)),
            second=0,
            microsecond=0,
            # One try: a minute missed is caught up by the next one (``due_slot``).
            max_tries=1,
            timeout=CRON_TIMEOUT_S,
            keep_result=0,
        )
    ]
    for name, coroutine, at in (
        (CRON_AUTO_TRASH, auto_trash, settings.auto_trash_at),
        (CRON_CLEANUP_TRASH, cleanup_trash, settings.cleanup_trash_at),
    ):
        hour, minute = _hour_minute(at)
        jobs.append(
            cron(
                coroutine,  # type: ignore[arg-type]
                name=name,
                hour=hour,
                minute=minute,
                second=0,
                microsecond=0,
                max_tries=3,  # a few tries: retention rides out a Redis blip
                timeout=CRON_TIMEOUT_S,
                keep_result=0,
            )
        )
    return jobs
