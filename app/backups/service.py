"""The backup use cases, shared by the API, the CLI and the worker.

Each public method is one use case: it validates state, changes rows through the repository,
records an audit event, commits once, and only then talks to the queue or deletes files.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.backups.export import csv_chunks, export_filename
from app.backups.imports import store_upload
from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    IntegrityStatus,
    RestoreOperation,
    RestorePhase,
    RestoreStatus,
)
from app.backups.naming import backup_filename, download_name, storage_key
from app.backups.repository import (
    RUNNING_BACKUP,
    BackupRecord,
    BackupRepository,
    ListFilters,
    RestoreRepository,
    SortKey,
    StatisticsRow,
    View,
)
from app.backups.retention import (
    RetentionRepository,
    RetentionScope,
    global_scope,
    plan_scope,
    source_scope,
)
from app.config import Settings
from app.db import utcnow
from app.destinations.copies import (
    MISSING,
    Place,
    copy_reads,
    delete_objects,
    every_place,
    first_intact,
    mark_failed,
)
from app.destinations.schemas import CopyRead
from app.engines.base import DatabaseEngine, TargetSpec, validate_database_name
from app.engines.registry import is_system_database
from app.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from app.pipeline.checksum import verified
from app.pipeline.codecs import CorruptStream, PipelineError, decompress_stream
from app.pipeline.compression import Compression
from app.queue import JobQueue
from app.sources.models import DEFAULT_SOURCE, Source, SourceEngine
from app.sources.repository import SourceRepository
from app.sources.retention import RetentionDecision
from app.sources.service import target_of
from app.storage.base import BackupStorage, StorageError

__all__ = [
    "BackupService",
    "BulkItemResult",
    "CsvExport",
    "Download",
    "Page",
    "RestoreTarget",
    "SortKey",
    "Statistics",
    "View",
]

FINISHED = (BackupStatus.completed, BackupStatus.failed)

log = structlog.get_logger("dbkeep.backups")
_T = TypeVar("_T")


async def size_check(storage: BackupStorage, backup: DatabaseBackup) -> IntegrityStatus:
    """The cheap part of a verification: the file is there, a regular file dbkeep wrote, with
    the recorded size (its SHA-256 takes a read of the whole file)."""
    try:
        size = await storage.size(backup.path)
    except StorageError:  # not a regular file dbkeep wrote (a symlink, say)
        return IntegrityStatus.corrupt
    if size is None:
        return IntegrityStatus.missing
    if size != backup.file_size:
        return IntegrityStatus.corrupt
    return IntegrityStatus.ok


async def started(chunks: AsyncIterator[bytes], *, backup_id: int) -> AsyncIterator[bytes]:
    """``chunks`` with its first chunk read already, so that a file that vanished or is damaged
    is a 404 or a 409 before anything is sent, not a response cut off after its headers."""
    try:
        first = await anext(chunks, None)
    except FileNotFoundError:
        await _close(chunks)
        raise NotFound(f"The file of backup {backup_id} is gone.") from None
    except CorruptStream:
        await _close(chunks)
        raise Conflict(f"The file of backup {backup_id} is damaged; it can't be read.") from None
    return _resumed(first, chunks)


async def _resumed(first: _T | None, rest: AsyncIterator[_T]) -> AsyncIterator[_T]:
    """``first`` (already read; None: there was nothing), then the rest of ``rest``."""
    try:
        if first is not None:
            yield first
            async for item in rest:
                yield item
    finally:
        await _close(rest)


async def _close(chunks: AsyncIterator[Any]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


@dataclass(frozen=True)
class Page:
    items: list[BackupRecord]
    total: int
    page: int
    per_page: int

    @property
    def last_page(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass(frozen=True)
class Statistics(StatisticsRow):
    """The counts and sizes, plus the newest and oldest completed backups."""

    latest_backup: BackupRecord | None
    oldest_backup: BackupRecord | None
    # The retention in force, so a client can tell when each backup will be trashed or purged.
    trash_after_days: float
    purge_after_days: float


@dataclass(frozen=True)
class CsvExport:
    filename: str
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class BulkItemResult:
    id: int
    success: bool
    status: int  # the HTTP status this item would have had on its own
    message: str


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    size: int | None
    chunks: AsyncIterator[bytes]


def target_from_settings(settings: Settings) -> TargetSpec:
    """The configured target database, or a 409 that tells the operator what to set."""
    if settings.target_url is None or not settings.target_url.get_secret_value():
        raise Conflict(
            "No target database is configured: set DBKEEP_TARGET_URL "
            "(e.g. mysql://user:password@127.0.0.1:3306/shop)."
        )
    try:
        return TargetSpec.from_url(settings.target_url.get_secret_value())
    except ValueError as exc:
        raise Conflict(f"DBKEEP_TARGET_URL is not usable: {exc}.") from None


def target_for(settings: Settings, database: str | None) -> TargetSpec:
    """The configured target, pointed at ``database`` when a row recorded another one."""
    target = target_from_settings(settings)
    if database and database != target.database:
        target = target.with_database(database)
    return target


def new_backup_row(
    settings: Settings,
    *,
    database: str,
    trigger: BackupTrigger,
    created_by: int | None,
    schedule_slot: str | None = None,
    source: Source | None = None,
) -> DatabaseBackup:
    """A ``pending`` backup row of ``database`` with a server-made name and storage key; the
    name starts with the source's unless it is the ``default`` one (as part 1 named them)."""
    now = utcnow()
    uid = secrets.token_hex(16)
    compression = settings.compression
    named = database
    if source is not None and source.name != DEFAULT_SOURCE:
        named = f"{source.name}_{database}"
    filename = backup_filename(
        database=named, taken_at=now, unique_identifier=uid, compression=compression
    )
    return DatabaseBackup(
        filename=filename,
        unique_identifier=uid,
        path=storage_key(filename, now),
        file_size=0,
        status=BackupStatus.pending,
        backup_date=now,
        created_by=created_by,
        compression=compression.value,
        trigger=trigger,
        target_database=database,
        source_id=source.id if source is not None else None,
        schedule_slot=schedule_slot,
        bytes_processed=0,
        attempts=0,
    )


