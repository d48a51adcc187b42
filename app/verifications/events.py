"""The seam where a verification's outcome leaves this package: ``verification.failed``.

Notifications are built elsewhere; this module imports none of them. The lead wires the one
call below to the notification queue (contract event ``verification.failed``).
"""

from __future__ import annotations

import structlog

from app.verifications.models import BackupVerification

log = structlog.get_logger("dbkeep.verifications")


async def emit_verification_failed(verification: BackupVerification) -> None:
    """Announce a failed verification (logged now; notified once notifications are wired)."""
    log.warning(
        "verification.failed",
        verification_id=verification.id,
        backup_id=verification.backup_id,
        source_id=verification.source_id,
        reason=verification.error_message,
    )
    # NOTIFY: await notify("verification.failed", verification=verification)  (lead wires this)
