"""The arq jobs: one backup, one restore, and the scheduled ones (sources, retention).

A job's argument is a row id. arq runs a job more than once rather than never (a killed worker's
job reruns, a cancelled one is re-queued), so each run re-reads its row and acts only from the
state it expects; the runners claim rows atomically. One backup or restore per target database
runs at a time, held by a renewed Redis lock; a job that finds the target busy tries again later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
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
from app.jobs.schedule import TICK, due_slot, slot_name
from app.sources.repository import SourceRepository
from app.sources.service import SourceService

log = structlog.get_logger("dbkeep.jobs")

SCHEDULER = Actor.system("scheduler")
# A job that finds its target busy (another backup or restore holds the lock) comes back after:
TARGET_BUSY_RETRY_S = 5


@dataclass
class WorkerState:
    """What every job of one worker shares; built in ``on_startup``, kept in ``ctx["state"]``."""

    settings: Settings
    runtime: Bootstrap
    redis: ArqRedis
    queue: ArqJobQueue
    reconcile_task: asyncio.Task[None] | None = None
    # When this worker last looked at each source's schedule (``run_schedules``).
    last_looks: dict[int, datetime] = field(default_factory=dict)


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


async def scheduled_sources(ctx: dict[str, Any]) -> str:
    """The every-minute look at every source's schedule (``run_schedules``)."""
    return await run_schedules(_state(ctx), now=utcnow())


async def run_schedules(state: WorkerState, *, now: datetime) -> str:
    """Record and queue the backups of every enabled source whose schedule fired since this
    worker's last look (its first look: the catch-up window): one row per database, named by
    its slot, so a second worker's insert for the slot fails and nothing is taken twice."""
    async with state.runtime.database.sessionmaker() as session:
        source_ids = await SourceRepository(session).scheduled_ids()
    outcomes = []
    for source_id in source_ids:
        try:
            outcome = await _run_source_schedule(state, source_id, now=now)
        except Exception as exc:  # one source's trouble must not stop the others' backups
            log.error("schedule.source_failed", source_id=source_id, error=str(exc))
            outcome = f"failed: {type(exc).__name__}"
        if outcome:
            outcomes.append(f"source {source_id}: {outcome}")
    # Sources no longer scheduled are forgotten, so re-enabling one starts a fresh look.
    state.last_looks = {key: state.last_looks[key] for key in source_ids if key in state.last_looks}
    return "; ".join(outcomes) or "no slot is due"


async def _run_source_schedule(state: WorkerState, source_id: int, *, now: datetime) -> str:
    settings = state.settings
    async with state.runtime.database.sessionmaker() as session:
        sources = SourceService(
            session, settings=settings, engines=state.runtime.engines, actor=SCHEDULER
        )
        source = await sources.get(source_id)
        if not source.enabled or source.schedule is None:
            return ""
        slot = due_slot(
            source.schedule,
            source.timezone,
            now=now,
            last_look=state.last_looks.get(source_id),
            catch_up=timedelta(hours=settings.schedule_catch_up_hours),
            not_before=source.created_at,
        )
        if slot is None:
            state.last_looks[source_id] = now
            return ""
        if state.last_looks.get(source_id) is None and now - slot >= TICK:
            log.warning("schedule.catching_up", source=source.name, slot=f"{slot:%Y-%m-%dT%H:%M}Z")
        # Listing a server's databases can fail: the look is then not advanced, so the next
        # minute tries the slot again (within the catch-up window).
        databases = await sources.databases_to_back_up(source, None)
        service = _scheduler_service(state, session)
        queued: list[int] = []
        waiting = False
        for database in databases:
            name = slot_name(source.id, database, slot)
            try:
                backup = await service.create_scheduled(name, source=source, database=database)
            except Conflict as exc:  # a restore of that database is running
                log.info("schedule.waiting", slot=name, reason=exc.message)
                await session.rollback()
                await session.refresh(source)
                waiting = True
                continue
            if backup is None:
                log.info("schedule.slot_taken", slot=name)
                continue
            queued.append(backup.id)
            log.info("schedule.backup_queued", slot=name, backup_id=backup.id)
    for backup_id in queued:
        try:
            await state.queue.enqueue_backup(backup_id)
        except ServiceUnavailable:
            # The row is recorded: the reconciler queues it once Redis answers again.
            log.warning("schedule.enqueue_deferred", backup_id=backup_id)
    if not waiting:
        state.last_looks[source_id] = now
    slot_text = f"{slot:%Y-%m-%dT%H:%M}Z"
    if not queued:
        return f"{slot_text}: waiting for a restore" if waiting else f"{slot_text}: taken"
    return f"{slot_text}: backup(s) {', '.join(map(str, queued))}"


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
