"""Running one backup row to completion, verifying a stored file, loading one into a database.

Jobs call these with a row id. Each call re-reads the row and acts only from the expected state, so
running a job twice (arq may) does no harm. The metadata store, not the queue, is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select

from app.audit.models import AuditEvent
from app.backups.copying import CopyResult, CopyTarget, fail_unfinished, prepare_copies
from app.backups.copying import record as record_copies
from app.backups.copying import summary as copies_summary
from app.backups.copying import upload as upload_copy
from app.backups.dumping import DumpOutcome, dump_into
from app.backups.manifest import manifest_observer_of
from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus
from app.backups.repository import BackupRepository
from app.backups.service import target_for
from app.config import Settings
from app.db import Database, utcnow
from app.destinations.copies import (
    MISSING,
    Place,
    bootstrap_or,
    delete_objects,
    every_place,
    first_intact,
    mark_failed,
)
from app.destinations.models import CopyStatus
from app.destinations.repository import DestinationRepository
from app.encryption.service import keys_for_backup, recipients_for_source
from app.engines.base import (
    DatabaseEngine,
    EngineError,
    FailureKind,
    ProgressCallback,
    TargetSpec,
)
from app.engines.routing import engine_for
from app.errors import AppError, Conflict, NotFound
from app.notifications.service import notify_backup_finished
from app.pipeline.checksum import sha256_of
from app.pipeline.compression import Compression
from app.pipeline.crypto import decrypted, encryptor
from app.sources.service import stored_source_target
from app.storage.base import BackupStorage, StorageError, StorageWriter
from app.storage.local import LocalStorage

log = structlog.get_logger("dbkeep.runner")

HEARTBEAT_SECONDS = 2.0
# Under DBKEEP_BACKUP_DIR: a name no storage key can have (keys never start with a dot).
SPOOL_DIR = ".spool"


async def cancelled_by(database: Database, action: str, target_id: int) -> str:
    """The actor of the newest ``action`` audit event about ``target_id`` (an e-mail, or "cli"
    for the terminal), or "a user" when there is none."""
    with contextlib.suppress(Exception):  # the wording is not worth failing the outcome for
        async with database.sessionmaker() as session:
            actor = await session.scalar(
                select(AuditEvent.actor)
                .where(AuditEvent.action == action, AuditEvent.target_id == str(target_id))
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
        if actor:
            return "the dbkeep CLI" if actor == "cli" else str(actor)
    return "a user"


class TransientBackupFailure(Exception):
    """The attempt failed for a reason worth retrying; the row is ``pending`` again."""

    def __init__(self, message: str, *, attempt: int) -> None:
        super().__init__(message)
        self.message = message
        self.attempt = attempt


class _CancelledByUser(Exception):
    pass


@dataclass
class _Progress:
    raw_bytes: int = 0

    async def update(self, raw_bytes: int) -> None:
        self.raw_bytes = raw_bytes


@dataclass(frozen=True)
class NothingToRun:
    """Why a job has nothing to run: its row is gone, or no longer waiting to run."""

    reason: str  # the job's result, e.g. "gone" or "nothing to do: completed"


@dataclass(frozen=True)
class BackupJob:
    """A backup row a job is about to run: the database it works on, and which attempt it is."""

    backup_id: int
    target_database: str | None
    target: TargetSpec | None  # None: no usable target (the run fails saying why)
    attempt: int
    max_attempts: int


class BackupRunner:
    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        engine: DatabaseEngine,
        storage: BackupStorage,
    ) -> None:
        self.database = database
        self.settings = settings
        self.engine = engine
        self.storage = storage
        # The copy each backup is read from, chosen by ``check_size``.
        self._places: dict[int, Place] = {}

    # ---- backups ---------------------------------------------------------------------------

    async def backup_job(self, backup_id: int) -> BackupJob | NothingToRun:
        """What a job queued for ``backup_id`` runs: a ``pending`` row, or an ``in_progress``
        one (its worker may have died; ``run_backup`` decides), else nothing."""
        async with self.database.sessionmaker() as session:
            row = await BackupRepository(session).get(backup_id)
        if row is None:
            return NothingToRun("gone")
        if row.status not in (BackupStatus.pending, BackupStatus.in_progress):
            return NothingToRun(f"nothing to do: {row.status.value}")
        return BackupJob(
            backup_id=backup_id,
            target_database=row.target_database,
            target=await self._target_or_none(row),
            attempt=row.attempts + 1,
            max_attempts=self.settings.transient_retries + 1,
        )

    async def run_backup(
        self,
        backup_id: int,
        *,
        attempt: int = 1,
        max_attempts: int = 1,
        on_progress: ProgressCallback | None = None,
        on_estimate: ProgressCallback | None = None,
    ) -> DatabaseBackup:
        """Dump the target into the row's file; leave the row ``completed`` or ``failed``.

        ``on_progress`` is called with the uncompressed bytes dumped so far, ``on_estimate`` once
        with the estimated total when there is one (a progress bar's total).

        Acts only on a ``pending`` row, or an ``in_progress`` one whose heartbeat went silent (its
        worker died). Any other row is returned untouched.
        """
        backup = await self._claim(backup_id)
        if backup is None:
            return await self._reload(backup_id)
        log.info("backup.started", backup_id=backup_id, attempt=attempt)
        started = time.monotonic()
        writer: StorageWriter | None = None
        spool: BackupStorage | None = None
        results: list[CopyResult] = []
        try:
            target = await self._target_for(backup)
            targets = await self._copy_targets(backup)
            primary, spool = self._primary(targets)
            await primary.check_writable()
            estimate = await self._record_estimate(backup_id, target)
            if estimate is not None and on_estimate is not None:
                await on_estimate(estimate)
            recipients = await recipients_for_source(self.database, backup.source_id)
            writer = await primary.open_writer(backup.path)
            outcome = await self._dump_with_heartbeat(
                backup_id, target, writer, Compression(backup.compression), on_progress, recipients
            )
            size = await writer.commit()
            writer = None
            if spool is None:
                results = [CopyResult(targets[0], size, None)]
            else:
                results = await self._upload_with_heartbeat(
                    backup_id, spool, backup.path, targets, size, outcome
                )
        except asyncio.CancelledError:
            # The worker is stopping (SIGTERM) or the job was aborted: leave the row for a rerun.
            await self._abort(writer)
            await asyncio.shield(self._release(backup_id, "Interrupted; it will be retried."))
            log.warning("backup.interrupted", backup_id=backup_id)
            raise
        except _CancelledByUser:
            await self._abort(writer)
            who = await self._cancelled_by("backup.cancel", backup_id)
            return await self._fail(backup_id, f"Cancelled by {who}.", started, cancelled=True)
        except TimeoutError:
            await self._abort(writer)
            limit = self.settings.backup_timeout_seconds
            return await self._fail(
                backup_id, f"The dump timed out after {limit} seconds.", started
            )
        except EngineError as exc:
            await self._abort(writer)
            if exc.kind is FailureKind.transient and attempt < max_attempts:
                await self._release(backup_id, f"Attempt {attempt} failed: {exc.message}")
                log.warning("backup.retrying", backup_id=backup_id, reason=exc.message)
                raise TransientBackupFailure(exc.message, attempt=attempt) from None
            return await self._fail(backup_id, exc.message, started)
        except StorageError as exc:
            await self._abort(writer)
            if exc.transient and attempt < max_attempts:
                await self._release(backup_id, f"Attempt {attempt} failed: {exc.message}")
                raise TransientBackupFailure(exc.message, attempt=attempt) from None
            return await self._fail(backup_id, exc.message, started)
        except AppError as exc:
            await self._abort(writer)
            return await self._fail(backup_id, exc.message, started)
        except Exception:
            await self._abort(writer)
            log.exception("backup.crashed", backup_id=backup_id)
            return await self._fail(
                backup_id, "The backup failed unexpectedly; see the worker log.", started
            )
        finally:
            if spool is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(spool.delete(backup.path))
        async with self.database.sessionmaker() as session:
            await record_copies(session, backup_id, results, sha256=outcome.sha256)
            await session.commit()
        if not any(result.stored for result in results):
            return await self._fail(backup_id, copies_summary(results), started)
        degraded = not all(result.stored for result in results)
        return await self._complete(
            backup_id, outcome, size, started, bool(recipients), degraded=degraded
        )

    async def _copy_targets(self, backup: DatabaseBackup) -> list[CopyTarget]:
        async with self.database.sessionmaker() as session:
            return await prepare_copies(
                session,
                backup_id=backup.id,
                source_id=backup.source_id,
                key=backup.path,
                fallback=self.storage,
            )

    def _primary(self, targets: list[CopyTarget]) -> tuple[BackupStorage, BackupStorage | None]:
        """Where the dump is written: the one destination itself, or a local spool that the
        copies are uploaded from (app/backups/copying.py says why)."""
        if len(targets) == 1:
            only = targets[0]
            if only.storage is None:
                raise StorageError(only.error or f"The destination {only.name!r} is unavailable.")
            return only.storage, None
        spool = LocalStorage(self.settings.backup_dir / SPOOL_DIR)
        return spool, spool

    async def _upload_with_heartbeat(
        self,
        backup_id: int,
        spool: BackupStorage,
        key: str,
        targets: list[CopyTarget],
        size: int,
        outcome: DumpOutcome,
    ) -> list[CopyResult]:
        """Every copy uploaded from the spool at once; the row's heartbeat kept meanwhile."""
        uploads = asyncio.ensure_future(
            asyncio.gather(
                *(
                    upload_copy(spool, key, target, size=size, sha256=outcome.sha256, dest_key=key)
                    for target in targets
                )
            )
        )
        try:
            async with asyncio.timeout(self.settings.backup_timeout_seconds):
                while True:
                    done, _ = await asyncio.wait({uploads}, timeout=HEARTBEAT_SECONDS)
                    if done:
                        return list(uploads.result())
                    if await self._heartbeat(backup_id, outcome.raw_bytes):
                        raise _CancelledByUser
        finally:
            if not uploads.done():
                uploads.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await uploads

    async def _claim(self, backup_id: int) -> DatabaseBackup | None:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
        async with self.database.sessionmaker() as session:
            repo = BackupRepository(session)
            claimed = await repo.transition(
                backup_id,
                from_statuses=(BackupStatus.pending, BackupStatus.in_progress),
                values={
                    "status": BackupStatus.in_progress,
                    "started_at": now,
                    "heartbeat_at": now,
                    "bytes_processed": 0,
                    "error_message": None,
                    "attempts": DatabaseBackup.attempts + 1,
                },
                extra=or_(
                    DatabaseBackup.status == BackupStatus.pending,
                    DatabaseBackup.heartbeat_at.is_(None),
                    DatabaseBackup.heartbeat_at < stale,
                ),
            )
            await session.commit()
            return await repo.get(backup_id) if claimed else None

    async def _reload(self, backup_id: int) -> DatabaseBackup:
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).get(backup_id)
        if backup is None:
            raise NotFound(f"Backup {backup_id} was not found.")
        return backup

    async def _target_for(self, backup: DatabaseBackup) -> TargetSpec:
        """The server and database the row backs up: its source's (or, for a row from
        before sources, DBKEEP_TARGET_URL's)."""
        if backup.source_id is None:
            return target_for(self.settings, backup.target_database)
        async with self.database.sessionmaker() as session:
            return await stored_source_target(session, backup.source_id, backup.target_database)

    async def _target_or_none(self, backup: DatabaseBackup) -> TargetSpec | None:
        """``_target_for``, or None when there is none (``run_backup`` says why)."""
        try:
            return await self._target_for(backup)
        except AppError:
            return None

    async def _record_estimate(self, backup_id: int, target: TargetSpec) -> int | None:
        try:
            estimate = await self.engine.estimate_size(target)
        except EngineError:
            return None  # the dump itself will report the real problem
        if estimate is None:
            return None
        async with self.database.sessionmaker() as session:
            await BackupRepository(session).transition(
                backup_id,
                from_statuses=(BackupStatus.in_progress,),
                values={"estimated_bytes": estimate},
            )
            await session.commit()
        return estimate

    async def _dump_with_heartbeat(
        self,
        backup_id: int,
        target: TargetSpec,
        writer: StorageWriter,
        compression: Compression,
        on_progress: ProgressCallback | None,
        recipients: list[str] | None = None,
    ) -> DumpOutcome:
        progress = _Progress()

        async def report(raw_bytes: int) -> None:
            await progress.update(raw_bytes)
            if on_progress is not None:
                await on_progress(raw_bytes)

        levels = {
            Compression.zstd: self.settings.zstd_level,
            Compression.gzip: self.settings.gzip_level,
        }
        dump = asyncio.create_task(
            dump_into(
                self.engine,
                target,
                writer,
                compression=compression,
                level=levels.get(compression),
                on_progress=report,
                encryption=encryptor(recipients) if recipients else None,
                # The engine of this target's own (a routing engine has none itself).
                observer=manifest_observer_of(engine_for(self.engine, target)),
            )
        )
        try:
            async with asyncio.timeout(self.settings.backup_timeout_seconds):
                while True:
                    done, _ = await asyncio.wait({dump}, timeout=HEARTBEAT_SECONDS)
                    if done:
                        return dump.result()
                    if await self._heartbeat(backup_id, progress.raw_bytes):
                        raise _CancelledByUser
        finally:
            if not dump.done():
                dump.cancel()
                # The engine kills its process group when cancelled; wait until it has.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await dump

    async def _heartbeat(self, backup_id: int, raw_bytes: int) -> bool:
        """Record progress; return True when a user asked to cancel."""
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).update_progress(
                backup_id, bytes_processed=raw_bytes, heartbeat_at=utcnow()
            )
            await session.commit()
        return backup is not None and backup.cancel_requested_at is not None

    async def _abort(self, writer: StorageWriter | None) -> None:
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer.abort())

    async def _update(self, backup_id: int, values: dict[str, Any]) -> DatabaseBackup:
        async with self.database.sessionmaker() as session:
            repo = BackupRepository(session)
            await repo.transition(
                backup_id, from_statuses=(BackupStatus.in_progress,), values=values
            )
            await session.commit()
            backup = await repo.get(backup_id)
        assert backup is not None
        return backup

    async def _release(self, backup_id: int, message: str) -> None:
        await self._update(
            backup_id,
            {"status": BackupStatus.pending, "error_message": message, "heartbeat_at": None},
        )

    async def _fail(
        self, backup_id: int, message: str, started: float, *, cancelled: bool = False
    ) -> DatabaseBackup:
        now = utcnow()
        log.warning(
            "backup.cancelled" if cancelled else "backup.failed",
            backup_id=backup_id,
            reason=message,
        )
        values: dict[str, Any] = {
            "status": BackupStatus.failed,
            "error_message": message,
            "file_size": 0,
            "completed_at": now,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
        if cancelled:
            values["cancelled_at"] = now  # the status is the original's; this says why
        async with self.database.sessionmaker() as session:
            await fail_unfinished(session, backup_id, message)
            await session.commit()
        backup = await self._update(backup_id, values)
        if not cancelled:  # a cancel is a person's choice, not a failure to alert anyone of
            await notify_backup_finished(self.database, self.settings, backup_id)
        return backup

    async def _cancelled_by(self, action: str, target_id: int) -> str:
        """Who asked for the cancel (the audit log's actor of ``action``), or "a user"."""
        return await cancelled_by(self.database, action, target_id)

    async def _complete(
        self,
        backup_id: int,
        outcome: DumpOutcome,
        size: int,
        started: float,
        encrypted: bool = False,
        *,
        degraded: bool = False,
    ) -> DatabaseBackup:
        """Mark the backup completed and tell the subscribed channels (``backup.degraded`` when
        a copy could not be stored)."""
        now = utcnow()
        backup = await self._update(
            backup_id,
            {
                "status": BackupStatus.completed,
                "file_size": size,
                "raw_size": outcome.raw_bytes,
                "bytes_processed": outcome.raw_bytes,
                "checksum_sha256": outcome.sha256,
                "dump_tool_version": outcome.tool_version[:255],
                "server_version": (outcome.server_version or "")[:255] or None,
                "completed_at": now,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "integrity_status": IntegrityStatus.ok,
                "verified_at": now,
                "encrypted": encrypted,
                # A completed backup's message is a warning about restoring it (e.g. a row over
                # the server's max_allowed_packet), said now rather than on the day of a restore.
                "error_message": outcome.warning,
                "manifest": outcome.manifest,
            },
        )
        if backup.status is not BackupStatus.completed:
            # The row left in_progress while we dumped (the reconciler failed it): nobody owns
            # the file now.
            async with self.database.sessionmaker() as session:
                places = await every_place(session, backup_id, backup.path, self.storage)
            await delete_objects(places)
        else:
            log.info("backup.completed", backup_id=backup_id, size=size, raw=outcome.raw_bytes)
            await notify_backup_finished(self.database, self.settings, backup_id, degraded=degraded)
        return backup

    # ---- copies ------------------------------------------------------------------------------

    async def retry_copy(self, backup_id: int, destination_id: int) -> str:
        """Copy a completed backup onto ``destination_id`` again, from another copy whose size
        and SHA-256 check out; return the copy's new status."""
        backup = await self._reload(backup_id)
        if backup.status is not BackupStatus.completed:
            return f"nothing to do: {backup.status.value}"
        async with self.database.sessionmaker() as session:
            repo = DestinationRepository(session)
            copy = await repo.copy(backup_id, destination_id)
            destination = await repo.get(destination_id)
            if copy is None or destination is None:
                return "gone"
            if copy.status == CopyStatus.stored.value:
                return copy.status
            place, bad = await first_intact(
                session,
                backup_id=backup_id,
                key=backup.path,
                size=backup.file_size,
                sha256=backup.checksum_sha256,
                fallback=self.storage,
                full=True,
            )
            await mark_failed(session, bad)
            copy.status = CopyStatus.uploading.value
            copy.error_message = None
            key = copy.storage_key
            try:
                target = CopyTarget(
                    destination.id, destination.name, bootstrap_or(destination, self.storage)
                )
            except AppError as exc:
                target = CopyTarget(destination.id, destination.name, None, exc.message)
            await session.commit()
        if place is None or place.destination_id == destination_id:
            result = CopyResult(target, None, "No intact copy is left to copy from.")
        else:
            result = await upload_copy(
                place.storage,
                place.key,
                target,
                size=backup.file_size,
                sha256=backup.checksum_sha256 or "",
                dest_key=key,
            )
        async with self.database.sessionmaker() as session:
            await record_copies(session, backup_id, [result], sha256=backup.checksum_sha256)
            await session.commit()
        log.info("backup.copy_retried", backup_id=backup_id, stored=result.stored)
        return (CopyStatus.stored if result.stored else CopyStatus.failed).value

    # ---- verification and loading ----------------------------------------------------------

    async def verify(self, backup_id: int) -> IntegrityStatus:
        """Re-read a completed backup's file and compare size and SHA-256 with the record."""
        backup = await self._reload(backup_id)
        status = await self._check_file(backup)
        await self.record_integrity(backup_id, status)
        return status

    async def record_integrity(self, backup_id: int, status: IntegrityStatus) -> None:
        """What a read of the whole file found (a verification, or a restore that read it)."""
        async with self.database.sessionmaker() as session:
            row = await BackupRepository(session).get(backup_id)
            if row is not None:
                row.integrity_status = status
                row.verified_at = utcnow()
                await session.commit()

    async def check_size(self, backup: DatabaseBackup) -> IntegrityStatus:
        """Whether a copy of the backup checks out (its size; its SHA-256 too when there is
        another copy to fall back to); the copy found is the one ``read`` reads. Copies found
        missing or damaged are marked failed."""
        async with self.database.sessionmaker() as session:
            place, bad = await first_intact(
                session,
                backup_id=backup.id,
                key=backup.path,
                size=backup.file_size or 0,
                sha256=backup.checksum_sha256,
                fallback=self.storage,
            )
            if bad:
                await mark_failed(session, bad)
                await session.commit()
        if place is not None:
            self._places[backup.id] = place
            return IntegrityStatus.ok
        self._places.pop(backup.id, None)
        if not bad or all(reason == MISSING for _, reason in bad):
            return IntegrityStatus.missing
        return IntegrityStatus.corrupt

    def read(self, backup: DatabaseBackup) -> AsyncIterator[bytes]:
        """The stored bytes of the copy ``check_size`` found intact (the fallback storage's
        file when it was not asked)."""
        place = self._places.get(backup.id)
        if place is None:
            return self.storage.read(backup.path)
        return place.storage.read(place.key)

    async def _check_file(self, backup: DatabaseBackup) -> IntegrityStatus:
        status = await self.check_size(backup)
        if status is not IntegrityStatus.ok:
            return status
        try:
            digest, read = await sha256_of(self.read(backup))
        except FileNotFoundError:
            return IntegrityStatus.missing
        if read != backup.file_size or digest != backup.checksum_sha256:
            return IntegrityStatus.corrupt
        return IntegrityStatus.ok

    async def load(
        self,
        backup_id: int,
        *,
        target: TargetSpec,
        on_progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """Load a completed, intact backup into ``target``; refuse anything else with 409."""
        backup = await self._reload(backup_id)
        if backup.status is not BackupStatus.completed:
            raise Conflict(
                f"Backup {backup_id} is {backup.status.value}; "
                "only completed backups can be restored."
            )
        status = await self.verify(backup_id)
        if status is not IntegrityStatus.ok:
            what = "missing" if status is IntegrityStatus.missing else "damaged (checksum mismatch)"
            raise Conflict(f"Backup {backup_id} can't be restored: its file is {what}.")
        keys = await keys_for_backup(self.database, encrypted=backup.encrypted)
        async with decrypted(self.read(backup), keys) as plain:
            await self.engine.restore(
                target,
                plain,
                compression=Compression(backup.compression),
                on_progress=on_progress,
            )
