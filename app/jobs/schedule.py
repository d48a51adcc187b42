"""The cron table: a backup, auto-trash and trash cleanup each day at configurable times.

arq's cron dedupes a slot only while the job key exists, and gives cron jobs one try with no
catch-up. The backup slot is therefore made unique by the metadata store: each scheduled backup row
carries ``schedule_slot`` (``"backup:2026-11-27T00:00Z"``, UNIQUE), so however many workers run the
schedule, the second insert for a slot fails and that worker knows another one has it.
Retention is idempotent, so running it twice needs no such guard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arq.cron import CronJob, cron

from app.config import Settings

CRON_BACKUP = "cron:backup"
CRON_AUTO_TRASH = "cron:auto_trash"
CRON_CLEANUP_TRASH = "cron:cleanup_trash"

CronCoroutine = Callable[..., Awaitable[Any]]
# arq's limit for each cron job (they only record a row and queue it, or run retention).
CRON_TIMEOUT_S = 300


def schedule_timezone(settings: Settings) -> ZoneInfo:
    """The zone the HH:MM times are read in; a clear error for an unknown name."""
    try:
        return ZoneInfo(settings.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"DBKEEP_SCHEDULE_TIMEZONE={settings.schedule_timezone!r} is not a known time zone "
            "(use an IANA name such as UTC or Europe/Berlin)"
        ) from None


def _hour_minute(at: str) -> tuple[int, int]:
    hour, minute = at.split(":")
    return int(hour), int(minute)


def slot_start(at: str, tz: ZoneInfo, now: datetime) -> datetime:
    """The most recent time of day ``at`` (HH:MM in ``tz``) at or before ``now``, in UTC."""
    hour, minute = _hour_minute(at)
    local = now.astimezone(tz)
    start = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if start > local:
        start = (start - timedelta(days=1)).replace(hour=hour, minute=minute)
    return start.astimezone(UTC)


def schedule_slot(kind: str, at: str, tz: ZoneInfo, now: datetime) -> str:
    """The slot name a scheduled run at ``now`` belongs to, e.g. ``backup:2026-11-27T00:00Z``."""
    return f"{kind}:{slot_start(at, tz, now):%Y-%m-%dT%H:%MZ}"


def cron_jobs(
    settings: Settings,
    *,
    backup: CronCoroutine,
    auto_trash: CronCoroutine,
    cleanup_trash: CronCoroutine,
) -> list[CronJob]:
    """The three daily jobs at their configured times, or none when the schedule is off."""
    if not settings.schedule_enabled:
        return []
    table = (
        (CRON_BACKUP, backup, settings.backup_at, 30),
        (CRON_AUTO_TRASH, auto_trash, settings.auto_trash_at, 3),
        (CRON_CLEANUP_TRASH, cleanup_trash, settings.cleanup_trash_at, 3),
    )
    jobs = []
    for name, coroutine, at, max_tries in table:
        hour, minute = _hour_minute(at)
        jobs.append(
            cron(
                coroutine,  # type: ignore[arg-type]
                name=name,
                hour=hour,
                minute=minute,
                second=0,
                microsecond=0,
                # A few tries: the backup waits out a running restore; retention a Redis blip.
                max_tries=max_tries,
                timeout=CRON_TIMEOUT_S,
                keep_result=0,
            )
        )
    return jobs