def _not_found(backup_id: int) -> NotFound:
    return NotFound(f"Backup {backup_id} was not found.")


class _Transitions(Protocol):
    async def transition(
        self, row_id: int, /, *, from_statuses: Sequence[Any], values: dict[str, Any]
    ) -> bool: ...


async def _stop_or_flag(
    rows: _Transitions, row_id: int, status: BackupStatus | RestoreStatus, *, message: str
) -> bool | None:
    """Cancel a pending backup or restore at once (failed with ``message``), or flag a running
    one for its worker; whether the row changed, None when it is in neither state."""
    states = type(status)  # BackupStatus and RestoreStatus name these states alike
    now = utcnow()
    if status is states.pending:
        values: dict[str, Any] = {
            "status": states.failed,
            "error_message": message,
            "cancel_requested_at": now,
            "cancelled_at": now,  # a cancel, not a failure
            "completed_at": now,
        }
        if states is RestoreStatus:
            values["phase"] = RestorePhase.finished
    elif status is states.in_progress:
        values = {"cancel_requested_at": now}
    else:
        return None
    return await rows.transition(row_id, from_statuses=(status,), values=values)


def _target_taken(exc: DBAPIError) -> bool:
    """Whether a failed insert or update broke one of ``target_activity``'s checks (migration
    0007): another restore, or a backup beside a restore, holds the target."""
    return "ck_target_activity" in str(exc.orig)


@dataclass(frozen=True)
class RestoreTarget:
    """Where a restore loads: a database on a source's server (``source`` None: part 1's
    DBKEEP_TARGET_URL, for a backup from before sources)."""

    source: Source | None
    spec: TargetSpec

    @property
    def database(self) -> str:
        return self.spec.database


def _restorable_name(database: str) -> str:
    """A database a restore may drop and create: a valid name, never a system database."""
    try:
        validate_database_name(database)
    except ValueError as exc:
        raise ValidationFailed(
            f"{database!r} is not a database name.", errors={"database": [str(exc)]}
        ) from None
    if is_system_database(database):
        raise ValidationFailed(
            f"{database!r} is a system database; a backup is never restored into it.",
            errors={"database": ["a system database"]},
        )
    return database


def _default_database(source: Source, backup_database: str | None) -> str:
    """The database of another source a restore loads when none is named: the source's only
    one, else the backup's own name if the source has it; 422 when that leaves a choice."""
    if source.all_databases:
        raise ValidationFailed(
            f"Source {source.name!r} backs up every database on its server: name the database "
            "to restore into.",
            errors={"database": ["required for a source of every database"]},
        )
    if len(source.databases) == 1:
        return source.databases[0]
    if backup_database is not None and backup_database in source.databases:
        return backup_database
    raise ValidationFailed(
        f"Source {source.name!r} has several databases: name the one to restore into.",
        errors={"database": ["required: the source has several databases"]},
    )


def _state_conflict(backup: DatabaseBackup, action: str) -> Conflict:
    state = backup.status.value.replace("_", " ")
    return Conflict(f"Backup {backup.id} is {state}; it can't be {action}.")


