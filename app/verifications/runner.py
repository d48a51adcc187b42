"""Running one verification: restore a backup into a fresh scratch database, count, drop it.

The scratch database is ``dbkeep_verify_<backup id>`` on the source's ``verify_url`` -- never the
source's own database, and no safety backup (nothing there is anyone's). It is created fresh,
loaded through the restore path (the file's size and SHA-256 are checked first), its tables'
rows are counted and compared with the manifest the dump recorded, and it is dropped in
``finally`` whatever happened; a worker killed mid-way leaves it to the reconciler
(``app/verifications/reconcile.py``). One verification at a time per scratch server: the caller
holds a lock keyed by the server (``scratch_lock_target``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog

from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository
from app.backups.runner import HEARTBEAT_SECONDS, BackupRunner
from app.db import Database, utcnow
from app.engines.base import DatabaseEngine, EngineError, TargetSpec
from app.engines.routing import engine_for
from app.engines.sqlite.paths import sqlite_directory_of, sqlite_scratch_target
from app.errors import AppError
from app.sources.models import Source, SourceEngine
from app.sources.repository import SourceRepository
from app.verifications.events import emit_verification_failed
from app.verifications.models import (
    SCRATCH_PREFIX,
    BackupVerification,
    VerificationStatus,
    scratch_database,
)
from app.verifications.repository import VerificationRepository

log = structlog.get_logger("dbkeep.verifications")

# The lock on a scratch server is this TargetSpec's database name on that server.
_SERVER_LOCK_DATABASE = "dbkeep_verify"
# A SQLite source without a verify_url: its scratch files go here, under the var directory.
SQLITE_SCRATCH_DIR = "verify-scratch"

Hold = Callable[[TargetSpec, str], AbstractAsyncContextManager[object]]


class VerificationFailed(Exception):
    """The verification ran and found the backup wanting (or could not run): ``message``."""

    def __init__(self, message: str, tables: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tables = tables or []


def scratch_lock_target(scratch: TargetSpec) -> TargetSpec:
    """What the per-server lock is keyed by: the scratch server, whatever the database."""
    return scratch.with_database(_SERVER_LOCK_DATABASE)


def compare(
    manifest: dict[str, Any], restored: dict[str, int], objects: Counter[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per table ``{"name", "expected_rows", "restored_rows"}`` (a table the manifest lists but
    the restore lacks has ``restored_rows`` null), and what disagrees, in words."""
    tables: list[dict[str, Any]] = []
    problems: list[str] = []
    expected = {str(t["name"]): int(t["rows"]) for t in manifest.get("tables", [])}
    for name in sorted(expected):
        got = restored.get(name)
        tables.append({"name": name, "expected_rows": expected[name], "restored_rows": got})
        if got is None:
            problems.append(f"table `{name}` is missing after the restore")
        elif got != expected[name]:
            problems.append(f"table `{name}` has {got} rows, the dump held {expected[name]}")
    for name in sorted(set(restored) - set(expected)):
        tables.append({"name": name, "expected_rows": None, "restored_rows": restored[name]})
        problems.append(f"table `{name}` is not in the manifest")
    for kind, count in sorted(dict(manifest.get("objects", {})).items()):
        if int(count) != objects.get(kind, 0):
            problems.append(f"{objects.get(kind, 0)} {kind}(s) restored, the dump held {count}")
    return tables, problems


async def _objects_of(engine: DatabaseEngine, scratch: TargetSpec) -> Counter[str]:
    """The restored objects by kind: the engine's own count in the manifest's kinds when it
    has one (PostgreSQL leaves extension members out), else from ``inspect``."""
    count_objects = getattr(engine, "count_objects", None)
    if count_objects is not None:
        return Counter(await count_objects(scratch))
    state = await engine.inspect(scratch)
    return Counter(o.kind for o in state.objects)


def _summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:5])
    more = len(problems) - 5
    return f"{shown} and {more} more" if more > 0 else shown


