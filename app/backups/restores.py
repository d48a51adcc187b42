"""Running one restore operation safely: safety backup, load, and roll back on failure.

A restore is tracked like a backup (table ``backup_restores``). Before anything is loaded, the
target is backed up (a ``pre_restore`` backup, kept like any other). A restore ends in one of two
states: the backup's database, or the database as it was (``rolled_back``, with the reason).

* The target is ``target_database`` on the operation's target source (another database name, or
  another source of the same engine, or -- by default -- where the backup came from); the
  backup's own database is never touched when it is not the target. A target that does not
  exist yet has nothing to back up: no safety backup, and a failed load drops what it created.
* The load makes the backup's database exactly: the target is dropped and created again with its
  own character set and collation, then the dump is loaded, so objects the backup doesn't have are
  gone (they are in the safety backup) -- unless the operation asks to keep them
  (``keep_existing_objects``: the dump is loaded over the database as it is).
* Every object the dump creates (read from the file while it loads) must exist afterwards; one
  missing fails the load.
* A failed, timed-out or cancelled load is rolled back, with its own time budget: the target is
  created again with its character set and collation and the safety backup is replayed as
  written, in one session (no parallel splitting: dbkeep's own dump, the simplest path), and
  checked the same way; a rollback that fails is tried once more. Loading into a scratch database
  and swapping is not possible in general on MariaDB: ``RENAME TABLE`` across databases refuses
  tables with triggers and views, and routines and events can't be moved at all.

Like the backup runner, ``run_restore`` is idempotent: it acts only
on a ``pending`` operation or an ``in_progress`` one whose heartbeat went silent (its worker died),
which it resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_

from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    IntegrityStatus,
    RestoreOperation,
    RestorePhase,
    RestoreStatus,
)
from app.backups.repository import BackupRepository, RestoreRepository
from app.backups.runner import (
    HEARTBEAT_SECONDS,
    BackupRunner,
    NothingToRun,
    TransientBackupFailure,
    cancelled_by,
)
from app.backups.service import new_backup_row, target_for
from app.config import Settings
from app.db import Database, utcnow
from app.engines.base import (
    DatabaseEngine,
    DatabaseOptions,
    DbObject,
    EngineError,
    SchemaState,
    TargetSpec,
    describe_objects,
    missing_objects,
)
from app.engines.routing import engine_for
from app.errors import AppError, Conflict, NotFound
from app.notifications.service import notify_restore_finished
from app.pipeline.checksum import verified
from app.pipeline.compression import Compression
from app.pipeline.tee import tee
from app.sources.models import Source
from app.sources.repository import SourceRepository
from app.sources.service import stored_source_target
from app.storage.base import BackupStorage, StorageError

log = structlog.get_logger("dbkeep.restore")

# The first try plus one resume after a worker died mid-way; a third start rolls back instead,
# in case the restore itself is what kills the worker.
MAX_RESTORE_ATTEMPTS = 2


CANCELLED_BEFORE_CHANGES = "before the database was changed."


class _LoadFailed(Exception):
    def __init__(self, reason: str, *, cancelled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cancelled = cancelled  # a user's cancel stopped the load: not a failure


@dataclass(frozen=True)
class RestoreJob:
    """A restore operation a job is about to run, and the database it works on."""

    restore_id: int
    target_database: str | None
    target: TargetSpec | None  # None: no usable target (the run fails saying why)


class RestoreRunner:
    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        engine: DatabaseEngine,
        storage: BackupStorage,
        backup_runner: BackupRunner | None = None,
        on_phase: Callable[[RestorePhase, int | None], None] | None = None,
    ) -> None:
        self.database = database
        # Told each phase (and its total) as it is entered: a terminal's bar shows every one, even
        # a safety backup over before the next look at the row.
        self.on_phase = on_phase
        self.settings = settings
        self.engine = engine
        self.storage = storage
        self.backups = backup_runner or BackupRunner(
            database=database, settings=settings, engine=engine, storage=storage
        )

    @classmethod
    def from_runtime(
        cls, runtime: Any, *, on_phase: Callable[[RestorePhase, int | None], None] | None = None
    ) -> RestoreRunner:
        """A runner over an ``app.bootstrap.Bootstrap``'s store, storage and engine."""
        return cls(
            database=runtime.database,
            settings=runtime.settings,
            engine=runtime.engine,
            storage=runtime.storage,
            backup_runner=runtime.backup_runner(),
            on_phase=on_phase,
        )

    async def restore_job(self, restore_id: int) -> RestoreJob | NothingToRun:
        """What a job queued for ``restore_id`` runs: a ``pending`` or ``in_progress`` operation
        (``run_restore`` decides whether it may take it over), else nothing."""
        async with self.database.sessionmaker() as session:
            operation = await RestoreRepository(session).get(restore_id)
        if operation is None:
            return NothingToRun("gone")
        if operation.status not in (RestoreStatus.pending, RestoreStatus.in_progress):
            return NothingToRun(f"nothing to do: {operation.status.value}")
        return RestoreJob(
            restore_id=restore_id,
            target_database=operation.target_database,
            target=await self._target_or_none(operation),
        )

    async def refuse_beside(self, restore_id: int, *, running: str) -> bool:
        """Fail a ``pending`` restore because another restore of its database (``running``) got
        there first: loading both, one after the other, is never what anyone meant. Whether it
        was still pending."""
        message = (
            f"Another restore of this database ({running}) was running; this one was not started."
        )
        async with self.database.sessionmaker() as session:
            refused = await RestoreRepository(session).transition(
                restore_id,
                from_statuses=(RestoreStatus.pending,),
                values={
                    "status": RestoreStatus.failed,
                    "phase": RestorePhase.finished,
                    "error_message": message,
                    "completed_at": utcnow(),
                },
            )
            await session.commit()
        log.warning("restore.refused", restore_id=restore_id, holder=running)
        return refused

    async def run_restore(self, restore_id: int) -> RestoreOperation:
        """Restore one operation's backup; leave it completed, failed or rolled back."""
        operation = await self._claim(restore_id)
        if operation is None:
            return await self._reload(restore_id)
        log.info("restore.started", restore_id=restore_id, attempt=operation.attempts)
        started = time.monotonic()
        progress = _Progress()
        heartbeat = asyncio.create_task(self._keep_heartbeat(restore_id, progress))
        cancel_asked = asyncio.create_task(self._wait_for_cancel(restore_id))
        try:
            target = await self._target_for(operation)
            if operation.attempts > MAX_RESTORE_ATTEMPTS:
                return await self._roll_back(
                    operation,
                    target,
                    "the worker stopped during every attempt",
                    started,
                    progress=progress,
                )
            try:
                safety_id = await self._safety_backup(operation, target, progress)
            except _RestoreRefused:
                if cancel_asked.done():  # the safety backup was stopped for the cancel
                    raise await self._cancelled_before_changes(restore_id) from None
                raise
            if cancel_asked.done() or await self._cancel_requested(restore_id):
                raise await self._cancelled_before_changes(restore_id)
            before = await self._inspect(target)
            existed = before.options is not None
            total = await self._raw_size(operation.backup_id)
            await self._enter_phase(restore_id, RestorePhase.loading, progress, total=total)
            try:
                await self._load_unless_cancelled(
                    operation, target, progress, cancel_asked, before.options
                )
            except _LoadFailed as exc:
                return await self._roll_back(
                    operation,
                    target,
                    exc.reason,
                    started,
                    safety_id,
                    progress=progress,
                    cancelled=exc.cancelled,
                    options=before.options,
                    existed=existed,
                )
            # Progress reports are throttled to one a second, so a short load may never have
            # reported; a completed load read the whole backup.
            loaded = max(progress.bytes, total or 0)
            return await self._finish(
                restore_id, RestoreStatus.completed, None, started, bytes_done=loaded
            )
        except asyncio.CancelledError:
            # The worker is stopping: make the operation look abandoned at once so the rerun
            # (arq queues it again) resumes it instead of waiting for the heartbeat timeout.
            await asyncio.shield(self._abandon(restore_id))
            log.warning("restore.interrupted", restore_id=restore_id)
            raise
        except _RestoreRefused as exc:
            return await self._finish(
                restore_id, RestoreStatus.failed, exc.message, started, cancelled=exc.cancelled
            )
        except AppError as exc:
            return await self._finish(restore_id, RestoreStatus.failed, exc.message, started)
        except Exception:
            log.exception("restore.crashed", restore_id=restore_id)
            return await self._finish(
                restore_id,
                RestoreStatus.failed,
                "The restore failed unexpectedly; see the worker log.",
                started,
            )
        finally:
            for task in (heartbeat, cancel_asked):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ---- claiming and bookkeeping ------------------------------------------------------------

    async def _claim(self, restore_id: int) -> RestoreOperation | None:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
        async with self.database.sessionmaker() as session:
            repo = RestoreRepository(session)
            claimed = await repo.transition(
                restore_id,
                from_statuses=(RestoreStatus.pending, RestoreStatus.in_progress),
                values={
                    "status": RestoreStatus.in_progress,
                    "heartbeat_at": now,
                    "attempts": RestoreOperation.attempts + 1,
                },
                extra=or_(
                    RestoreOperation.status == RestoreStatus.pending,
                    RestoreOperation.heartbeat_at.is_(None),
                    RestoreOperation.heartbeat_at < stale,
                ),
            )
            if claimed:
                operation = await repo.get(restore_id)
                assert operation is not None
                if operation.started_at is None:
                    operation.started_at = now
            await session.commit()
            return operation if claimed else None

    async def _reload(self, restore_id: int) -> RestoreOperation:
        async with self.database.sessionmaker() as session:
            operation = await RestoreRepository(session).get(restore_id)
        if operation is None:
            raise NotFound(f"Restore {restore_id} was not found.")
        return operation

    async def _target_for(self, operation: RestoreOperation) -> TargetSpec:
        """Where the restore loads: the database it names on its target source; for an
        operation that names none (recorded before restores named one), its backup's source
        (or, for a backup from before sources, DBKEEP_TARGET_URL's server)."""
        async with self.database.sessionmaker() as session:
            if operation.target_source_id is not None:
                return await stored_source_target(
                    session, operation.target_source_id, operation.target_database
                )
            backup = await BackupRepository(session).get(operation.backup_id)
            if backup is None or backup.source_id is None:
                return target_for(self.settings, operation.target_database)
            return await stored_source_target(session, backup.source_id, operation.target_database)

    async def _source_of(self, operation: RestoreOperation) -> Source | None:
        """The source the restore loads into (its safety backup is that source's)."""
        async with self.database.sessionmaker() as session:
            source_id = operation.target_source_id
            if source_id is None:
                backup = await BackupRepository(session).get(operation.backup_id)
                source_id = backup.source_id if backup is not None else None
            if source_id is None:
                return None
            return await SourceRepository(session).get(source_id)

    async def _target_or_none(self, operation: RestoreOperation) -> TargetSpec | None:
        try:
            return await self._target_for(operation)
        except AppError:
            return None

    async def _update(self, restore_id: int, values: dict[str, Any]) -> bool:
        async with self.database.sessionmaker() as session:
            changed = await RestoreRepository(session).transition(
                restore_id, from_statuses=(RestoreStatus.in_progress,), values=values
            )
            await session.commit()
        return changed

    async def _enter_phase(
        self, restore_id: int, phase: RestorePhase, progress: _Progress, *, total: int | None
    ) -> None:
        """Say what the restore does now; its bytes and total (None: no estimate) start over
        for that phase, so a safety backup or a rollback is never measured against the load."""
        progress.bytes = 0
        await self._update(restore_id, {"phase": phase, "bytes_processed": 0, "total_bytes": total})
        log.info("restore.phase", restore_id=restore_id, phase=phase.value, total_bytes=total)
        if self.on_phase is not None:
            self.on_phase(phase, total)

    async def _raw_size(self, backup_id: int) -> int | None:
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).get(backup_id)
        return None if backup is None else backup.raw_size

    async def _cancelled_before_changes(self, restore_id: int) -> _RestoreRefused:
        who = await cancelled_by(self.database, "restore.cancel", restore_id)
        return _RestoreRefused(f"Cancelled by {who} {CANCELLED_BEFORE_CHANGES}", cancelled=True)

    async def _keep_heartbeat(self, restore_id: int, progress: _Progress) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):  # a missed beat is not worth stopping for
                await self._update(
                    restore_id, {"heartbeat_at": utcnow(), "bytes_processed": progress.bytes}
                )

    async def _cancel_requested(self, restore_id: int) -> bool:
        return (await self._reload(restore_id)).cancel_requested_at is not None

    async def _wait_for_cancel(self, restore_id: int) -> None:
        """Return once someone asked to cancel this restore (read as often as the heartbeat);
        a safety backup still running is asked to stop too."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):  # a missed look is not worth stopping for
                operation = await self._reload(restore_id)
                if operation.cancel_requested_at is not None:
                    await self._stop_safety_backup(operation)
                    return

    async def _stop_safety_backup(self, operation: RestoreOperation) -> None:
        if operation.safety_backup_id is None:
            return
        async with self.database.sessionmaker() as session:
            await BackupRepository(session).transition(
                operation.safety_backup_id,
                from_statuses=(BackupStatus.in_progress,),
                values={"cancel_requested_at": utcnow()},
            )
            await session.commit()

    async def _abandon(self, restore_id: int) -> None:
        with contextlib.suppress(Exception):
            await self._update(restore_id, {"heartbeat_at": None})

    async def _finish(
        self,
        restore_id: int,
        status: RestoreStatus,
        message: str | None,
        started: float,
        *,
        bytes_done: int | None = None,
        cancelled: bool = False,
    ) -> RestoreOperation:
        now = utcnow()
        values: dict[str, Any] = {
            "status": status,
            "phase": RestorePhase.finished,
            "error_message": message,
            "completed_at": now,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
        if bytes_done is not None:
            values["bytes_processed"] = bytes_done
        if cancelled:
            values["cancelled_at"] = now  # the status is the contract's; this says why
        await self._update(restore_id, values)
        event = "restore.completed" if status is RestoreStatus.completed else f"restore.{status}"
        if cancelled:
            event = "restore.cancelled"
        log.info(event, restore_id=restore_id, reason=message)
        await notify_restore_finished(self.database, self.settings, restore_id)
        return await self._reload(restore_id)

    # ---- the safety backup -------------------------------------------------------------------

    async def _safety_backup(
        self, operation: RestoreOperation, target: TargetSpec, progress: _Progress
    ) -> int | None:
        """Back the target up first (reusing the one a previous attempt made); its id, or None
        when none is taken: not asked for, or the database doesn't exist yet (nothing to back
        up; the restore creates it)."""
        if not operation.use_safety_backup:
            return None
        if operation.safety_backup_id is None and not await self._exists(target):
            log.info(
                "restore.safety_backup_skipped",
                restore_id=operation.id,
                reason="nothing to back up: the database does not exist yet",
            )
            return None
        # The phase's total is the safety backup's own estimate (None when there is none).
        try:
            estimate = await self.engine.estimate_size(target)
        except EngineError:
            estimate = None  # the dump itself will report the real problem
        await self._enter_phase(operation.id, RestorePhase.safety_backup, progress, total=estimate)
        safety_id = operation.safety_backup_id
        if safety_id is None:
            safety_id = await self._new_safety_backup(operation)
        backup = await self._run_safety_backup(safety_id, progress)
        if backup.status is not BackupStatus.completed:
            reason = backup.error_message or f"it is {backup.status.value}"
            raise _RestoreRefused(
                f"The safety backup of the target failed ({reason.rstrip('.')}); "
                "the database was not changed."
            )
        return safety_id

    async def _new_safety_backup(self, operation: RestoreOperation) -> int:
        backup = new_backup_row(
            self.settings,
            database=(await self._target_for(operation)).database,
            trigger=BackupTrigger.pre_restore,
            created_by=operation.requested_by,
            source=await self._source_of(operation),
        )
        async with self.database.sessionmaker() as session:
            BackupRepository(session).add(backup)
            await session.flush()
            # Recorded in the same transaction, so a resumed attempt finds and reuses it.
            await RestoreRepository(session).transition(
                operation.id,
                from_statuses=(RestoreStatus.in_progress,),
                values={"safety_backup_id": backup.id},
            )
            await session.commit()
        log.info("restore.safety_backup", restore_id=operation.id, backup_id=backup.id)
        return backup.id

    async def _run_safety_backup(self, backup_id: int, progress: _Progress) -> DatabaseBackup:
        attempts = self.settings.transient_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await self.backups.run_backup(
                    backup_id, attempt=attempt, max_attempts=attempts, on_progress=progress
                )
            except TransientBackupFailure:
                await asyncio.sleep(min(30, 2**attempt))
        raise AssertionError("unreachable: the last attempt never raises TransientBackupFailure")

    # ---- loading and rolling back ------------------------------------------------------------

    async def _exists(self, target: TargetSpec) -> bool:
        """Whether the target database exists (a restore into a new name creates it)."""
        return (await self._inspect(target)).options is not None

    async def _inspect(self, target: TargetSpec) -> SchemaState:
        """The target as it is before the load (its character set and collation, its objects)."""
        try:
            return await self.engine.inspect(target)
        except EngineError as exc:
            raise _RestoreRefused(
                f"The target database could not be read ({exc.message.rstrip('.')}); "
                "it was not changed."
            ) from None

    async def _loadable(self, backup_id: int) -> DatabaseBackup:
        """The backup, if it is completed and its file is there with the recorded size;
        ``Conflict`` otherwise. Its SHA-256 is checked while it loads (``_load_and_check``)."""
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).get(backup_id)
        if backup is None:
            raise Conflict(f"Backup {backup_id} no longer exists.")
        if backup.status is not BackupStatus.completed:
            raise Conflict(
                f"Backup {backup_id} is {backup.status.value}; "
                "only completed backups can be restored."
            )
        status = await self.backups.check_size(backup)
        if status is not IntegrityStatus.ok:
            await self.backups.record_integrity(backup_id, status)
            what = "missing" if status is IntegrityStatus.missing else "damaged (its size differs)"
            raise Conflict(f"Backup {backup_id} can't be restored: its file is {what}.")
        return backup

    async def _load_and_check(
        self,
        backup: DatabaseBackup,
        target: TargetSpec,
        *,
        on_progress: _Progress | None,
        single_stream: bool,
    ) -> None:
        """Load ``backup`` into ``target`` from one read of its file, checked against the
        recorded SHA-256 as it streams and read on the side for the objects it declares; raise
        ``EngineError`` when the load fails, the file is not the one recorded (before the
        dump's last bytes reach the server) or a declared object is missing afterwards."""
        compression = Compression(backup.compression)
        damaged = asyncio.Event()
        stored = verified(
            self.storage.read(backup.path),
            size=backup.file_size or 0,
            sha256=backup.checksum_sha256,
            what=f"the file of backup {backup.id}",
            on_mismatch=damaged.set,
        )
        try:
            async with tee(stored, 2) as (load_stream, scan_stream):
                scan = asyncio.create_task(
                    engine_for(self.engine, target).declared_objects(
                        scan_stream, compression=compression
                    )
                )
                try:
                    await self.engine.restore(
                        target,
                        load_stream,
                        compression=compression,
                        on_progress=on_progress,
                        single_stream=single_stream,
                    )
                    declared = await scan
                finally:
                    if not scan.done():
                        scan.cancel()
                    with contextlib.suppress(BaseException):
                        await scan
        except EngineError:
            # A load stopped early never read the file to its end: whether the file changed
            # after the backup (rather than the server refusing it) takes a read of its own.
            if damaged.is_set() or await self.backups.verify(backup.id) is IntegrityStatus.corrupt:
                await self.backups.record_integrity(backup.id, IntegrityStatus.corrupt)
                raise EngineError(
                    f"the file of backup {backup.id} is damaged: it does not match the SHA-256 "
                    "recorded at backup time (it changed afterwards), so the load was stopped"
                ) from None
            raise
        await self.backups.record_integrity(backup.id, IntegrityStatus.ok)
        await self._check_objects(target, declared)

    async def _check_objects(self, target: TargetSpec, declared: set[DbObject]) -> None:
        existing = (await self.engine.inspect(target)).objects
        missing = missing_objects(declared, existing)
        if missing:
            raise EngineError(
                f"{len(missing)} of the {len(declared)} objects the backup creates are missing "
                f"after the load: {describe_objects(missing)}"
            )

    async def _load(
        self,
        operation: RestoreOperation,
        target: TargetSpec,
        progress: _Progress,
        options: DatabaseOptions | None,
    ) -> None:
        """Load the chosen backup; ``_LoadFailed`` once the target may have been changed."""
        try:
            backup = await self._loadable(operation.backup_id)
        except Conflict as exc:
            # Refused before loading (state, missing or damaged file): nothing was changed.
            raise _RestoreRefused(exc.message) from None
        # ``options`` None: the database doesn't exist yet; it is created either way.
        keep = operation.keep_existing_objects and options is not None
        try:
            async with asyncio.timeout(self.settings.restore_timeout_seconds):
                if not keep:
                    # The backup's database exactly: nothing the backup doesn't have survives.
                    await self.engine.recreate_database(target, options=options)
                await self._load_and_check(
                    backup, target, on_progress=progress, single_stream=False
                )
        except TimeoutError:
            limit = self.settings.restore_timeout_seconds
            raise _LoadFailed(f"the load timed out after {limit} seconds") from None
        except (EngineError, StorageError) as exc:
            raise _LoadFailed(exc.message.rstrip(".")) from None
        except AppError as exc:
            raise _LoadFailed(exc.message.rstrip(".")) from None
        except FileNotFoundError:
            raise _LoadFailed("the backup file disappeared during the load") from None

    async def _load_unless_cancelled(
        self,
        operation: RestoreOperation,
        target: TargetSpec,
        progress: _Progress,
        cancel_asked: asyncio.Task[None],
        options: DatabaseOptions | None,
    ) -> None:
        """``_load``, stopped (its clients killed) as soon as a cancel is asked for."""
        load = asyncio.create_task(self._load(operation, target, progress, options))
        try:
            await asyncio.wait({load, cancel_asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not load.done():
                load.cancel()
                with contextlib.suppress(asyncio.CancelledError, _LoadFailed, _RestoreRefused):
                    await load
        if load.cancelled():
            log.warning("restore.cancelled", restore_id=operation.id)
            raise _LoadFailed("it was cancelled", cancelled=True)
        load.result()

    async def _roll_back(
        self,
        operation: RestoreOperation,
        target: TargetSpec,
        reason: str,
        started: float,
        safety_id: int | None = None,
        *,
        progress: _Progress,
        cancelled: bool = False,
        options: DatabaseOptions | None = None,
        existed: bool = True,
    ) -> RestoreOperation:
        # A cancel is the user's choice: said as such, never "the restore failed".
        if cancelled:
            who = await cancelled_by(self.database, "restore.cancel", operation.id)
            opening = f"Cancelled by {who} during the load"
        else:
            opening = f"The restore failed: {reason}"
        safety_id = safety_id or await self._completed_safety_backup(operation)
        if safety_id is None and not existed:
            return await self._drop_created(operation, target, opening, started, cancelled)
        if safety_id is None:
            if not operation.use_safety_backup:
                message = (
                    f"{opening}. No safety backup was taken, so the database "
                    "may be partly restored."
                )
            else:
                message = f"{opening}. The database was not changed."
            return await self._finish(
                operation.id, RestoreStatus.failed, message, started, cancelled=cancelled
            )
        log.warning("restore.rolling_back", restore_id=operation.id, reason=reason)
        total = await self._raw_size(safety_id)
        await self._enter_phase(operation.id, RestorePhase.rolling_back, progress, total=total)
        problem = await self._put_back(target, safety_id, options, progress)
        if problem is not None:
            message = (
                f"{opening}. Putting the database back from safety backup {safety_id} failed "
                f"too ({problem}): the database is neither the backup's nor as it was; "
                f"restore backup {safety_id} by hand."
            )
            return await self._finish(
                operation.id, RestoreStatus.failed, message, started, cancelled=cancelled
            )
        message = (
            f"{opening}; the database was put back as it was before "
            f"(from safety backup {safety_id})."
        )
        return await self._finish(
            operation.id, RestoreStatus.rolled_back, message, started, cancelled=cancelled
        )

    async def _drop_created(
        self,
        operation: RestoreOperation,
        target: TargetSpec,
        opening: str,
        started: float,
        cancelled: bool,
    ) -> RestoreOperation:
        """Put a target that did not exist before the restore back as it was: absent."""
        try:
            await self.engine.drop_database(target)
        except EngineError as exc:
            message = (
                f"{opening}. The database did not exist before; dropping the partly restored "
                f"one failed ({exc.message.rstrip('.')}): drop it by hand."
            )
            return await self._finish(
                operation.id, RestoreStatus.failed, message, started, cancelled=cancelled
            )
        message = (
            f"{opening}; the database did not exist before, so the partly restored one was dropped."
        )
        return await self._finish(
            operation.id, RestoreStatus.rolled_back, message, started, cancelled=cancelled
        )

    async def _put_back(
        self,
        target: TargetSpec,
        safety_id: int,
        options: DatabaseOptions | None,
        progress: _Progress,
    ) -> str | None:
        """Recreate the target and replay the safety backup in one session, checked like a
        restore, within its own time budget; tried twice. None when done, else why not."""
        if options is None:
            # A resumed attempt: the load never changes the database's own defaults.
            with contextlib.suppress(EngineError):
                options = (await self.engine.inspect(target)).options
        limit = self.settings.restore_timeout_seconds
        problem = f"it did not finish within {limit} seconds"
        try:
            async with asyncio.timeout(limit):
                for attempt in (1, 2):
                    try:
                        backup = await self._loadable(safety_id)
                        await self.engine.recreate_database(target, options=options)
                        await self._load_and_check(
                            backup, target, on_progress=progress, single_stream=True
                        )
                        return None
                    except Conflict as exc:
                        return exc.message.rstrip(".")  # the file itself: trying again won't help
                    except (EngineError, StorageError, AppError) as exc:
                        problem = exc.message.rstrip(".")
                    except FileNotFoundError:
                        problem = "the safety backup's file disappeared"
                    log.warning("restore.roll_back_failed", attempt=attempt, reason=problem)
        except TimeoutError:
            return f"it did not finish within {limit} seconds"
        return problem

    async def _completed_safety_backup(self, operation: RestoreOperation) -> int | None:
        if operation.safety_backup_id is None:
            return None
        async with self.database.sessionmaker() as session:
            backup = await BackupRepository(session).get(operation.safety_backup_id)
        if backup is None or backup.status is not BackupStatus.completed:
            return None
        return backup.id


class _RestoreRefused(Exception):
    """The restore stopped before the target was touched."""

    def __init__(self, message: str, *, cancelled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.cancelled = cancelled


class _Progress:
    """Bytes loaded so far; passed to the engine as its progress callback."""

    def __init__(self) -> None:
        self.bytes = 0

    async def __call__(self, done: int) -> None:
        self.bytes = done