class BackupService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        storage: BackupStorage,
        queue: JobQueue | None,
        actor: Actor,
    ) -> None:
        self.session = session
        self.settings = settings
        self.storage = storage
        self.queue = queue
        self.actor = actor
        self.backups = BackupRepository(session)
        self.restores = RestoreRepository(session)
        self.retention = RetentionRepository(session)

    # ---- reading -------------------------------------------------------------------------------

    async def list_backups(
        self,
        *,
        page: int = 1,
        per_page: int = 10,
        search: str | None = None,
        sort: SortKey = SortKey.latest,
        status: BackupStatus | None = None,
        view: View = View.active,
        source_id: int | None = None,
        database: str | None = None,
    ) -> Page:
        """One page of backups, filtered, searched literally and sorted. A source id that
        matches no source is a filter like any other: an empty page, not a 404."""
        filters = ListFilters(
            status=status, search=search or None, source_id=source_id, database=database
        )
        items, total = await self.backups.list_page(
            page=page, per_page=per_page, filters=filters, sort=sort, view=view
        )
        return Page(items=items, total=total, page=page, per_page=per_page)

    async def export_csv(
        self,
        *,
        search: str | None = None,
        sort: SortKey = SortKey.latest,
        status: BackupStatus | None = None,
        view: View = View.active,
        source_id: int | None = None,
        database: str | None = None,
    ) -> CsvExport:
        """Every backup the list's filters match, in its order, as streamed CSV."""
        filters = ListFilters(
            status=status, search=search or None, source_id=source_id, database=database
        )
        batches = self.backups.iter_batches(filters=filters, sort=sort, view=view)
        # The first batch is read now: a store that is down is a 503 before any header is
        # sent, not a file cut off after its first line.
        try:
            first = await anext(batches, None)
        except BaseException:
            await batches.aclose()
            raise
        return CsvExport(
            filename=export_filename(utcnow()), chunks=csv_chunks(_resumed(first, batches))
        )

    async def get(self, backup_id: int) -> DatabaseBackup:
        """One backup, or 404."""
        backup = await self.backups.get(backup_id)
        if backup is None:
            raise _not_found(backup_id)
        return backup

    async def statistics(
        self, *, source_id: int | None = None, database: str | None = None
    ) -> Statistics:
        """The original's eight statistics, and the retention ages they are kept by; of one
        source and/or database when given (an unknown source: all zero, like its list)."""
        scope: dict[str, Any] = {"source_id": source_id, "database": database}
        row = await self.backups.statistics(**scope)
        return Statistics(
            **vars(row),
            latest_backup=await self.backups.edge_completed_record(newest=True, **scope),
            oldest_backup=await self.backups.edge_completed_record(newest=False, **scope),
            trash_after_days=self.settings.trash_after_days,
            purge_after_days=self.settings.purge_after_days,
        )

    async def list_restores(self, backup_id: int) -> list[RestoreOperation]:
        """The restore history of one backup, newest first."""
        await self.get(backup_id)
        return await self.restores.for_backup(backup_id)

    # ---- creating and running ------------------------------------------------------------------

    async def create(
        self,
        *,
        trigger: BackupTrigger = BackupTrigger.manual,
        schedule_slot: str | None = None,
        enqueue: bool = True,
        source: Source | None = None,
        database: str | None = None,
    ) -> DatabaseBackup:
        """Record a pending backup of ``database`` on ``source`` (default: the ``default``
        source's database) and queue it (unless ``enqueue`` is False)."""
        if source is None:
            source = await SourceRepository(self.session).default()
        target = target_of(source, database) if source else target_from_settings(self.settings)
        await self._refuse_while_restoring(target.database)
        backup = new_backup_row(
            self.settings,
            database=target.database,
            trigger=trigger,
            created_by=self.actor.user_id,
            schedule_slot=schedule_slot,
            source=source,
        )
        self.backups.add(backup)
        await self._flush_claiming(target.database, restore=False)
        record_event(
            self.session,
            actor=self.actor,
            action="backup.create",
            target_type="backup",
            target_id=backup.id,
            details={"trigger": trigger.value, "source": source.name if source else None},
        )
        await self.session.commit()
        if enqueue:
            await self._enqueue_backup(backup)
        # Read again, with its creator joined: the answer names who started it, as the list does.
        return await self.get(backup.id)

    async def import_upload(
        self,
        *,
        source: Source,
        database: str,
        engine: DatabaseEngine,
        chunks: AsyncIterator[bytes],
        declared: Compression,
        original_name: str | None = None,
    ) -> DatabaseBackup:
        """Store an uploaded dump of ``database`` on ``source`` as a completed backup (trigger
        ``upload``), checked like a dump dbkeep takes; anything else is a 4xx and nothing is
        kept: no row, no file, no temporary."""
        started = time.monotonic()
        backup = new_backup_row(
            self.settings,
            database=database,
            trigger=BackupTrigger.upload,
            created_by=self.actor.user_id,
            source=source,
        )
        source_name = source.name
        # No connection is held while the body arrives (it may take hours): the row is
        # inserted, in a new transaction, once the file is stored.
        await self.session.commit()
        compression = Compression(backup.compression)
        try:
            await self.storage.check_writable()
            writer = await self.storage.open_writer(backup.path)
        except StorageError as exc:
            raise ServiceUnavailable(f"The upload can't be stored now: {exc.message}.") from None
        try:
            upload = await store_upload(
                chunks,
                writer,
                declared=declared,
                engine=engine,
                compression=compression,
                level=self._level(compression),
            )
            size = await writer.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer.abort())
            if isinstance(exc, StorageError):
                raise ServiceUnavailable(
                    f"The upload could not be stored: {exc.message}; nothing was kept."
                ) from None
            if isinstance(exc, PipelineError):
                raise ServiceUnavailable(
                    f"The upload could not be stored: {exc}; nothing was kept."
                ) from None
            raise
        try:
            now = utcnow()
            backup.status = BackupStatus.completed
            backup.file_size = size
            backup.raw_size = backup.bytes_processed = upload.raw.raw_bytes
            backup.checksum_sha256 = upload.stored.sha256
            backup.dump_tool_version = upload.verdict.tool_version[:255] or None
            backup.server_version = (upload.verdict.server_version or "")[:255] or None
            backup.started_at = backup.backup_date
            backup.completed_at = backup.verified_at = now
            backup.duration_ms = int((time.monotonic() - started) * 1000)
            backup.integrity_status = IntegrityStatus.ok
            backup.attempts = 1
            self.backups.add(backup)
            await self.session.flush()
            record_event(
                self.session,
                actor=self.actor,
                action="backup.import",
                target_type="backup",
                target_id=backup.id,
                details={
                    "source": source_name,
                    "database": database,
                    "uploaded_as": declared.value,
                    "original_name": (original_name or "")[:255] or None,
                    "size": size,
                },
            )
            await self.session.commit()
        except BaseException:
            # The file was published under a key no row names: take it back.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.session.rollback())
            with contextlib.suppress(Exception):
                await asyncio.shield(self.storage.delete(backup.path))
            raise
        log.info("backup.imported", backup_id=backup.id, size=size, raw=backup.raw_size)
        return await self.get(backup.id)

    def _level(self, compression: Compression) -> int:
        levels = {
            Compression.zstd: self.settings.zstd_level,
            Compression.gzip: self.settings.gzip_level,
        }
        return levels.get(compression, 0)

    async def create_scheduled(
        self, slot: str, *, source: Source | None = None, database: str | None = None
    ) -> DatabaseBackup | None:
        """Record the scheduled backup of ``slot``, not queued (the scheduler queues it), or
        None when another worker recorded it first: a slot has one row (UNIQUE)."""
        try:
            return await self.create(
                trigger=BackupTrigger.scheduled,
                schedule_slot=slot,
                enqueue=False,
                source=source,
                database=database,
            )
        except IntegrityError:
            await self.session.rollback()
            if source is not None:  # the rollback expired it; the caller goes on with it
                await self.session.refresh(source)
            return None

    async def slot_taken(self, slot: str) -> bool:
        """Whether the scheduled backup of ``slot`` was recorded (by any worker)."""
        return await self.backups.slot_taken(slot)

    async def _flush_claiming(self, database: str, *, restore: bool) -> None:
        """Flush a new backup or restore row; the store refuses it (409) when the target is
        taken by a restore, or by a backup for a restore (``target_activity``, migration 0007),
        even if the checks before saw nothing: a request that raced ours got there first."""
        try:
            await self.session.flush()
        except DBAPIError as exc:
            if not _target_taken(exc):
                raise
            await self.session.rollback()
            if restore:
                await self._refuse_while_busy(database)
            else:
                await self._refuse_while_restoring(database)
            raise Conflict(
                f"Another backup or restore of database '{database}' has just been queued; "
                "try again when it has finished."
            ) from None

    async def _enqueue_backup(self, backup: DatabaseBackup) -> None:
        if self.queue is None:
            return
        try:
            await self.queue.enqueue_backup(backup.id)
        except ServiceUnavailable as exc:
            # Nothing will ever run it: say so on the row instead of leaving it pending forever.
            await self.backups.transition(
                backup.id,
                from_statuses=(BackupStatus.pending,),
                values={"status": BackupStatus.failed, "error_message": exc.message},
            )
            await self.session.commit()
            raise

    async def _refuse_while_busy(self, database: str) -> None:
        """409 when a restore, or a backup, of ``database`` is pending or running."""
        await self._refuse_while_restoring(database)
        running = await self.backups.running_backups(database)
        if running:
            raise Conflict(
                f"Backup {running[0].id} of database '{database}' is "
                f"{running[0].status.value.replace('_', ' ')}; restore when it has finished."
            )

    async def _refuse_while_restoring(self, database: str) -> None:
        running = await self.backups.running_restores(database)
        if running:
            raise Conflict(
                f"Restore {running[0].id} into database '{database}' is "
                f"{running[0].status.value.replace('_', ' ')}; try again when it has finished."
            )

    async def restore_target(
        self, backup_id: int, *, target_source_id: int | None = None, database: str | None = None
    ) -> RestoreTarget:
        """Where a restore of ``backup_id`` would load: ``database`` (default: see
        ``_default_database``) on the source ``target_source_id`` (default: the backup's own;
        404 unknown, 409 another engine), checked but not claimed."""
        backup = await self.get(backup_id)
        if database is not None:
            database = _restorable_name(database)
        sources = SourceRepository(self.session)
        own = await sources.get(backup.source_id) if backup.source_id is not None else None
        if backup.source_id is not None and own is None and target_source_id is None:
            raise Conflict(
                f"The source of backup {backup_id} was deleted; name a source to restore it "
                "into (target_source_id)."
            )
        if target_source_id is None or (own is not None and target_source_id == own.id):
            if own is None:
                # A backup from before sources: part 1's target, DBKEEP_TARGET_URL.
                target = target_from_settings(self.settings)
                return RestoreTarget(None, target.with_database(database) if database else target)
            name = database
            if name is None and own.from_environment:
                # Part 1: a restore loads into the target DBKEEP_TARGET_URL names now.
                name = target_of(own).database
            return RestoreTarget(own, target_of(own, name or backup.target_database))
        source = await sources.get(target_source_id)
        if source is None:
            raise NotFound(f"Source {target_source_id} was not found.")
        engine = own.engine if own is not None else SourceEngine.mysql.value
        if source.engine != engine:
            raise Conflict(
                f"Backup {backup_id} is a {engine} backup; source {source.name!r} is "
                f"{source.engine}: a backup is restored only into a source of its own engine."
            )
        name = database or _default_database(source, backup.target_database)
        return RestoreTarget(source, target_of(source, name))

    async def request_restore(
        self,
        backup_id: int,
        *,
        use_safety_backup: bool = True,
        keep_existing_objects: bool = False,
        target_source_id: int | None = None,
        database: str | None = None,
    ) -> RestoreOperation:
        """Queue a restore of a completed, intact backup into ``database`` of the source
        ``target_source_id`` (default: where it came from; ``restore_target``)."""
        backup = await self.get(backup_id)
        if backup.status is not BackupStatus.completed:
            raise _state_conflict(backup, "restored")
        chosen = await self.restore_target(
            backup_id, target_source_id=target_source_id, database=database
        )
        target = chosen.spec
        await self._refuse_while_busy(target.database)
        await self._require_intact_file(backup)
        operation = RestoreOperation(
            backup_id=backup.id,
            status=RestoreStatus.pending,
            requested_by=self.actor.user_id,
            use_safety_backup=use_safety_backup,
            keep_existing_objects=keep_existing_objects,
            phase=RestorePhase.queued,
            target_source_id=chosen.source.id if chosen.source is not None else None,
            target_database=target.database,
            total_bytes=backup.raw_size,
            bytes_processed=0,
            attempts=0,
        )
        self.restores.add(operation)
        await self._flush_claiming(target.database, restore=True)
        record_event(
            self.session,
            actor=self.actor,
            action="backup.restore",
            target_type="backup",
            target_id=backup.id,
            details={
                "restore_id": operation.id,
                "use_safety_backup": use_safety_backup,
                "keep_existing_objects": keep_existing_objects,
                "target_source": chosen.source.name if chosen.source is not None else None,
                "target_database": target.database,
            },
        )
        await self.session.commit()
        if self.queue is not None:
            try:
                await self.queue.enqueue_restore(operation.id)
            except ServiceUnavailable as exc:
                await self.restores.transition(
                    operation.id,
                    from_statuses=(RestoreStatus.pending,),
                    values={
                        "status": RestoreStatus.failed,
                        "error_message": exc.message,
                        "phase": RestorePhase.finished,
                    },
                )
                await self.session.commit()
                raise
        reloaded = await self.restores.get(operation.id)  # with the requester's e-mail
        return reloaded or operation

    async def copies_of(self, backup_ids: list[int]) -> dict[int, list[CopyRead]]:
        """Each backup's copies as the API shows them."""
        return await copy_reads(self.session, backup_ids)

    async def _require_intact_file(self, backup: DatabaseBackup) -> None:
        """Cheap integrity check at request time: a copy exists with the recorded size."""
        place, bad = await first_intact(
            self.session,
            backup_id=backup.id,
            key=backup.path,
            size=backup.file_size or 0,
            sha256=backup.checksum_sha256,
            fallback=self.storage,
            full=False,
        )
        if bad:
            await mark_failed(self.session, bad)
            await self.session.commit()
        if place is not None:
            return
        missing = not bad or all(reason == MISSING for _, reason in bad)
        problem = IntegrityStatus.missing if missing else IntegrityStatus.corrupt
        await self._flag(backup, problem)
        what = (
            "missing"
            if problem is IntegrityStatus.missing
            else "damaged (its size changed, or it was replaced)"
        )
        raise Conflict(f"Backup {backup.id} can't be used: its file is {what}.")

    async def _flag(self, backup: DatabaseBackup, problem: IntegrityStatus) -> None:
        """Record what a request found wrong with a backup's file."""
        backup.integrity_status = problem
        backup.verified_at = utcnow()
        await self.session.commit()

    async def cancel(self, backup_id: int) -> DatabaseBackup:
        """Cancel a pending backup now, or ask the worker to stop a running one."""
        for _ in range(2):
            if await self._request_cancel(await self.get(backup_id)):
                record_event(
                    self.session,
                    actor=self.actor,
                    action="backup.cancel",
                    target_type="backup",
                    target_id=backup_id,
                )
                await self.session.commit()
                return await self.get(backup_id)
            # It moved on between our read and our update (a worker just claimed it, say):
            # look again with fresh eyes.
            await self.session.rollback()
        return await self._reload_conflict(backup_id, "cancelled")

    async def cancel_restore(self, backup_id: int, restore_id: int) -> RestoreOperation:
        """Cancel a pending restore now, or ask the worker to stop a running one (it then rolls
        the database back from the safety backup)."""
        operation = await self.restores.get(restore_id)
        if operation is None or operation.backup_id != backup_id:
            raise NotFound(f"Restore {restore_id} of backup {backup_id} was not found.")
        changed = await _stop_or_flag(
            self.restores,
            restore_id,
            operation.status,
            message="Cancelled before it started; the database was not changed.",
        )
        if not changed:
            await self.session.rollback()
            current = await self.restores.get(restore_id)
            state = (current or operation).status.value.replace("_", " ")
            raise Conflict(
                f"Restore {restore_id} is {state}; only a pending or running restore can be "
                "cancelled."
            )
        record_event(
            self.session,
            actor=self.actor,
            action="restore.cancel",
            target_type="restore",
            target_id=restore_id,
            details={"backup_id": backup_id},
        )
        await self.session.commit()
        reloaded = await self.restores.get(restore_id)
        assert reloaded is not None
        return reloaded

    async def _request_cancel(self, backup: DatabaseBackup) -> bool:
        changed = await _stop_or_flag(
            self.backups, backup.id, backup.status, message="Cancelled before it started."
        )
        if changed is None:
            raise _state_conflict(backup, "cancelled")
        return changed

    async def _reload_conflict(self, backup_id: int, action: str) -> DatabaseBackup:
        await self.session.rollback()
        raise _state_conflict(await self.get(backup_id), action)

    # ---- trash and deletion --------------------------------------------------------------------

    async def trash(self, backup_id: int) -> DatabaseBackup:
        """Move a completed or failed backup to the trash."""
        await self._trash_one(backup_id, now=utcnow())
        await self.session.commit()
        return await self.get(backup_id)

    async def _trash_one(self, backup_id: int, *, now: datetime) -> None:
        backup = await self.get(backup_id)
        if backup.status not in FINISHED:
            raise _state_conflict(backup, "moved to the trash")
        changed = await self.backups.transition(
            backup_id,
            from_statuses=(backup.status,),
            values={
                "status": BackupStatus.in_trash,
                "status_before_trash": backup.status,
                "trashed_at": now,
            },
        )
        if not changed:
            await self._reload_conflict(backup_id, "moved to the trash")
        record_event(
            self.session,
            actor=self.actor,
            action="backup.trash",
            target_type="backup",
            target_id=backup_id,
        )

    async def restore_from_trash(self, backup_id: int) -> DatabaseBackup:
        """Bring a trashed backup back with the status it had."""
        backup = await self.get(backup_id)
        if backup.status is not BackupStatus.in_trash:
            raise Conflict(f"Backup {backup_id} is not in the trash.")
        changed = await self.backups.transition(
            backup_id,
            from_statuses=(BackupStatus.in_trash,),
            values={
                "status": backup.status_before_trash or BackupStatus.completed,
                "status_before_trash": None,
                "trashed_at": None,
            },
        )
        if not changed:
            await self._reload_conflict(backup_id, "restored from the trash")
        record_event(
            self.session,
            actor=self.actor,
            action="backup.restore_from_trash",
            target_type="backup",
            target_id=backup_id,
        )
        await self.session.commit()
        return await self.get(backup_id)

    async def delete(self, backup_id: int) -> None:
        """Delete a backup's row and file for good."""
        places = await self._delete_row(backup_id)
        await self.session.commit()
        await delete_objects(places)

    async def _delete_row(self, backup_id: int) -> list[Place]:
        """Delete the row; return where its copies are, for the caller to delete after the
        commit."""
        backup = await self.get(backup_id)
        if backup.status in RUNNING_BACKUP:
            raise _state_conflict(backup, "deleted")
        restoring = await self.restores.active_for_backup(backup_id)
        if restoring is not None:
            # Its file is being loaded; and a cascade would drop the restore's row unseen.
            raise Conflict(
                f"Backup {backup_id} is being restored (restore {restoring.id}); it can't be "
                "deleted until the restore has finished."
            )
        places = await every_place(self.session, backup_id, backup.path, self.storage)
        if not await self.backups.delete_row(
            backup_id, from_statuses=(*FINISHED, BackupStatus.in_trash)
        ):
            await self._reload_conflict(backup_id, "deleted")
        record_event(
            self.session,
            actor=self.actor,
            action="backup.delete",
            target_type="backup",
            target_id=backup_id,
            details={"filename": backup.filename},
        )
        return places

    async def bulk_trash(self, ids: list[int]) -> list[BulkItemResult]:
        """Trash each backup that can be trashed; report every id."""
        now = utcnow()
        results = [
            await self._bulk_item(i, self._trash_one(i, now=now), "Moved to the trash.")
            for i in ids
        ]
        await self.session.commit()
        return results

    async def delete_all_or_none(self, ids: list[int]) -> int:
        """Delete every one of ``ids`` (rows, then files), or none: the first that can't be
        deleted (running, being restored) is a 409 and nothing is changed."""
        places = [await self._delete_row(backup_id) for backup_id in ids]
        await self.session.commit()
        for each in places:
            await delete_objects(each)
        return len(places)

    async def create_for_source(self, source: Source, databases: list[str]) -> list[DatabaseBackup]:
        """Queue one backup per database of ``source`` (a manual run of the source)."""
        return [await self.create(source=source, database=name) for name in databases]

    async def bulk_delete(self, ids: list[int]) -> list[BulkItemResult]:
        """Delete each backup that can be deleted; report every id."""
        places: list[list[Place]] = []

        async def delete_one(backup_id: int) -> None:
            places.append(await self._delete_row(backup_id))

        results = [await self._bulk_item(i, delete_one(i), "Deleted permanently.") for i in ids]
        await self.session.commit()
        for each in places:
            await delete_objects(each)
        return results

    async def _bulk_item(self, backup_id: int, action: Any, ok_message: str) -> BulkItemResult:
        try:
            await action
        except (NotFound, Conflict) as exc:
            return BulkItemResult(backup_id, False, exc.status_code, exc.message)
        return BulkItemResult(backup_id, True, 200, ok_message)

    # ---- retention -----------------------------------------------------------------------------

    async def _retention_scopes(self) -> list[RetentionScope]:
        """Every source's scope (those with a readable rule), then the source-less one."""
        scopes = [source_scope(source) for source in await self.retention.sources()]
        return [*(scope for scope in scopes if scope is not None), global_scope(self.settings)]

    async def retention_preview(
        self, source: Source, *, now: datetime | None = None
    ) -> list[RetentionDecision]:
        """What ``auto_trash`` would decide now for ``source``'s backups, changing nothing."""
        scope = source_scope(source)
        if scope is None:
            raise Conflict(f"The retention rule of source {source.name!r} can't be read.")
        facts = await self.retention.facts(scope.source_id)
        return list(plan_scope(scope, facts, now or utcnow()).decisions)

    async def auto_trash(self, *, now: datetime | None = None) -> list[int]:
        """Apply each source's retention (and the settings' to backups without a source):
        trash what its plan says, never a pinned, running or newest completed backup."""
        now = now or utcnow()
        moved: list[int] = []
        for scope in await self._retention_scopes():
            facts = {fact.id: fact for fact in await self.retention.facts(scope.source_id)}
            for backup_id in plan_scope(scope, list(facts.values()), now).trash_ids:
                status = BackupStatus(facts[backup_id].status)
                # Only from the state planned on, and not if it was pinned meanwhile.
                if await self.backups.transition(
                    backup_id,
                    from_statuses=(status,),
                    values={
                        "status": BackupStatus.in_trash,
                        "status_before_trash": status,
                        "trashed_at": now,
                    },
                    extra=DatabaseBackup.pinned.is_(False),
                ):
                    moved.append(backup_id)
        if moved:
            record_event(
                self.session,
                actor=self.actor,
                action="retention.auto_trash",
                details={"backup_ids": moved},
            )
        await self.session.commit()
        return moved

    async def cleanup_trash(self, *, now: datetime | None = None) -> list[int]:
        """Delete trash items trashed longer ago than their source's purge age (the settings'
        for backups without a source), file first, then row; per database, the last good
        backup stays while no completed one is left outside the trash."""
        now = now or utcnow()
        purged: list[int] = []
        for scope in await self._retention_scopes():
            cutoff = now - timedelta(days=scope.rule.purge_after_days)
            keep = await self.retention.last_good_in_trash(scope.source_id)
            for backup in await self.retention.due_for_purge(scope.source_id, cutoff=cutoff):
                if backup.id in keep:
                    continue
                # The files go first: if that fails the row stays, and the next run tries again.
                for place in await every_place(self.session, backup.id, backup.path, self.storage):
                    await place.storage.delete(place.key)
                if await self.backups.delete_row(backup.id, from_statuses=(BackupStatus.in_trash,)):
                    purged.append(backup.id)
        if purged:
            record_event(
                self.session,
                actor=self.actor,
                action="retention.cleanup_trash",
                details={"backup_ids": purged},
            )
        await self.session.commit()
        return purged

    async def set_pinned(self, backup_id: int, *, pinned: bool) -> DatabaseBackup:
        """Pin a backup (retention never trashes or purges it) or unpin it."""
        backup = await self.get(backup_id)
        if backup.pinned != pinned:
            backup.pinned = pinned
            record_event(
                self.session,
                actor=self.actor,
                action="backup.pin" if pinned else "backup.unpin",
                target_type="backup",
                target_id=backup_id,
            )
            await self.session.commit()
        return await self.get(backup_id)

    # ---- downloads -----------------------------------------------------------------------------

    async def open_download(self, backup_id: int, *, raw: bool = False) -> Download:
        """Stream a completed backup: decompressed ``.sql`` by default, or the stored file
        (always the stored file, named ``….age``, when the backup is encrypted)."""
        backup = await self.get(backup_id)
        if backup.status is not BackupStatus.completed:
            raise _state_conflict(backup, "downloaded")
        place, bad = await first_intact(
            self.session,
            backup_id=backup.id,
            key=backup.path,
            size=backup.file_size or 0,
            sha256=backup.checksum_sha256,
            fallback=self.storage,
        )
        if bad:
            await mark_failed(self.session, bad)
            await self.session.commit()
        size = backup.file_size
        if place is None and (not bad or all(reason == MISSING for _, reason in bad)):
            raise NotFound(f"The file of backup {backup_id} is gone.")
        if place is None:
            await self._flag(backup, IntegrityStatus.corrupt)
            raise Conflict(
                f"The file of backup {backup_id} is damaged (it is not the file that was "
                "written); it can't be downloaded."
            )
        record_event(
            self.session,
            actor=self.actor,
            action="backup.download",
            target_type="backup",
            target_id=backup_id,
            details={"raw": raw},
        )
        await self.session.commit()
        stored = verified(
            place.storage.read(place.key),
            size=backup.file_size,
            sha256=backup.checksum_sha256,
            what=f"The file of backup {backup_id}",
            on_mismatch=lambda: log.error("backup.download_mismatch", backup_id=backup_id),
        )
        if raw or backup.encrypted:
            # An encrypted backup is always offered as stored (the age file): dbkeep never
            # serves its plaintext; `age -d -i KEY FILE | zstd -d` opens it (README).
            chunks = await started(stored, backup_id=backup_id)
            name = f"{backup.filename}.age" if backup.encrypted else backup.filename
            return Download(name, "application/octet-stream", size, chunks)
        decompressed = decompress_stream(stored, Compression(backup.compression))
        return Download(
            filename=download_name(backup.filename, backup.compression),
            media_type="application/sql",
            size=size if backup.compression == Compression.none.value else None,
            chunks=await started(decompressed, backup_id=backup_id),
        )
