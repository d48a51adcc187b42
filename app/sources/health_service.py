"""Health per source, evaluated from the metadata store (rules: app/sources/health.py).

``SourceHealthService.evaluate`` reads every source's snapshot in a constant number of
statements (the sources' few columns, one grouped backup query, one per enricher) and runs the
rules; ``/health``, the sources API, the dashboard and ``/metrics`` show its answer.

``record_transitions`` compares the answer with each source's stored state
(``source_health_state``), stores the new one, and returns what changed, previous → new. The
worker runs it every minute (``refresh_source_health``) and hands the changes to
``emit_health_changed``: **the seam for notifications** — the notifier registers itself with
``add_health_listener(fn)`` and gets each batch of ``HealthTransition``\\ s as the event
``health.changed``; nothing here knows about channels.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupStatus
from app.db import utcnow

# The features that add health reasons register them when imported (app/sources/health.py).
from app.destinations import health as _copy_health  # noqa: F401
from app.sources.health import (
    OK,
    DatabaseSnapshot,
    HealthStatus,
    Reason,
    SourceHealth,
    SourceSnapshot,
    enrichers,
    evaluate,
)
from app.sources.health_models import SourceHealthState
from app.sources.health_repository import BackupFact, HealthRepository
from app.sources.models import Source
from app.verifications import health as _verification_health  # noqa: F401

log = structlog.get_logger("dbkeep.health")

# The notification event a change of a source's health is (contract part 2).
HEALTH_CHANGED = "health.changed"


@dataclass(frozen=True)
class HealthTransition:
    """One source's health changed from ``previous`` to ``current`` at ``changed_at``."""

    source_id: int
    source_name: str
    previous: HealthStatus
    current: HealthStatus
    reasons: tuple[Reason, ...]
    changed_at: datetime

    @property
    def event(self) -> str:
        return HEALTH_CHANGED

    def payload(self) -> dict[str, Any]:
        """The ``health`` part of a notification (contract: ``{"event", "occurred_at",
        "source", "health"}``)."""
        return {
            "previous": self.previous,
            "status": self.current,
            "reasons": [reason_dict(r) for r in self.reasons],
        }


HealthListener = Callable[[Sequence[HealthTransition]], Awaitable[None]]
_listeners: list[HealthListener] = []


