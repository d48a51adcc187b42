"""Nothing stays pending or in progress forever: the reconciler, at start-up and periodically.

It compares the metadata store (the truth) with what the queue and the storage hold:

- an unfinished row whose job vanished (Redis restarted empty, an enqueue lost) is enqueued again;
- an ``in_progress`` row whose heartbeat went silent belongs to a dead worker: arq would rerun its
  job only after the whole job timeout plus 10 s, so its in-progress marker is dropped and the job
  reruns now (the runners take over silent rows); a row that keeps dying is failed instead;
- a row running past its timeout is failed;
- temporary files older than any live dump could be are removed, in DBKEEP_BACKUP_DIR and on
  every other destination (an S3 bucket's multipart uploads left by a cut upload);
- completed backups whose file disappeared are flagged ``integrity_status=missing``;
- a target's activity counters (migration 0007) that a change without triggers left wrong (a
  foreign-key cascade on MariaDB) are recounted from the rows, so a target is never held by a
  restore that no longer exists.

Every step is idempotent and atomic per row, so several workers may reconcile at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from arq.constants import in_progress_key_prefix
from redis.exceptions import RedisError
from sqlalchemy import or_

from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus, RestoreStatus
from app.backups.repository import BackupRepository, TargetActivityRepository
from app.config import Settings
from app.db import Database, utcnow
from app.destinations.copies import VANISHED, mark_failed, stored_places
from app.destinations.repository import DestinationRepository
from app.destinations.service import storage_of
from app.errors import AppError, ServiceUnavailable
from app.jobs.queue import ArqJobQueue, backup_job_id, restore_job_id
from app.jobs.repository import ReconcileRepository
from app.storage.base import BackupStorage, StorageError
from app.verifications.reconcile import reconcile_verifications

log = structlog.get_logger("dbkeep.reconciler")

# Crash restarts a backup gets on top of its transient retries before the reconciler gives up.
CRASH_RESTARTS = 2
# Existence checks of completed backups' files are cheap locally but not on object storage.
MISSING_FILE_CHECK_EVERY_S = 600.0
_CHECK_BATCH = 500


def backup_attempt_budget(settings: Settings) -> int:
    """How many times a backup may be started in all (retries plus crash restarts)."""
    return settings.transient_retries + 1 + CRASH_RESTARTS


@dataclass
class ReconcileReport:
    requeued: int = 0  # unfinished rows whose job had vanished
    released: int = 0  # jobs of dead workers made runnable again now
    failed: int = 0  # rows given up on (timed out, or kept killing their worker)
    orphans_removed: int = 0
    missing_flagged: int = 0
    copies_flagged: int = 0  # copies whose object vanished from their destination
    targets_recounted: int = 0
    verifications_failed: int = 0  # running verifications whose worker died
    scratch_dropped: int = 0  # leftover dbkeep_verify_* databases

    def any(self) -> bool:
        return any(vars(self).values())


class Reconciler:
    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        storage: BackupStorage,
        queue: ArqJobQueue,
        in_progress_timeout_s: float,
    ) -> None:
        self.database = database
        self.settings = settings
        self.storage = storage
        self.queue = queue
        # How long arq keeps a job's in-progress marker (its longest job timeout + 10 s).
        self.in_progress_timeout_s = in_progress_timeout_s
        self._last_file_check = 0.0

    async def run_once(self) -> ReconcileReport:
        """One pass over every kind of problem; a failing step does not stop the others."""
        report = ReconcileReport()
        steps = (
            self._backups,
            self._restores,
            self._orphans,
            self._missing_files,
            self._target_activity,
            self._verifications,
        )
        for step in steps:
            try:
                await step(report)
            except (ServiceUnavailable, RedisError, OSError) as exc:
                log.warning("reconcile.step_skipped", step=step.__name__, error=repr(exc))
            except Exception:
                log.exception("reconcile.step_failed", step=step.__name__)
        if report.any():
            log.info("reconcile.done", **vars(report))
        return report

    async def run_forever(self) -> None:
        """``run_once`` every ``reconcile_every_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.reconcile_every_seconds)
            await self.run_once()

    async def _verifications(self, report: ReconcileReport) -> None:
        failed, dropped = await reconcile_verifications(self.database, self.settings, self.queue)
        report.verifications_failed += failed
        report.scratch_dropped += dropped

    # ---- backups and restores ----------------------------------------------------------------

    async def _backups(self, report: ReconcileReport) -> None:
        now = utcnow()
        silent_before = now - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
        overdue_before = now - timedelta(
            seconds=self.settings.backup_timeout_seconds
            + 2 * self.settings.heartbeat_timeout_seconds
        )
        budget = backup_attempt_budget(self.settings)
        async with self.database.sessionmaker() as session:
            rows = await ReconcileRepository(session).backups_in(
                (BackupStatus.pending, BackupStatus.in_progress)
            )
        for row in rows:
            job_id = backup_job_id(self.queue.queue_name, row.id)
            if row.status is BackupStatus.in_progress:
                if row.started_at is not None and row.started_at < overdue_before:
                    limit = self.settings.backup_timeout_seconds
                    await self._fail_backup(
                        row, f"The backup did not finish within {limit} seconds.", report
                    )
                    continue
                if not _silent(row.heartbeat_at, row.started_at, silent_before):
                    continue
                if row.attempts >= budget:
                    await self._fail_backup(
                        row,
                        f"The worker stopped during the backup {row.attempts} times; "
                        "giving up (see the worker log).",
                        report,
                    )
                    continue
                await self._resume(job_id, row.id, report, silent=True, kind="backup")
            else:
                if row.attempts >= budget:
                    await self._fail_backup(
                        row, f"Gave up after {row.attempts} attempts.", report, pending=True
                    )
                    continue
                await self._resume(job_id, row.id, report, silent=False, kind="backup")

    async def _restores(self, report: ReconcileReport) -> None:
        now = utcnow()
        silent_before = now - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
        async with self.database.sessionmaker() as session:
            rows = await ReconcileRepository(session).restores_in(
                (RestoreStatus.pending, RestoreStatus.in_progress)
            )
        for row in rows:
            # The restore job itself decides how to resume (or roll back) a silent operation.
            silent = row.status is RestoreStatus.in_progress and _silent(
                row.heartbeat_at, row.started_at, silent_before
            )
            if row.status is RestoreStatus.in_progress and not silent:
                continue
            job_id = restore_job_id(self.queue.queue_name, row.id)
            await self._resume(job_id, row.id, report, silent=silent, kind="restore")

    async def _resume(
        self, job_id: str, row_id: int, report: ReconcileReport, *, silent: bool, kind: str
    ) -> None:
        if not await self.queue.job_exists(job_id):
            if kind == "backup":
                await self.queue.enqueue_backup(row_id)
            else:
                await self.queue.enqueue_restore(row_id)
            report.requeued += 1
            log.info("reconcile.requeued", kind=kind, row_id=row_id)
            return
        marker_age = await self._in_progress_age(job_id)
        if marker_age is None:
            return  # queued or waiting for a retry: it will run
        # A silent row's worker is dead. A pending row's job holds the marker only for the moment
        # before it claims the row: one that old means its worker died before the claim.
        if silent or marker_age > self.settings.heartbeat_timeout_seconds:
            await self.queue.release_stale_job(job_id)
            report.released += 1
            log.info("reconcile.released", kind=kind, row_id=row_id)

    async def _in_progress_age(self, job_id: str) -> float | None:
        remaining_ms = int(await self.queue.redis.pttl(in_progress_key_prefix + job_id))
        if remaining_ms < 0:
            return None  # no marker (-2) or, never set by arq, no expiry (-1)
        return self.in_progress_timeout_s - remaining_ms / 1000

    async def _fail_backup(
        self,
        row: DatabaseBackup,
        message: str,
        report: ReconcileReport,
        *,
        pending: bool = False,
    ) -> None:
        status = BackupStatus.pending if pending else BackupStatus.in_progress
        async with self.database.sessionmaker() as session:
            changed = await BackupRepository(session).transition(
                row.id,
                from_statuses=(status,),
                values={
                    "status": BackupStatus.failed,
                    "error_message": message,
                    "file_size": 0,
                    "completed_at": utcnow(),
                },
            )
            await session.commit()
        if changed:
            report.failed += 1
            log.warning("reconcile.failed_backup", backup_id=row.id, reason=message)

    async def _target_activity(self, report: ReconcileReport) -> None:
        async with self.database.sessionmaker() as session:
            held = await TargetActivityRepository(session).held()
        for target in held:
            async with self.database.sessionmaker() as session:
                changed = await TargetActivityRepository(session).recount(target)
                await session.commit()
            if changed is not None:
                report.targets_recounted += 1
                old, new = changed
                log.warning("reconcile.target_recounted", target=target, old=old, new=new)

    # ---- files -------------------------------------------------------------------------------

    async def _orphans(self, report: ReconcileReport) -> None:
        # No live dump's temporary can be older than the dump timeout (the runner stops it).
        age = self.settings.backup_timeout_seconds + self.settings.heartbeat_timeout_seconds
        older_than = timedelta(seconds=age)
        report.orphans_removed += await self.storage.remove_orphan_temporaries(
            older_than=older_than
        )
        async with self.database.sessionmaker() as session:
            destinations = await DestinationRepository(session).all()
        for destination in destinations:
            if destination.from_environment:
                continue  # the bootstrap ``local`` is ``self.storage``, cleaned above
            try:
                storage = storage_of(destination)
                report.orphans_removed += await storage.remove_orphan_temporaries(
                    older_than=older_than
                )
            except (AppError, StorageError) as exc:
                # One unreachable destination does not keep the others from being cleaned.
                log.warning(
                    "reconcile.orphans_skipped", destination=destination.name, reason=exc.message
                )

    async def _missing_files(self, report: ReconcileReport) -> None:
        now = time.monotonic()
        if self._last_file_check and now - self._last_file_check < MISSING_FILE_CHECK_EVERY_S:
            return
        self._last_file_check = now
        after = 0
        while True:
            async with self.database.sessionmaker() as session:
                batch = await ReconcileRepository(session).completed_after(
                    after, limit=_CHECK_BATCH
                )
            if not batch:
                return
            for backup_id, key in batch:
                after = backup_id
                if await self._vanished_everywhere(backup_id, key, report):
                    await self._flag_missing(backup_id, report)

    async def _vanished_everywhere(self, backup_id: int, key: str, report: ReconcileReport) -> bool:
        """Mark the backup's copies whose object vanished ``failed``; True when no stored copy
        is left (a backup without copy rows: its file in DBKEEP_BACKUP_DIR is gone)."""
        async with self.database.sessionmaker() as session:
            places = await stored_places(session, backup_id, key, self.storage)
            gone = []
            for place in places:
                with contextlib.suppress(StorageError):
                    if await place.storage.size(place.key) is None:
                        gone.append((place, VANISHED))
            flagged = [pair for pair in gone if pair[0].copy_id is not None]
            if flagged:
                await mark_failed(session, flagged)
                await session.commit()
                report.copies_flagged += len(flagged)
        return len(gone) == len(places)

    async def _flag_missing(self, backup_id: int, report: ReconcileReport) -> None:
        async with self.database.sessionmaker() as session:
            changed = await BackupRepository(session).transition(
                backup_id,
                from_statuses=(BackupStatus.completed,),
                values={"integrity_status": IntegrityStatus.missing, "verified_at": utcnow()},
                extra=or_(
                    DatabaseBackup.integrity_status.is_(None),
                    DatabaseBackup.integrity_status != IntegrityStatus.missing,
                ),
            )
            await session.commit()
        if changed:
            report.missing_flagged += 1
            log.warning("reconcile.file_missing", backup_id=backup_id)


def _silent(heartbeat_at: datetime | None, started_at: datetime | None, before: datetime) -> bool:
    last_sign = heartbeat_at or started_at
    return last_sign is None or last_sign < before
