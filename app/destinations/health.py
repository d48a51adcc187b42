"""The health reason this feature adds (contract: "a failed copy"): a source with a completed,
untrashed backup whose copy on some destination failed is ``warning`` (degraded) until the copy
is retried or the backup leaves the list.

One grouped query for every source, then a rule that reads it; registered with
``app.sources.health`` when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.backups.models import BackupStatus, DatabaseBackup
from app.destinations.models import BackupCopy, CopyStatus
from app.sources import health
from app.sources.health import Reason, SourceSnapshot

_KEY = "failed_copies"


async def failed_copies_by_source(session: Any, snapshots: Sequence[SourceSnapshot]) -> None:
    """Count, per source, the failed copies of its completed backups still in the list."""
    ids = [snapshot.source_id for snapshot in snapshots]
    if not ids:
        return
    rows = await session.execute(
        select(DatabaseBackup.source_id, func.count())
        .select_from(BackupCopy)
        .join(DatabaseBackup, DatabaseBackup.id == BackupCopy.backup_id)
        .where(
            BackupCopy.status == CopyStatus.failed.value,
            DatabaseBackup.source_id.in_(ids),
            DatabaseBackup.status == BackupStatus.completed,
            DatabaseBackup.trashed_at.is_(None),
        )
        .group_by(DatabaseBackup.source_id)
    )
    counts = {source_id: int(count) for source_id, count in rows}
    for snapshot in snapshots:
        if counts.get(snapshot.source_id):
            snapshot.extras[_KEY] = counts[snapshot.source_id]


def rule_failed_copy(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    count = snapshot.extras.get(_KEY, 0)
    if not count:
        return ()
    copies = "a copy" if count == 1 else f"{count} copies"
    return (
        Reason(
            health.FAILED_COPY,
            "warning",
            f"{copies.capitalize()} of its backups could not be stored; retry them from the "
            "backup's details.",
        ),
    )


health.register_enricher(failed_copies_by_source)
health.register_rule(rule_failed_copy)
