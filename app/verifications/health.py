"""The health reason this feature adds (contract: "a failed verification"): a source whose
newest finished test restore failed is ``failing`` until one passes.

One grouped query for every source (the newest finished verification of each), then a rule that
reads it; registered with ``app.sources.health`` when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.sources import health
from app.sources.health import Reason, SourceSnapshot
from app.verifications.models import BackupVerification, VerificationStatus

_FINISHED = (VerificationStatus.passed, VerificationStatus.failed)
_KEY = "last_verification"


async def newest_finished_verifications(session: Any, snapshots: Sequence[SourceSnapshot]) -> None:
    """Put each source's newest passed-or-failed verification on its snapshot."""
    ids = [snapshot.source_id for snapshot in snapshots]
    if not ids:
        return
    newest = (
        select(func.max(BackupVerification.id).label("id"))
        .where(BackupVerification.source_id.in_(ids), BackupVerification.status.in_(_FINISHED))
        .group_by(BackupVerification.source_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            BackupVerification.source_id,
            BackupVerification.backup_id,
            BackupVerification.status,
            BackupVerification.error_message,
        ).join(newest, BackupVerification.id == newest.c.id)
    )
    found = {row.source_id: row for row in rows}
    for snapshot in snapshots:
        if snapshot.source_id in found:
            snapshot.extras[_KEY] = found[snapshot.source_id]


def rule_failed_verification(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    last = snapshot.extras.get(_KEY)
    if last is None or last.status is not VerificationStatus.failed:
        return ()
    why = f": {last.error_message}" if last.error_message else ""
    return (
        Reason(
            health.FAILED_VERIFICATION,
            "failing",
            f"The newest test restore (of backup {last.backup_id}) failed{why}.",
        ),
    )


health.register_enricher(newest_finished_verifications)
health.register_rule(rule_failed_verification)
