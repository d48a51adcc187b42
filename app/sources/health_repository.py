"""The queries health needs: a bounded number of statements whatever the number of sources.

``backup_facts`` is one grouped statement on ``ix_database_backups_source_db_status_id``: the
newest eight completed and the newest failed backup of each source and database, so its answer
is at most nine rows per source and database, and never a statement per source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.backups.models import BackupListVersion, BackupStatus, DatabaseBackup
from app.sources.health import SHRUNKEN_HISTORY
from app.sources.health_models import SourceHealthState

# The newest completed backup plus the seven before it.
COMPLETED_KEPT = SHRUNKEN_HISTORY + 1


@dataclass(frozen=True)
class BackupFact:
    id: int
    source_id: int
    database: str
    status: BackupStatus
    file_size: int
    duration_ms: int | None
    completed_at: datetime | None
    backup_date: datetime
    error_message: str | None
    rank: int  # 1 = the newest of its (source, database, status)


class HealthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def backup_facts(self, source_ids: Sequence[int] | None = None) -> list[BackupFact]:
        """The newest ``COMPLETED_KEPT`` completed and the newest failed (not cancelled) backup
        of each source and database, in one statement.

        The (source, database) pairs come from one scan of the covering index (a loose index
        scan where the backend has one); for each pair, index seeks find the ids of the eight
        newest completed backups and of the newest failed one; those rows are read by primary
        key. So the work is one index scan plus nine seeks per pair, never a pass over a pair's
        whole history, and at most nine rows per pair come back.
        """
        b, x = DatabaseBackup, aliased(DatabaseBackup)
        # Every backup names its database (a NULL one, from before sources, has no database to
        # be healthy about); plain equality keeps the seeks on the index on every backend.
        where: list[Any] = [b.source_id.is_not(None), b.target_database.is_not(None)]
        if source_ids is not None:
            where.append(b.source_id.in_(list(source_ids)))
        pairs = (
            select(b.source_id, b.target_database)
            .where(*where)
            .group_by(b.source_id, b.target_database)
            .subquery("pairs")
        )
        same_pair = (
            x.source_id == pairs.c.source_id,
            x.target_database == pairs.c.target_database,
        )
        # The ids of the newest completed backups, one seek each (OFFSET is a constant: MariaDB
        # takes neither a LIMIT inside IN nor a column as OFFSET), and of the newest failure.
        completed_ids = [
            select(x.id)
            .where(*same_pair, x.status == BackupStatus.completed)
            .order_by(x.id.desc())
            .limit(1)
            .offset(k)
            .scalar_subquery()
            .label(f"completed_{k}")
            for k in range(COMPLETED_KEPT)
        ]
        # A cancelled backup ended by the user's choice: it is not a failure.
        newest_failed = (
            select(x.id)
            .where(*same_pair, x.status == BackupStatus.failed, x.cancelled_at.is_(None))
            .order_by(x.id.desc())
            .limit(1)
            .scalar_subquery()
            .label("newest_failed")
        )
        bounds = select(*completed_ids, newest_failed).select_from(pairs).subquery("bounds")
        wanted = [bounds.c[f"completed_{k}"] for k in range(COMPLETED_KEPT)]
        statement = select(
            b.id,
            b.source_id,
            b.target_database,
            b.status,
            b.file_size,
            b.duration_ms,
            b.completed_at,
            b.backup_date,
            b.error_message,
        ).join(bounds, b.id.in_([*wanted, bounds.c.newest_failed]))
        rows = list(await self.session.execute(statement))
        # Rank each (source, database, status)'s rows, newest first.
        rows.sort(key=lambda row: row.id, reverse=True)
        seen: dict[tuple[int, str | None, BackupStatus], int] = {}
        facts = []
        for row in rows:
            key = (row.source_id, row.target_database, row.status)
            seen[key] = rank = seen.get(key, 0) + 1
            facts.append(
                BackupFact(
                    id=row.id,
                    source_id=row.source_id,
                    database=row.target_database or "",
                    status=row.status,
                    file_size=row.file_size or 0,
                    duration_ms=row.duration_ms,
                    completed_at=row.completed_at,
                    backup_date=row.backup_date,
                    error_message=row.error_message,
                    rank=rank,
                )
            )
        return facts

    async def list_version(self) -> int | None:
        """The backups' list version (migration 0005): it changes, by triggers, in the same
        transaction as any insert, delete, or change of a backup's status, source or database,
        so facts read at one version are exactly those of every read at that version."""
        version: int | None = await self.session.scalar(
            select(BackupListVersion.version).where(BackupListVersion.id == 1)
        )
        return version

    async def states(self) -> dict[int, SourceHealthState]:
        rows = await self.session.scalars(select(SourceHealthState))
        return {row.source_id: row for row in rows}

    def add_state(self, state: SourceHealthState) -> None:
        self.session.add(state)

    async def forget_states(self, keep: Iterable[int]) -> None:
        """Drop the states of sources that are gone (a cascade does it too, where enforced)."""
        kept = set(keep)
        for source_id, state in (await self.states()).items():
            if source_id not in kept:
                await self.session.delete(state)
