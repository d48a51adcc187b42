"""The arq jobs: one backup, one restore, and the three scheduled commands.

A job's argument is a row id. arq runs a job more than once rather than never (a killed worker's
job reruns, a cancelled one is re-queued), so each run re-reads its row and acts only from the
state it expects; the runners claim rows atomically. One backup or restore per target database
runs at a time, held by a renewed Redis lock; a job that finds the target busy tries again later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.worker import Retry
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.backups.restores import RestoreRunner
from app.backups.runner import NothingToRun, TransientBackupFailure
from app.backups.service import BackupService, target_from_settings
from app.bootstrap import Bootstrap
from app.config import Settings
from app.db import utcnow
from app.engines.base import TargetSpec
from app.errors import Conflict, ServiceUnavailable
from app.jobs.locks import LockBusy, LockLost, TargetLock
from app.jobs.queue import ArqJobQueue
from app.jobs.schedule import schedule_slot, schedule_timezone, slot_start

log = structlog.get_logger("dbkeep.jobs")

SCHEDULER = Actor.system("scheduler")
# A job that finds its target busy (another backup or restore holds the lock) comes back after:
TARGET_BUSY_RETRY_S = 5
# The scheduled backup waits this long per try for a running restore to finish.
RESTORE_RUNNING_RETRY_S = 60


@dataclass
class WorkerState:
    """What every job of one worker shares; built in ``on_startup``, kept in ``ctx["state"]``."""

    settings: Settings
    runtime: Bootstrap
    redis: ArqRedis
    queue: ArqJobQueue
    reconcile_task: asyncio.Task[None] | None = None


def _state(ctx: dict[str, Any]) -> WorkerState:
    state = ctx["state"]
    assert isinstance(state, WorkerState)
    return state


def transient_backoff(attempt: int) -> int:
    """Seconds before retrying after the ``attempt``-th transient failure: 5, 10, 20 ... 300."""
    return int(min(300, 5 * 2 ** (attempt - 1)))


def _target(settings: Settings, database: str | None) -> TargetSpec | None:
    """The target a row works on, or ``None`` when none is configured (the runner says so)."""
    try:
        target = target_from_settings(settings)
    except Conflict:
        return None
    if database and database != target.database:
        target = target.with_database(database)
    return target


def _lock(state: WorkerState, target: TargetSpec, holder: str) -> TargetLock:
    return TargetLock(
        state.redis,
        target,
        holder=holder,
        # A dead worker's lock frees itself when its rows' heartbeats count as silent.
        ttl_seconds=state.settings.heartbeat_timeout_seconds,
    )


async def run_backup(ctx: dict[str, Any], backup_id: int) -> str:
    """Dump one ``pending`` backup row (or take over one whose worker died)."""
    state = _state(ctx)
    runner = state.runtime.backup_runner()
    job = await runner.backup_job(backup_id)
    if isinstance(job, NothingToRun):
        return job.reason
    target = job.target
    try:
        if target is None:
            done = await runner.run_backup(
                backup_id, attempt=job.attempt, max_attempts=job.max_attempts
            )
        else:
            async with _lock(state, target, f"backup {backup_id}").hold():
                done = await runner.run_backup(
                    backup_id, attempt=job.attempt, max_attempts=job.max_attempts
                )
    except LockBusy as busy:
        log.info("backup.target_busy", backup_id=backup_id, holder=busy.holder)
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    except LockLost:
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    except TransientBackupFailure as exc:
        raise Retry(defer=transient_backoff(exc.attempt)) from None
    return done.status.value


async def run_restore(ctx: dict[str, Any], restore_id: int) -> str:
    """Run one restore operation: safety backup, load, roll back if the load fails."""
    state = _state(ctx)
    runner = RestoreRunner.from_runtime(state.runtime)
    job = await runner.restore_job(restore_id)
    if isinstance(job, NothingToRun):
        return job.reason
    target = job.target
    try:
        if target is None:
            done = await runner.run_restore(restore_id)
        else:
            async with _lock(state, target, f"restore {restore_id}").hold():
                done = await runner.run_restore(restore_id)
    except LockBusy as busy:
        other = busy.holder or ""
        if other.startswith("restore ") and other != f"restore {restore_id}":
            # Two restores raced past the request-time check: this one yields, as a second
            # request would get 409.
            await runner.refuse_beside(restore_id, running=other)
            return "failed"
        log.info("restore.target_busy", restore_id=restore_id, holder=other)
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    except LockLost:
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    return done.status.value


# ---- the schedule ----------------------------------------------------------------------------


async def scheduled_backup(ctx: dict[str, Any]) -> str:
    """Record this slot's backup and queue it; a second worker's insert for the slot fails."""
    state = _state(ctx)
    settings = state.settings
    slot = schedule_slot("backup", settings.backup_at, schedule_timezone(settings), utcnow())
    return await _backup_for_slot(state, slot)


async def catch_up_missed_backup(state: WorkerState, *, now: datetime | None = None) -> str:
    """At start-up: take the latest slot's backup if no worker took it and it is recent.

    arq's cron never runs a slot that passed while no worker was up (a reboot at midnight
    would skip the night's backup); the slot's UNIQUE row still makes it one backup however
    many workers start.
    """
    settings = state.settings
    now = now or utcnow()
    window = timedelta(hours=settings.schedule_catch_up_hours)
    tz = schedule_timezone(settings)
    if not settings.schedule_enabled or not window:
        return "catch-up is off"
    if now - slot_start(settings.backup_at, tz, now) > window:
        return "no recent slot was missed"
    slot = schedule_slot("backup", settings.backup_at, tz, now)
    async with state.runtime.database.sessionmaker() as session:
        if await _scheduler_service(state, session).slot_taken(slot):
            return f"{slot}: taken"
    log.warning("schedule.catching_up", slot=slot)
    try:
        return await _backup_for_slot(state, slot)
    except Retry:
        return f"{slot}: a restore is running; the slot is left to the next day"


async def _backup_for_slot(state: WorkerState, slot: str) -> str:
    settings = state.settings
    if _target(settings, None) is None:
        log.warning("schedule.no_target", slot=slot)
        return "skipped: no target database is configured"
    async with state.runtime.database.sessionmaker() as session:
        try:
            backup = await _scheduler_service(state, session).create_scheduled(slot)
        except Conflict as exc:  # a restore of the target is running
            log.info("schedule.waiting", slot=slot, reason=exc.message)
            raise Retry(defer=RESTORE_RUNNING_RETRY_S) from None
    if backup is None:
        log.info("schedule.slot_taken", slot=slot)
        return f"{slot}: another worker has it"
    try:
        await state.queue.enqueue_backup(backup.id)
    except ServiceUnavailable:
        # The row is recorded: the reconciler queues it once Redis answers again.
        log.warning("schedule.enqueue_deferred", backup_id=backup.id)
    log.info("schedule.backup_queued", slot=slot, backup_id=backup.id)
    return f"{slot}: backup {backup.id}"


async def scheduled_auto_trash(ctx: dict[str, Any]) -> str:
    """The original's ``backup:auto-trash`` (idempotent, so no slot guard is needed)."""
    state = _state(ctx)
    async with state.runtime.database.sessionmaker() as session:
        moved = await _scheduler_service(state, session).auto_trash(now=utcnow())
    return f"moved {len(moved)} backup(s) to the trash"


async def scheduled_cleanup_trash(ctx: dict[str, Any]) -> str:
    """The original's ``backup:cleanup-trash``."""
    state = _state(ctx)
    async with state.runtime.database.sessionmaker() as session:
        purged = await _scheduler_service(state, session).cleanup_trash(now=utcnow())
    return f"deleted {len(purged)} trashed backup(s)"


def _scheduler_service(state: WorkerState, session: AsyncSession) -> BackupService:
    return BackupService(
        session,
        settings=state.settings,
        storage=state.runtime.storage,
        queue=None,
        actor=SCHEDULER,
    )