class VerificationRunner:
    def __init__(self, *, database: Database, backups: BackupRunner) -> None:
        self.database = database
        self.backups = backups
        self.engine = backups.engine

    async def scratch_target(self, verification_id: int) -> TargetSpec | None:
        """Where the verification restores (None when it can't: ``run`` fails it saying why)."""
        with contextlib.suppress(VerificationFailed):
            async with self.database.sessionmaker() as session:
                verification = await VerificationRepository(session).get(verification_id)
                if verification is None:
                    return None
                return await self._scratch_of(session, verification)
        return None

    async def run(self, verification_id: int, *, hold: Hold | None = None) -> BackupVerification:
        """Run a ``pending`` verification to ``passed`` or ``failed`` (anything else: as it is).

        ``hold(server, holder)`` is the per-server lock (``LockBusy`` leaves the row pending)."""
        async with self.database.sessionmaker() as session:
            verification = await VerificationRepository(session).get(verification_id)
            if verification is None or verification.status is not VerificationStatus.pending:
                if verification is None:
                    raise AppError(f"Verification {verification_id} was not found.")
                return verification
            try:
                scratch = await self._scratch_of(session, verification)
            except VerificationFailed as exc:
                return await self._finish(verification_id, exc.message, [], time.monotonic())
        if hold is None:
            return await self._run_claimed(verification_id, scratch)
        async with hold(scratch_lock_target(scratch), f"verification {verification_id}"):
            return await self._run_claimed(verification_id, scratch)

    async def _scratch_of(self, session: Any, verification: BackupVerification) -> TargetSpec:
        if verification.source_id is None:
            raise VerificationFailed("The backup's source was deleted: no verify_url to use.")
        source = await SourceRepository(session).get(verification.source_id)
        if source is not None and source.engine == SourceEngine.sqlite:
            return self._sqlite_scratch(source, verification.backup_id)
        if source is None or source.verify_url is None:
            raise VerificationFailed(
                "The source has no verify_url: set a server where scratch databases may be created."
            )
        try:
            scratch = TargetSpec.from_url(
                source.verify_url.reveal(), database=scratch_database(verification.backup_id)
            )
        except ValueError as exc:
            raise VerificationFailed(f"The source's verify_url is not usable: {exc}.") from None
        # A URL naming a database would make from_url keep it: the scratch name always wins.
        return scratch.with_database(scratch_database(verification.backup_id))

    def _sqlite_scratch(self, source: Source, backup_id: int) -> TargetSpec:
        """A SQLite source's scratch file: in its verify_url's directory (``sqlite:///dir/``),
        or under dbkeep's var directory without one."""
        try:
            if source.verify_url is None:
                directory = str((self.backups.settings.var_dir / SQLITE_SCRATCH_DIR).resolve())
            else:
                directory = sqlite_directory_of(source.verify_url.reveal())
        except ValueError as exc:
            raise VerificationFailed(f"The source's verify_url is not usable: {exc}.") from None
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise VerificationFailed(
                f"The scratch directory could not be made: {exc.strerror or type(exc).__name__}."
            ) from None
        return sqlite_scratch_target(directory, scratch_database(backup_id))

    async def _run_claimed(self, verification_id: int, scratch: TargetSpec) -> BackupVerification:
        started = time.monotonic()
        async with self.database.sessionmaker() as session:
            claimed = await VerificationRepository(session).transition(
                verification_id,
                from_statuses=(VerificationStatus.pending,),
                values={
                    "status": VerificationStatus.running,
                    "started_at": utcnow(),
                    "heartbeat_at": utcnow(),
                },
            )
            await session.commit()
            verification = await VerificationRepository(session).get(verification_id)
        assert verification is not None
        if not claimed:
            return verification
        log.info("verification.started", verification_id=verification_id)
        heartbeat = asyncio.create_task(self._keep_heartbeat(verification_id))
        try:
            tables, problems = await self._restore_and_count(verification.backup_id, scratch)
        except VerificationFailed as exc:
            return await self._finish(verification_id, exc.message, exc.tables, started)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        message = None if not problems else _summary(problems)
        return await self._finish(verification_id, message, tables, started)

    async def _restore_and_count(
        self, backup_id: int, scratch: TargetSpec
    ) -> tuple[list[dict[str, Any]], list[str]]:
        backup = await self._backup(backup_id)
        if not scratch.database.startswith(SCRATCH_PREFIX):  # never anything but a scratch db
            raise VerificationFailed(
                "refusing to restore into a database that is not a scratch one"
            )
        engine = engine_for(self.engine, scratch)
        try:
            await engine.recreate_database(scratch)
            try:
                await self.backups.load(backup_id, target=scratch)
            except AppError as exc:  # the file is missing or damaged (size, SHA-256)
                raise VerificationFailed(exc.message) from None
            except EngineError as exc:
                raise VerificationFailed(f"The test restore failed: {exc.message}") from None
            count_rows = getattr(engine, "count_rows", None)
            if count_rows is None:
                raise VerificationFailed(f"The {engine.name} engine can't count rows yet.")
            if backup.manifest is None:
                raise VerificationFailed(
                    "The backup has no manifest (taken before manifests were recorded): the "
                    "restore succeeded, but there is nothing to compare its rows with."
                )
            if "unreadable" in backup.manifest:
                raise VerificationFailed(
                    "The backup's manifest could not be taken at dump time "
                    f"({backup.manifest['unreadable']}): nothing to compare the restore with."
                )
            try:
                integrity = getattr(engine, "integrity", None)  # SQLite: PRAGMA integrity_check
                verdict = "ok" if integrity is None else await integrity(scratch)
                if verdict != "ok":
                    raise VerificationFailed(
                        f"The restored file failed its integrity check: {verdict}"
                    )
                restored = await count_rows(scratch)
                objects = await _objects_of(engine, scratch)
            except EngineError as exc:
                raise VerificationFailed(
                    f"Counting the restored rows failed: {exc.message}"
                ) from None
            return compare(backup.manifest, restored, objects)
        except EngineError as exc:
            raise VerificationFailed(
                f"The scratch database could not be made: {exc.message}"
            ) from None
        finally:
            await asyncio.shield(self._drop(scratch))

    async def _drop(self, scratch: TargetSpec) -> None:
        try:
            await engine_for(self.engine, scratch).drop_database(scratch)
        except EngineError as exc:
            # The reconciler drops it later (it lists dbkeep_verify_% on the server).
            log.warning("verification.drop_failed", database=scratch.database, error=exc.message)

    async def _backup(self, backup_id: int) -> DatabaseBackup:
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).get(backup_id)
        if backup is None:
            raise VerificationFailed(f"Backup {backup_id} was deleted.")
        if backup.status is not BackupStatus.completed:
            raise VerificationFailed(
                f"Backup {backup_id} is {backup.status.value}; only completed backups can be "
                "verified."
            )
        return backup

    async def _keep_heartbeat(self, verification_id: int) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):
                async with self.database.sessionmaker() as session:
                    await VerificationRepository(session).transition(
                        verification_id,
                        from_statuses=(VerificationStatus.running,),
                        values={"heartbeat_at": utcnow()},
                    )
                    await session.commit()

    async def _finish(
        self,
        verification_id: int,
        error: str | None,
        tables: list[dict[str, Any]],
        started: float,
    ) -> BackupVerification:
        status = VerificationStatus.failed if error else VerificationStatus.passed
        async with self.database.sessionmaker() as session:
            repo = VerificationRepository(session)
            await repo.transition(
                verification_id,
                from_statuses=(VerificationStatus.pending, VerificationStatus.running),
                values={
                    "status": status,
                    "error_message": error,
                    "tables": tables,
                    "finished_at": utcnow(),
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "heartbeat_at": None,
                },
            )
            await session.commit()
            verification = await repo.get(verification_id)
        assert verification is not None
        if verification.status is VerificationStatus.failed:
            await emit_verification_failed(self.database, verification)
        else:
            log.info("verification.passed", verification_id=verification_id)
        return verification
