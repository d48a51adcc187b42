"""The arq job of a verification, and the schedule's look at each source's verify_schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from arq.worker import Retry

from app.audit.service import Actor
from app.backups.runner import BackupRunner
from app.bootstrap import Bootstrap
from app.db import utcnow
from app.engines.base import TargetSpec
from app.errors import AppError
from app.jobs.locks import LockBusy, LockLost, TargetLock
from app.jobs.schedule import due_slot
from app.jobs.tasks import TARGET_BUSY_RETRY_S, WorkerState
from app.sources.repository import SourceRepository
from app.verifications.models import verifiable
from app.verifications.runner import VerificationRunner
from app.verifications.service import VerificationQueue, VerificationService

log = structlog.get_logger("dbkeep.verifications")

VERIFY_SCHEDULER = Actor.system("verify-scheduler")


def verification_runner(runtime: Bootstrap) -> VerificationRunner:
    """The runner with every engine (each scratch target's own)."""
    backups = BackupRunner(
        database=runtime.database,
        settings=runtime.settings,
        engine=runtime.engine,
        storage=runtime.storage,
    )
    return VerificationRunner(database=runtime.database, backups=backups)


def server_lock(redis: Any, ttl_seconds: float) -> Any:
    """``hold(server, holder)``: the renewed Redis lock on one scratch server."""

    @asynccontextmanager
    async def hold(server: TargetSpec, holder: str) -> AsyncIterator[object]:
        async with TargetLock(redis, server, holder=holder, ttl_seconds=ttl_seconds).hold() as lock:
            yield lock

    return hold


async def run_verification(ctx: dict[str, Any], verification_id: int) -> str:
    """Run one pending verification, one at a time per scratch server."""
    state = ctx["state"]
    assert isinstance(state, WorkerState)
    runner = verification_runner(state.runtime)
    hold = server_lock(state.redis, state.settings.heartbeat_timeout_seconds)
    try:
        done = await runner.run(verification_id, hold=hold)
    except LockBusy as busy:
        log.info("verification.server_busy", verification_id=verification_id, holder=busy.holder)
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    except LockLost:
        raise Retry(defer=TARGET_BUSY_RETRY_S) from None
    except AppError as exc:
        return exc.message
    return done.status.value


# ---- verify_schedule ---------------------------------------------------------------------------

_last_looks: dict[int, datetime] = {}


async def run_verify_schedules(
    runtime: Bootstrap, queue: VerificationQueue | None, *, now: datetime
) -> str:
    """Queue a verification of the newest completed backup of every source whose
    verify_schedule fired since the last look (none twice for one slot: a verification of
    the source recorded since the slot means it is taken)."""
    async with runtime.database.sessionmaker() as session:
        sources = [
            s
            for s in await SourceRepository(session).all()
            if s.enabled and s.verify_schedule and verifiable(s)
        ]
    outcomes = []
    for source in sources:
        assert source.verify_schedule is not None
        slot = due_slot(
            source.verify_schedule,
            source.timezone,
            now=now,
            last_look=_last_looks.get(source.id),
            catch_up=timedelta(hours=runtime.settings.schedule_catch_up_hours),
            not_before=source.created_at,
        )
        _last_looks[source.id] = now
        if slot is None:
            continue
        async with runtime.database.sessionmaker() as session:
            service = VerificationService(session, queue=queue, actor=VERIFY_SCHEDULER)
            if await service.verifications.created_since(source.id, slot):
                continue
            try:
                verification = await service.request_for_source(source.id, trigger="schedule")
            except AppError as exc:
                log.info("verification.schedule_skipped", source=source.name, reason=exc.message)
                continue
        outcomes.append(f"source {source.id}: verification {verification.id}")
    return "; ".join(outcomes)


async def scheduled_verifications(ctx: dict[str, Any]) -> str:
    """The every-minute look at every source's verify_schedule."""
    state = ctx["state"]
    assert isinstance(state, WorkerState)
    return await run_verify_schedules(state.runtime, state.queue, now=utcnow())


async def scheduled_sources_and_verifications(ctx: dict[str, Any]) -> str:
    """The every-minute cron: the sources' backup schedules, then their verify_schedules."""
    from app.jobs import tasks

    backups = await tasks.scheduled_sources(ctx)
    try:
        verifications = await scheduled_verifications(ctx)
    except Exception as exc:  # the backups' schedule must not fail with it
        log.error("schedule.verifications_failed", error=type(exc).__name__)
        verifications = ""
    return "; ".join(part for part in (backups, verifications) if part)
