"""The reconciler's part for verifications: no scratch database outlives its verification.

A verification drops its scratch database in ``finally``; a worker killed mid-way (SIGKILL, the
host lost) can't. So, on every pass: a ``running`` verification whose heartbeat went silent is
failed ("the worker stopped"), and on every source's scratch server (MySQL, PostgreSQL) each
``dbkeep_verify_<id>`` database that no live verification is using is dropped; so is each
``dbkeep_verify_<id>.sqlite`` file in a SQLite source's scratch directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from datetime import timedelta

import structlog

from app.config import Settings
from app.db import Database, utcnow
from app.engines.base import EngineError, TargetSpec
from app.engines.registry import EngineRegistry
from app.engines.sqlite.paths import sqlite_directory_of
from app.jobs.queue import ArqJobQueue, verification_job_id
from app.sources.models import Source, SourceEngine
from app.sources.repository import SourceRepository
from app.verifications.events import emit_verification_failed
from app.verifications.models import SCRATCH_PREFIX, VerificationStatus
from app.verifications.repository import VerificationRepository
from app.verifications.runner import SQLITE_SCRATCH_DIR

log = structlog.get_logger("dbkeep.reconciler")

_SCRATCH = re.compile(rf"^{SCRATCH_PREFIX}(\d+)$")
_SCRATCH_FILE = re.compile(rf"^{SCRATCH_PREFIX}(\d+)\.sqlite(|-wal|-shm|-journal)$")
# engine -> a database every server of it has (to list the others from).
_ADMIN_DATABASE: dict[str, str] = {"mysql": "mysql", "postgresql": "postgres"}
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
        servers: dict[tuple[str, str], TargetSpec] = {}
        sqlite_dirs: set[str] = set()
        for source in await SourceRepository(session).all():
            if source.engine == SourceEngine.sqlite:
                sqlite_dirs.add(_sqlite_scratch_dir(source, settings))
                continue
            if source.verify_url is None or source.engine not in _ADMIN_DATABASE:
                continue
            try:
                spec = TargetSpec.from_url(
                    source.verify_url.reveal(), database=_ADMIN_DATABASE[source.engine]
                )
            except ValueError:
                continue
            server = spec.socket or f"{spec.host.lower()}:{spec.port}"
            servers[(source.engine, server)] = spec.with_database(_ADMIN_DATABASE[source.engine])
    dropped = await asyncio.to_thread(_drop_sqlite_leftovers, sqlite_dirs, live_backups)
    if not servers:
        return failed, dropped
    engines = EngineRegistry(settings)
    for (engine_name, _server), spec in servers.items():
        engine = engines.get(engine_name)
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


def _sqlite_scratch_dir(source: Source, settings: Settings) -> str:
    if source.verify_url is None:
        return str((settings.var_dir / SQLITE_SCRATCH_DIR).resolve())
    try:
        return sqlite_directory_of(source.verify_url.reveal())
    except ValueError:
        return ""


def _drop_sqlite_leftovers(directories: set[str], live_backups: set[int]) -> int:
    """Remove the ``dbkeep_verify_<id>.sqlite`` files (and side files) no live verification
    uses from SQLite scratch directories."""
    dropped = 0
    for directory in sorted(d for d in directories if d):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            match = _SCRATCH_FILE.match(name)
            if match is None or int(match.group(1)) in live_backups:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
                if match.group(2) == "":
                    dropped += 1
                    log.info("reconcile.scratch_dropped", database=name)
    return dropped
