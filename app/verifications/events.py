"""Where a verification's outcome leaves this package: ``verification.failed``, logged and
queued as one notification for every channel subscribed to it."""

from __future__ import annotations

import structlog

from app.backups.models import DatabaseBackup
from app.db import Database
from app.notifications.service import notify
from app.sources.models import Source
from app.verifications.models import BackupVerification
from app.verifications.schemas import VerificationRead

log = structlog.get_logger("dbkeep.verifications")


async def emit_verification_failed(database: Database, verification: BackupVerification) -> None:
    """Log a failed verification and queue its ``verification.failed`` notifications."""
    log.warning(
        "verification.failed",
        verification_id=verification.id,
        backup_id=verification.backup_id,
        source_id=verification.source_id,
        reason=verification.error_message,
    )
    async with database.sessionmaker() as session:
        source = (
            await session.get(Source, verification.source_id)
            if verification.source_id is not None
            else None
        )
        await notify(
            session,
            "verification.failed",
            source=source,
            backup=await session.get(DatabaseBackup, verification.backup_id),
            verification=VerificationRead.model_validate(verification).model_dump(mode="json"),
        )
        await session.commit()
