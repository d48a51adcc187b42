"""Retention: which of one source's backups go to the trash now, and why.

Two rules, chosen by the source's ``retention``:

- No ``keep_*`` set: the original's rule. A completed backup older than ``trash_after_days`` goes to
  the trash ("older" is strict: exactly 15 days old stays until the next run).
- Any ``keep_*`` set: restic ``forget`` semantics, per database. Completed backups are walked newest
  first; one survives if it is among the newest ``keep_last``, or it is the newest backup of its
  day / ISO week / month / year and that period is among the newest ``keep_daily`` /
  ``keep_weekly`` / ``keep_monthly`` / ``keep_yearly`` periods *that have a backup* (as restic
  counts: a month with no backup uses up no ``keep_monthly``). Periods are read in the source's time
  zone. Age plays no part for completed backups; every other one goes to the trash. Unlike restic
  0.17+, the oldest backup is not kept extra when a count is left over: the contract keeps exactly
  the backups the rule names.

In both: the newest completed backup of each database, a pinned backup, and anything pending or in
progress are never trashed. Failed backups follow the original (its auto-trash takes ``completed``
and ``failed`` alike by age): a failed backup goes to the trash once older than
``trash_after_days``, under either rule, and never takes a ``keep_*`` place, since it cannot be
restored. Backups already in the trash are left out of the plan (purging them is
``purge_after_days``' business, elsewhere).

Applying a plan and planning again trashes nothing more: the periods and the newest backups of
what survives are the same ones that made it survive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.sources.cron import resolve_timezone

__all__ = [
    "KEEP_FIELDS",
    "BackupFacts",
    "RetentionDecision",
    "RetentionPlan",
    "RetentionRule",
    "plan_retention",
]

KEEP_FIELDS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
MAX_KEEP = 100_000
MAX_DAYS = 36_500

COMPLETED, FAILED, PENDING, IN_PROGRESS, IN_TRASH = (
    "completed",
    "failed",
    "pending",
    "in_progress",
    "in_trash",
)
_STATUSES = frozenset({COMPLETED, FAILED, PENDING, IN_PROGRESS, IN_TRASH})


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """A source's ``retention``; ``None`` for a ``keep_*`` means "not used"."""

    trash_after_days: float = 15
    purge_after_days: float = 7
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None

    def __post_init__(self) -> None:
        for name in ("trash_after_days", "purge_after_days"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value <= MAX_DAYS
            ):
                raise ValueError(f"{name} must be a number of days above 0, at most {MAX_DAYS}")
        for name in KEEP_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEEP:
                raise ValueError(
                    f"{name} must be a whole number from 1 to {MAX_KEEP}, or null to not use it "
                    f"(got {value!r})"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RetentionRule:
        """A rule from a source's ``retention`` object; unknown keys are refused, not ignored."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown retention setting(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**data)  # type: ignore[arg-type]  # __post_init__ checks every value

    @property
    def keeps_by_count(self) -> bool:
        """Whether any ``keep_*`` is set, so restic's rule applies instead of the age rule."""
        return any(getattr(self, name) is not None for name in KEEP_FIELDS)


@dataclass(frozen=True, slots=True)
class BackupFacts:
    """What retention needs to know about one backup row."""

    id: int
    database_name: str
    created_at: datetime
    status: str  # a BackupStatus value
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """One backup's fate, with every reason (``keep-daily 2026-03-29``, ``pinned``, ...)."""

    backup_id: int
    database_name: str
    created_at: datetime
    action: Literal["keep", "trash"]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Decisions for every backup not already in the trash, newest first per database."""

    decisions: tuple[RetentionDecision, ...]

    @property
    def trash_ids(self) -> list[int]:
        return [d.backup_id for d in self.decisions if d.action == "trash"]

    @property
    def keep_ids(self) -> list[int]:
        return [d.backup_id for d in self.decisions if d.action == "keep"]

    def reasons(self) -> dict[int, tuple[str, ...]]:
        return {d.backup_id: d.reasons for d in self.decisions}


# restic's buckets: which period a local time falls in, and how that period is shown.
_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("keep_daily", lambda t: f"{t:%Y-%m-%d}"),
    ("keep_weekly", lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ("keep_monthly", lambda t: f"{t:%Y-%m}"),
    ("keep_yearly", lambda t: f"{t:%Y}"),
)


def plan_retention(
    backups: Iterable[BackupFacts],
    rule: RetentionRule,
    *,
    tz: str | ZoneInfo,
    now: datetime,
) -> RetentionPlan:
    """Which of one source's backups to trash now and why, by the rules in this module's doc."""
    zone = resolve_timezone(tz)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got naive {now.isoformat()}")
    cutoff = now.astimezone(UTC) - timedelta(days=rule.trash_after_days)
    by_database: dict[str, list[BackupFacts]] = defaultdict(list)
    seen: set[int] = set()
    for backup in backups:
        _check(backup, seen)
        if backup.status != IN_TRASH:
            by_database[backup.database_name].append(backup)
    decisions: list[RetentionDecision] = []
    for database in sorted(by_database):
        rows = sorted(by_database[database], key=lambda b: (b.created_at, b.id), reverse=True)
        decisions.extend(_plan_database(rows, rule, zone, cutoff))
    return RetentionPlan(tuple(decisions))


def _check(backup: BackupFacts, seen: set[int]) -> None:
    if backup.id in seen:
        raise ValueError(f"backup {backup.id} is listed twice")
    seen.add(backup.id)
    if backup.created_at.tzinfo is None or backup.created_at.utcoffset() is None:
        raise ValueError(f"backup {backup.id} has a naive created_at; pass UTC-aware datetimes")
    if backup.status not in _STATUSES:
        raise ValueError(f"backup {backup.id} has an unknown status {backup.status!r}")


def _plan_database(
    rows: list[BackupFacts], rule: RetentionRule, zone: ZoneInfo, cutoff: datetime
) -> list[RetentionDecision]:
    """Decisions for one database's backups, given newest first."""
    days = _days(rule.trash_after_days)
    completed = [b for b in rows if b.status == COMPLETED]
    kept_by_rule = _restic_reasons(completed, rule, zone) if rule.keeps_by_count else {}
    newest_completed = completed[0].id if completed else None
    decisions = []
    for backup in rows:
        keep: list[str] = []
        trash: list[str] = []
        if backup.status in (PENDING, IN_PROGRESS):
            keep.append(backup.status.replace("_", " "))
        elif backup.status == FAILED:
            if backup.created_at < cutoff:
                trash.append(f"failed, older than {days}")
            else:
                keep.append(f"failed, younger than {days}")
        elif rule.keeps_by_count:
            keep.extend(kept_by_rule.get(backup.id, ()))
            if not keep:
                trash.append(f"not kept by {_describe(rule)}")
        elif backup.created_at < cutoff:
            trash.append(f"older than {days}")
        else:
            keep.append(f"younger than {days}")
        if backup.id == newest_completed:
            keep.append("newest completed backup")
        if backup.pinned:
            keep.append("pinned")
        if trash and keep:  # a protection overrides the rule; say both
            keep = [*keep, *(f"would be trashed: {reason}" for reason in trash)]
            trash = []
        decisions.append(
            RetentionDecision(
                backup_id=backup.id,
                database_name=backup.database_name,
                created_at=backup.created_at,
                action="trash" if trash else "keep",
                reasons=tuple(trash or keep),
            )
        )
    return decisions


def _restic_reasons(
    completed: list[BackupFacts], rule: RetentionRule, zone: ZoneInfo
) -> dict[int, list[str]]:
    """restic's ``ApplyPolicy`` for the count buckets, over completed backups newest first."""
    reasons: dict[int, list[str]] = defaultdict(list)
    if rule.keep_last is not None:
        for place, backup in enumerate(completed[: rule.keep_last], start=1):
            reasons[backup.id].append(f"keep-last {place} of {rule.keep_last}")
    for name, period_of in _PERIODS:
        left = getattr(rule, name)
        if left is None:
            continue
        label = name.replace("_", "-")
        last_period: str | None = None
        for backup in completed:
            if left == 0:
                break
            period = period_of(backup.created_at.astimezone(zone))
            # Newest first, so the first backup seen in a period is that period's newest.
            if period != last_period:
                reasons[backup.id].append(f"{label} {period}")
                last_period = period
                left -= 1
    return reasons


def _describe(rule: RetentionRule) -> str:
    return ", ".join(
        f"{name.replace('_', '-')} {getattr(rule, name)}"
        for name in KEEP_FIELDS
        if getattr(rule, name) is not None
    )


def _days(value: float) -> str:
    number = int(value) if float(value).is_integer() else value
    return f"{number} day" if number == 1 else f"{number} days"
