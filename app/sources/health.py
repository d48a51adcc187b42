"""Health per source (contract part 2, "Health and notifications"): ``ok | warning | failing``
with reasons, computed from a per-source *snapshot* by a list of small *rules*.

Nothing here touches the database: ``app/sources/health_repository.py`` fills the snapshots with
one grouped query, ``app/sources/health_service.py`` runs the rules and records transitions.

Adding a reason (failed copy, failed verification, destination unreachable — built by other
features) is two small steps, neither of which edits this file's rules:

1. put the data on the snapshot: ``register_enricher(fn)`` where ``fn(session, snapshots)`` is an
   async callable that runs *one* grouped query for all sources and writes what it found into
   ``snapshot.extras[...]`` (e.g. ``snapshot.extras["failed_copies"] = 2``);
2. ``register_rule(rule)`` where ``rule(snapshot, now)`` returns the ``Reason``\\ s it sees (an
   empty tuple when the source is fine by it).

The reason codes those features are expected to use are reserved below (``FAILED_COPY`` …), so
dashboards and notifications can name them already.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from app.sources.cron import interval_estimate

HealthStatus = Literal["ok", "warning", "failing"]
Severity = Literal["warning", "failing"]

# The order of gravity; the metric ``dbkeep_source_health`` is this index.
STATUS_LEVELS: dict[HealthStatus, int] = {"ok": 0, "warning": 1, "failing": 2}

# Reason codes. The last three are for features that fill ``extras`` (see the module docstring).
STALE = "stale"
SHRUNKEN = "shrunken"
LAST_BACKUP_FAILED = "last_backup_failed"
LOW_FREE_SPACE = "low_free_space"
FAILED_COPY = "failed_copy"
FAILED_VERIFICATION = "failed_verification"
DESTINATION_UNREACHABLE = "destination_unreachable"

# "no completed backup within 1.5 times its schedule interval"
STALE_FACTOR = 1.5
# "newest backup under half the median size of the previous seven"
SHRUNKEN_RATIO = 0.5
SHRUNKEN_HISTORY = 7
# Fewer previous backups than this and a median says too little to call a backup shrunken.
SHRUNKEN_MIN_HISTORY = 3
# "local free space under 10 %"
LOW_FREE_SPACE_RATIO = 0.10
# Error texts in reasons are cut to this (they are the stored, secret-free messages).
REASON_ERROR_CHARS = 200


@dataclass(frozen=True)
class Reason:
    code: str
    severity: Severity
    message: str
    database: str | None = None


@dataclass(frozen=True)
class SourceHealth:
    status: HealthStatus
    reasons: tuple[Reason, ...] = ()

    @property
    def level(self) -> int:
        return STATUS_LEVELS[self.status]


OK = SourceHealth("ok")


@dataclass(frozen=True)
class DatabaseSnapshot:
    """One database of a source: its newest finished backup and its newest completed ones."""

    database: str
    # The newest backup that ended, completed or failed (a cancelled one is the user's choice
    # and does not count).
    last_finished_status: Literal["completed", "failed"] | None = None
    last_finished_at: datetime | None = None
    last_error: str | None = None
    last_backup_id: int | None = None
    # The newest completed backup.
    last_success_at: datetime | None = None
    last_success_id: int | None = None
    last_size: int | None = None
    last_duration_ms: int | None = None
    # The sizes of up to seven completed backups before the newest, newest first.
    previous_sizes: tuple[int, ...] = ()


@dataclass
class SourceSnapshot:
    """What the rules see of one source."""

    source_id: int
    name: str
    schedule: str | None
    timezone: str
    enabled: bool
    created_at: datetime
    databases: list[DatabaseSnapshot] = field(default_factory=list)
    # Free share (0..1) of the file system the local backup directory is on; None: unknown.
    local_free_ratio: float | None = None
    # Filled by enrichers of other features (``register_enricher``), read by their rules.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def last_success_at(self) -> datetime | None:
        times = [d.last_success_at for d in self.databases if d.last_success_at is not None]
        return max(times, default=None)


Rule = Callable[[SourceSnapshot, datetime], Sequence[Reason]]
# ``enricher(session, snapshots)``: one bounded query for all the snapshots, then fill extras.
Enricher = Callable[[Any, Sequence[SourceSnapshot]], Awaitable[None]]


@lru_cache(maxsize=512)
def _interval(schedule: str, timezone: str, day: str) -> timedelta:
    # Keyed by day: the longest gap over the next year changes slowly (DST, month lengths), and
    # /health must not walk a year of calendar per source on every request.
    return interval_estimate(schedule, timezone, at=datetime.fromisoformat(day))


def schedule_interval(schedule: str, timezone: str, now: datetime) -> timedelta | None:
    """The longest gap between consecutive runs of ``schedule`` (app/sources/cron.py), or None
    when the expression or zone can't be read (then the source is never called stale)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    try:
        interval = _interval(schedule, timezone, day)
    except ValueError:
        return None
    return interval if interval > timedelta(0) else None


