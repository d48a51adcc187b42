"""The reconciler's part for verifications: no scratch database outlives its verification.

A verification drops its scratch database in ``finally``; a worker killed mid-way (SIGKILL, the
host lost) can't. So, on every pass: a ``running`` verification whose heartbeat went silent is
failed ("the worker stopped"), and on every source's scratch server each ``dbkeep_verify_<id>``
database that no live verification is using is dropped.
"""

from __future__ import annotations

import re
from datetime import timedelta

import structlog

from app.config import Settings
from app.db import Database, utcnow
from app.engines.base import EngineError, TargetSpec
from app.engines.registry import EngineRegistry
from app.jobs.queue import ArqJobQueue, verification_job_id
from app.sources.models import SourceEngine
from app.sources.repository import SourceRepository
from app.verifications.events import emit_verification_failed
from app.verifications.models import SCRATCH_PREFIX, VerificationStatus
from app.verifications.repository import VerificationRepository

log = structlog.get_logger("dbkeep.reconciler")

_SCRATCH = re.compile(rf"^{SCRATCH_PREFIX}(\d+)$")
STOPPED = "The worker running this verification stopped before it ended."


async def reconcile_verifications(
    database: Database, settings: Settings, queue: ArqJobQueue | None = None
) -> tuple[int, int]:
    """Fail verifications whose worker died; queue again a pending one whose job vanished
    (Redis lost it); drop scratch databases nobody uses. Returns (verifications failed,
    scratch databases dropped)."""
    silent_before = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds)
    failed = 0
    live_backups: set[int] = set()
    lost: list[int] = []
    stopped: list[int] = []
    async with database.sessionmaker() as session:
        repo = VerificationRepository(session)
        for verification in await repo.unfinished():
            beat = verification.heartbeat_at or verification.started_at
            if verification.status is VerificationStatus.running and (
                beat is None or beat < silent_before
            ):
                if await repo.transition(
                    verification.id,
                    from_statuses=(VerificationStatus.running,),
                    values={
                        "status": VerificationStatus.failed,
                        "error_message": STOPPED,
                        "finished_at": utcnow(),
                        "heartbeat_at": None,
                    },
                ):
                    failed += 1
                    stopped.append(verification.id)
            elif verification.status is VerificationStatus.running:
                live_backups.add(verification.backup_id)
            elif verification.created_at < silent_before:
                lost.append(verification.id)
        await session.commit()
        for verification_id in stopped:
            row = await repo.get(verification_id)
            if row is not None:
                await emit_verification_failed(database, row)
    if queue is not None:
        for verification_id in lost:
            if not await queue.job_exists(verification_job_id(queue.queue_name, verification_id)):
                await queue.enqueue_verification(verification_id)
                log.info("reconcile.verification_requeued", verification_id=verification_id)
    async with database.sessionmaker() as session:
        servers: dict[str, TargetSpec] = {}
        for source in await SourceRepository(session).all():
            if source.verify_url is None or source.engine != SourceEngine.mysql:
                continue
            try:
                spec = TargetSpec.from_url(source.verify_url.reveal(), database="mysql")
            except ValueError:
                continue
            servers[spec.socket or f"{spec.host.lower()}:{spec.port}"] = spec
    if not servers:
        return failed, 0
    engine = EngineRegistry(settings).get(SourceEngine.mysql)
    dropped = 0
    for spec in servers.values():
        try:
            names = await engine.list_databases(spec)
        except EngineError as exc:
            log.warning("reconcile.scratch_list_failed", error=exc.message)
            continue
        for name in names:
            match = _SCRATCH.match(name)
            if match is None or int(match.group(1)) in live_backups:
                continue
            try:
                await engine.drop_database(spec.with_database(name))
            except EngineError as exc:
                log.warning("reconcile.scratch_drop_failed", database=name, error=exc.message)
                continue
            dropped += 1
            log.info("reconcile.scratch_dropped", database=name)
    return failed, dropped
