"""Retention in the metadata store: each source's rule applied to its backups (and the settings'
rule to backups whose source was deleted), trash first, then purge.

The decisions are ``app.sources.retention.plan_retention``'s (pure, tested on its own); this
module reads the facts it needs, one *scope* at a time (a source, or "no source"), and holds the
SQL. The service (``BackupService.auto_trash`` / ``cleanup_trash`` / ``retention_preview``)
applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupStatus, DatabaseBackup
from app.config import Settings
from app.sources.models import Source
from app.sources.retention import BackupFacts, RetentionPlan, RetentionRule, plan_retention

log = structlog.get_logger("dbkeep.retention")

# Backups without a source (it was deleted, its backups kept) are keyed by this database name
# when a row recorded none: they are still one database's backups to the planner.
_NO_DATABASE = ""


@dataclass(frozen=True)
class RetentionScope:
    """The backups one rule governs: a source's (``source_id``), or those without a source."""

    source_id: int | None
    name: str
    rule: RetentionRule
    timezone: str


def global_scope(settings: Settings) -> RetentionScope:
    """Backups whose source is gone follow DBKEEP_TRASH_AFTER_DAYS / DBKEEP_PURGE_AFTER_DAYS."""
    return RetentionScope(
        source_id=None,
        name="(no source)",
        rule=RetentionRule(
            trash_after_days=settings.trash_after_days,
            purge_after_days=settings.purge_after_days,
        ),
        timezone="UTC",
    )


def source_scope(source: Source) -> RetentionScope | None:
    """The scope of ``source``, or None (logged) when its stored rule can't be read: a rule
    that can't be read trashes and purges nothing."""
    try:
        rule = RetentionRule.from_mapping(source.retention or {})
    except (TypeError, ValueError) as exc:
        log.error("retention.rule_unreadable", source_id=source.id, reason=str(exc))
        return None
    return RetentionScope(
        source_id=source.id, name=source.name, rule=rule, timezone=source.timezone
    )


def plan_scope(scope: RetentionScope, facts: Sequence[BackupFacts], now: datetime) -> RetentionPlan:
    return plan_retention(facts, scope.rule, tz=scope.timezone, now=now)


def _in_scope(source_id: int | None) -> ColumnElement[bool]:
    if source_id is None:
        return DatabaseBackup.source_id.is_(None)
    return DatabaseBackup.source_id == source_id


class RetentionRepository:
    """The queries retention runs; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sources(self) -> list[Source]:
        return list(await self.session.scalars(select(Source).order_by(Source.id)))

    async def facts(self, source_id: int | None) -> list[BackupFacts]:
        """What the planner needs of every backup in the scope that is not in the trash."""
        rows = await self.session.execute(
            select(
                DatabaseBackup.id,
                DatabaseBackup.target_database,
                DatabaseBackup.backup_date,
                DatabaseBackup.status,
                DatabaseBackup.pinned,
            ).where(_in_scope(source_id), DatabaseBackup.status != BackupStatus.in_trash)
        )
        return [
            BackupFacts(
                id=backup_id,
                database_name=database or _NO_DATABASE,
                created_at=taken_at,
                status=status.value,
                pinned=bool(pinned),
            )
            for backup_id, database, taken_at, status, pinned in rows
        ]

    async def due_for_purge(
        self, source_id: int | None, *, cutoff: datetime
    ) -> list[DatabaseBackup]:
        """Trashed backups of the scope trashed before ``cutoff``; pinned ones are never
        purged by retention (a person unpins or deletes them)."""
        return list(
            await self.session.scalars(
                select(DatabaseBackup)
                .where(
                    _in_scope(source_id),
                    DatabaseBackup.status == BackupStatus.in_trash,
                    DatabaseBackup.trashed_at < cutoff,
                    DatabaseBackup.pinned.is_(False),
                )
                .order_by(DatabaseBackup.id)
            )
        )

    async def last_good_in_trash(self, source_id: int | None) -> set[int]:
        """Per database of the scope with no completed backup outside the trash: its newest
        trashed backup that had completed (purging it would leave nothing to restore)."""
        active = set(
            await self.session.scalars(
                select(func.coalesce(DatabaseBackup.target_database, _NO_DATABASE))
                .where(_in_scope(source_id), DatabaseBackup.status == BackupStatus.completed)
                .distinct()
            )
        )
        rows = await self.session.execute(
            select(DatabaseBackup.id, DatabaseBackup.target_database)
            .where(
                _in_scope(source_id),
                DatabaseBackup.status == BackupStatus.in_trash,
                DatabaseBackup.status_before_trash == BackupStatus.completed,
            )
            .order_by(DatabaseBackup.backup_date.desc(), DatabaseBackup.id.desc())
        )
        kept: dict[str, int] = {}
        for backup_id, database in rows:
            name = database or _NO_DATABASE
            if name not in active and name not in kept:
                kept[name] = backup_id
        return set(kept.values())