# ---- the rules -------------------------------------------------------------------------------


def rule_last_backup_failed(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    """The newest finished backup of a database failed: failing."""
    reasons = []
    for db in snapshot.databases:
        if db.last_finished_status != "failed":
            continue
        error = (db.last_error or "no reason recorded").strip().splitlines()[0]
        if len(error) > REASON_ERROR_CHARS:
            error = error[: REASON_ERROR_CHARS - 1] + "…"
        reasons.append(
            Reason(
                LAST_BACKUP_FAILED,
                "failing",
                f"The last backup of '{db.database}' failed: {error}",
                db.database,
            )
        )
    return reasons


def rule_stale(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    """No completed backup within 1.5 times the schedule's interval: warning. Manual-only and
    disabled sources are never stale. A source that never completed one counts from when it
    was added."""
    if not snapshot.schedule or not snapshot.enabled:
        return ()
    interval = schedule_interval(snapshot.schedule, snapshot.timezone, now)
    if interval is None:
        return ()
    allowed = interval * STALE_FACTOR
    since = snapshot.last_success_at or snapshot.created_at
    if now - since <= allowed:
        return ()
    hours = allowed.total_seconds() / 3600
    if snapshot.last_success_at is None:
        message = f"No completed backup since the source was added, over {hours:g} h ago."
    else:
        message = f"No completed backup within {hours:g} h (1.5 times the schedule's interval)."
    return (Reason(STALE, "warning", message),)


def rule_shrunken(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    """The newest completed backup of a database is under half the median size of the
    previous seven: warning (a table dropped, a dump cut short that still looked complete)."""
    reasons = []
    for db in snapshot.databases:
        if db.last_size is None or len(db.previous_sizes) < SHRUNKEN_MIN_HISTORY:
            continue
        median = statistics.median(db.previous_sizes[:SHRUNKEN_HISTORY])
        if db.last_size < median * SHRUNKEN_RATIO:
            reasons.append(
                Reason(
                    SHRUNKEN,
                    "warning",
                    f"The newest backup of '{db.database}' is {db.last_size} bytes, under half "
                    f"the median ({median:g} bytes) of the {len(db.previous_sizes)} before it.",
                    db.database,
                )
            )
    return reasons


def rule_low_free_space(snapshot: SourceSnapshot, now: datetime) -> Sequence[Reason]:
    """The local backup directory's file system has under 10 % free: warning."""
    ratio = snapshot.local_free_ratio
    if ratio is None or ratio >= LOW_FREE_SPACE_RATIO:
        return ()
    return (
        Reason(
            LOW_FREE_SPACE,
            "warning",
            f"Local free space is {ratio * 100:.1f} % (under {LOW_FREE_SPACE_RATIO:.0%}).",
        ),
    )


DEFAULT_RULES: tuple[Rule, ...] = (
    rule_last_backup_failed,
    rule_stale,
    rule_shrunken,
    rule_low_free_space,
)

_rules: list[Rule] = list(DEFAULT_RULES)
_enrichers: list[Enricher] = []


def register_rule(rule: Rule) -> None:
    """Add a rule every evaluation runs (once: registering it again changes nothing)."""
    if rule not in _rules:
        _rules.append(rule)


def register_enricher(enricher: Enricher) -> None:
    """Add an enricher that fills ``snapshot.extras`` before the rules run (once)."""
    if enricher not in _enrichers:
        _enrichers.append(enricher)


def rules() -> tuple[Rule, ...]:
    return tuple(_rules)


def enrichers() -> tuple[Enricher, ...]:
    return tuple(_enrichers)


def evaluate(
    snapshot: SourceSnapshot, now: datetime, rules: Sequence[Rule] | None = None
) -> SourceHealth:
    """Run the rules over one snapshot: the status is that of the gravest reason."""
    found: list[Reason] = []
    for rule in _rules if rules is None else rules:
        found.extend(rule(snapshot, now))
    if not found:
        return OK
    status: HealthStatus = "failing" if any(r.severity == "failing" for r in found) else "warning"
    # Failing reasons first, then in rule order.
    ordered = sorted(found, key=lambda r: r.severity != "failing")
    return SourceHealth(status, tuple(ordered))
