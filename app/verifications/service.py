"""Verification use cases: ask for one (API, CLI, schedule), read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository
from app.errors import Conflict, NotFound, ServiceUnavailable
from app.sources.models import Source
from app.sources.repository import SourceRepository
from app.verifications.models import BackupVerification, VerificationStatus, verifiable
from app.verifications.repository import VerificationRepository

log = structlog.get_logger("dbkeep.verifications")


class VerificationQueue(Protocol):
    async def enqueue_verification(self, verification_id: int) -> None: ...


class VerificationService:
    def __init__(
        self, session: AsyncSession, *, queue: VerificationQueue | None, actor: Actor
    ) -> None:
        self.session = session
        self.queue = queue
        self.actor = actor
        self.verifications = VerificationRepository(session)

    async def get(self, verification_id: int) -> BackupVerification:
        """One verification, or 404."""
        verification = await self.verifications.get(verification_id)
        if verification is None:
            raise NotFound(f"Verification {verification_id} was not found.")
        return verification

    async def of_source(self, source_id: int) -> Sequence[BackupVerification]:
        """The source's newest verifications (404 for an unknown source)."""
        await self._source(source_id)
        return await self.verifications.of_source(source_id)

    async def of_backup(self, backup_id: int) -> Sequence[BackupVerification]:
        """The backup's newest verifications."""
        return await self.verifications.of_backup(backup_id)

    async def _source(self, source_id: int) -> Source:
        source = await SourceRepository(self.session).get(source_id)
        if source is None:
            raise NotFound(f"Source {source_id} was not found.")
        return source

    async def request_for_source(
        self, source_id: int, *, backup_id: int | None = None, trigger: str = "api"
    ) -> BackupVerification:
        """Record a pending verification of ``backup_id`` (default: the source's newest
        completed backup) and queue it; 409 when it can't run."""
        source = await self._source(source_id)
        if not verifiable(source):
            raise Conflict(
                f"Source {source.name!r} has no verify_url: set a server where scratch "
                "databases may be created."
            )
        if backup_id is None:
            backup = await self.verifications.newest_completed_backup(source.id)
            if backup is None:
                raise Conflict(f"Source {source.name!r} has no completed backup to verify.")
        else:
            found = await BackupRepository(self.session).get(backup_id)
            if found is None or found.source_id != source.id:
                raise NotFound(f"Backup {backup_id} of source {source.name!r} was not found.")
            backup = found
        return await self._request(backup, trigger=trigger, enqueue=True)

    async def request_for_backup(
        self, backup_id: int, *, trigger: str = "cli", enqueue: bool = False
    ) -> BackupVerification:
        """Record a pending verification of one backup (the CLI runs it itself)."""
        backup = await BackupRepository(self.session).get(backup_id)
        if backup is None:
            raise NotFound(f"Backup {backup_id} was not found.")
        if backup.source_id is not None:
            source = await self._source(backup.source_id)
            if not verifiable(source):
                raise Conflict(
                    f"Source {source.name!r} has no verify_url: set a server where scratch "
                    "databases may be created."
                )
        return await self._request(backup, trigger=trigger, enqueue=enqueue)

    async def _request(
        self, backup: DatabaseBackup, *, trigger: str, enqueue: bool
    ) -> BackupVerification:
        if backup.status is not BackupStatus.completed or backup.trashed_at is not None:
            raise Conflict(
                f"Backup {backup.id} is {backup.status.value}; only completed backups can be "
                "verified."
            )
        if await self.verifications.unfinished_of_backup(backup.id) is not None:
            raise Conflict(f"A verification of backup {backup.id} is already pending or running.")
        if enqueue and self.queue is None:
            raise ServiceUnavailable("The job queue is not available; nothing was queued.")
        verification = BackupVerification(
            backup_id=backup.id,
            source_id=backup.source_id,
            status=VerificationStatus.pending,
            tables=[],
            trigger=trigger,
        )
        self.verifications.add(verification)
        await self.session.flush()
        record_event(
            self.session,
            actor=self.actor,
            action="verification.request",
            target_type="backup",
            target_id=backup.id,
            details={"verification_id": verification.id, "trigger": trigger},
        )
        await self.session.commit()
        log.info("verification.requested", verification_id=verification.id, backup_id=backup.id)
        if enqueue and self.queue is not None:
            try:
                await self.queue.enqueue_verification(verification.id)
            except ServiceUnavailable:
                await self.verifications.transition(
                    verification.id,
                    from_statuses=(VerificationStatus.pending,),
                    values={
                        "status": VerificationStatus.failed,
                        "error_message": "The job queue (Redis) was unavailable: not run.",
                    },
                )
                await self.session.commit()
                raise
        return verification