def add_health_listener(listener: HealthListener) -> None:
    """Get every batch of health transitions (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_health_listener(listener: HealthListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


async def emit_health_changed(transitions: Sequence[HealthTransition]) -> None:
    """Hand ``health.changed`` to each listener; one that fails is logged, the others run."""
    if not transitions:
        return
    for transition in transitions:
        log.info(
            "health.changed",
            source=transition.source_name,
            previous=transition.previous,
            status=transition.current,
            reasons=[r.code for r in transition.reasons],
        )
    for listener in list(_listeners):
        try:
            await listener(transitions)
        except Exception as exc:
            log.warning("health.listener_failed", error_type=type(exc).__name__)


def reason_dict(reason: Reason) -> dict[str, Any]:
    return {
        "code": reason.code,
        "severity": reason.severity,
        "message": reason.message,
        "database": reason.database,
    }


def health_dict(health: SourceHealth) -> dict[str, Any]:
    return {"status": health.status, "reasons": [reason_dict(r) for r in health.reasons]}


@dataclass(frozen=True)
class SourceFacts:
    """The few columns of a source that health reads (never its encrypted URL)."""

    id: int
    name: str
    schedule: str | None
    timezone: str
    enabled: bool
    created_at: datetime


# The grouped query's last answers by (store, sources asked), with the list version they were
# read at (``SourceHealthService._backup_facts``).
KEPT_FACTS_MAX = 64
_kept_facts: dict[tuple[int, tuple[int, ...] | None], tuple[int, list[BackupFact]]] = {}


@dataclass(frozen=True)
class EvaluatedSource:
    snapshot: SourceSnapshot
    health: SourceHealth


def local_free_ratio(path: Path | None) -> float | None:
    """The free share of the file system ``path`` is on (None: no such directory)."""
    if path is None:
        return None
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free / usage.total if usage.total else None


def build_snapshots(
    sources: Sequence[SourceFacts], facts: Sequence[BackupFact], free_ratio: float | None
) -> list[SourceSnapshot]:
    """Each source's snapshot from the grouped query's rows."""
    by_db: dict[tuple[int, str], list[BackupFact]] = {}
    for fact in facts:
        by_db.setdefault((fact.source_id, fact.database), []).append(fact)
    per_source: dict[int, list[DatabaseSnapshot]] = {}
    for (source_id, database), rows in sorted(by_db.items()):
        completed = sorted(
            (r for r in rows if r.status is BackupStatus.completed), key=lambda r: r.rank
        )
        failed = [r for r in rows if r.status is BackupStatus.failed]
        newest_ok = completed[0] if completed else None
        newest_failed = failed[0] if failed else None
        last = max((r for r in (newest_ok, newest_failed) if r is not None), key=lambda r: r.id)
        per_source.setdefault(source_id, []).append(
            DatabaseSnapshot(
                database=database,
                last_finished_status="completed" if last is newest_ok else "failed",
                last_finished_at=last.completed_at or last.backup_date,
                last_error=last.error_message if last is newest_failed else None,
                last_backup_id=last.id,
                last_success_at=(
                    (newest_ok.completed_at or newest_ok.backup_date) if newest_ok else None
                ),
                last_success_id=newest_ok.id if newest_ok else None,
                last_size=newest_ok.file_size if newest_ok else None,
                last_duration_ms=newest_ok.duration_ms if newest_ok else None,
                previous_sizes=tuple(r.file_size for r in completed[1:]),
            )
        )
    return [
        SourceSnapshot(
            source_id=s.id,
            name=s.name,
            schedule=s.schedule,
            timezone=s.timezone,
            enabled=s.enabled,
            created_at=s.created_at,
            databases=per_source.get(s.id, []),
            local_free_ratio=free_ratio,
        )
        for s in sources
    ]


def _facts(source: Source) -> SourceFacts:
    return SourceFacts(
        id=source.id,
        name=source.name,
        schedule=source.schedule,
        timezone=source.timezone,
        enabled=source.enabled,
        created_at=source.created_at,
    )


class SourceHealthService:
    def __init__(self, session: AsyncSession, *, backup_dir: Path | None) -> None:
        self.session = session
        self.backup_dir = backup_dir
        self.repository = HealthRepository(session)

    async def _source_facts(self) -> list[SourceFacts]:
        rows = await self.session.execute(
            select(
                Source.id,
                Source.name,
                Source.schedule,
                Source.timezone,
                Source.enabled,
                Source.created_at,
            ).order_by(Source.name)
        )
        return [SourceFacts(*row) for row in rows]

    async def evaluate(
        self, sources: Sequence[Source] | None = None, *, now: datetime | None = None
    ) -> list[EvaluatedSource]:
        """Every source's health (or those given, e.g. already loaded by the sources API)."""
        now = now or utcnow()
        facts = [_facts(s) for s in sources] if sources is not None else await self._source_facts()
        if not facts:
            return []
        ids = None if sources is None else tuple(sorted(f.id for f in facts))
        rows = await self._backup_facts(ids)
        free = await asyncio.to_thread(local_free_ratio, self.backup_dir)
        snapshots = build_snapshots(facts, rows, free)
        for enricher in enrichers():
            await enricher(self.session, snapshots)
        return [EvaluatedSource(s, evaluate(s, now)) for s in snapshots]

    async def _backup_facts(self, ids: tuple[int, ...] | None) -> list[BackupFact]:
        """The grouped backup query, or its answer kept from an earlier call when the backups'
        list version says nothing changed since (the common case: /health, /metrics and the
        dashboard poll far more often than backups end). The version is read first, so a kept
        answer is never older than its version."""
        version = await self.repository.list_version()
        key = (id(self.session.bind), ids)
        kept = _kept_facts.get(key)
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        rows = await self.repository.backup_facts(ids)
        if version is not None:
            if len(_kept_facts) >= KEPT_FACTS_MAX:
                _kept_facts.pop(next(iter(_kept_facts)))
            _kept_facts[key] = (version, rows)
        return rows

    async def by_source(
        self, sources: Sequence[Source], *, now: datetime | None = None
    ) -> dict[int, SourceHealth]:
        return {e.snapshot.source_id: e.health for e in await self.evaluate(sources, now=now)}

    async def record_transitions(self, *, now: datetime | None = None) -> list[HealthTransition]:
        """Evaluate, store each source's state, and return the changes of status since the
        last time (a source seen for the first time counts as having been ``ok``). Commits."""
        now = now or utcnow()
        evaluated = await self.evaluate(now=now)
        states = await self.repository.states()
        transitions: list[HealthTransition] = []
        for item in evaluated:
            snapshot, health = item.snapshot, item.health
            reasons = [reason_dict(r) for r in health.reasons]
            state = states.get(snapshot.source_id)
            previous: HealthStatus = OK.status if state is None else _status(state.status)
            if state is None:
                state = SourceHealthState(
                    source_id=snapshot.source_id,
                    status=health.status,
                    reasons=reasons,
                    changed_at=now,
                    checked_at=now,
                )
                self.repository.add_state(state)
            else:
                if state.status != health.status:
                    state.changed_at = now
                state.status, state.reasons, state.checked_at = health.status, reasons, now
            if previous != health.status:
                transitions.append(
                    HealthTransition(
                        source_id=snapshot.source_id,
                        source_name=snapshot.name,
                        previous=previous,
                        current=health.status,
                        reasons=health.reasons,
                        changed_at=now,
                    )
                )
        await self.repository.forget_states(e.snapshot.source_id for e in evaluated)
        await self.session.commit()
        return transitions


def _status(value: str) -> HealthStatus:
    if value == "warning":
        return "warning"
    if value == "failing":
        return "failing"
    return "ok"


async def refresh_source_health(
    session: AsyncSession, *, backup_dir: Path | None, now: datetime | None = None
) -> list[HealthTransition]:
    """Evaluate, record, and emit ``health.changed`` for what changed (the worker's job)."""
    transitions = await SourceHealthService(session, backup_dir=backup_dir).record_transitions(
        now=now
    )
    await emit_health_changed(transitions)
    return transitions
