"""Five-field cron expressions: parse them, and compute their fire times in an IANA time zone.

Syntax (Vixie cron / cronie): ``minute hour day-of-month month day-of-week``, each field ``*``, a
number, a range ``a-b``, a step ``*/s``, ``a-b/s`` or ``a/s`` (``a`` to the field's end), or a
comma list of those. Months may be ``jan``-``dec`` and weekdays ``sun``-``sat`` (any case); weekday
0 and 7 are both Sunday. The aliases ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``,
``@daily`` (``@midnight``) and ``@hourly`` stand for their usual five fields.

Day fields, as in Vixie cron: when both day-of-month and day-of-week are restricted, a day matches
if *either* does (``0 0 13 * fri`` runs on the 13th and on every Friday). A field that begins with
``*`` (``*`` or ``*/s``) counts as unrestricted, so ``0 0 */2 * mon`` means odd days that are
Mondays.

Daylight saving time follows cronie's rules (cron.c), which operators know from their own servers.
Cronie tells a *fixed-time* entry (neither the minute nor the hour field begins with ``*``) from a
*wildcard* entry (one of them does):

- Spring forward, a local time that does not exist (02:30 on a day the clock jumps from 02:00 to
  03:00): a fixed-time slot runs once, at the first instant after the gap (03:00 local), however
  many of its slots fell into the gap, and not twice when the entry also names 03:00. A wildcard
  entry just skips the missing slots: ``0 * * * *`` runs at 01:00 and then 03:00 local, which is one
  real hour later, so an hourly backup keeps its real rhythm. (systemd timers choose the same.)
- Fall back, a local time that happens twice (02:30 when the clock goes from 03:00 back to 02:00):
  a fixed-time slot runs once, at the first occurrence, so a daily backup runs once that day. A
  wildcard entry runs at both occurrences: every real hour of the repeated hour is still backed up
  by an hourly entry, and no two runs share an instant (each fire time is a distinct UTC instant,
  which is also what names a slot).

Fire times are computed by stepping through the matching days and, inside each, the matching hours
and minutes; there is no minute-by-minute scan. All results are aware datetimes in UTC.
"""

from __future__ import annotations

import calendar
import heapq
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CronError",
    "CronSchedule",
    "interval_estimate",
    "next_runs",
    "parse_cron",
    "resolve_timezone",
    "slots_between",
]

MAX_EXPRESSION_LENGTH = 200
MAX_RUNS = 10_000
MAX_SLOTS = 100_000

ALIASES: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
# cron counts weekdays from Sunday = 0; calendar.day_abbr starts on Monday.
_DAY_NAMES = {calendar.day_abbr[(number - 1) % 7].lower(): number for number in range(7)}
# The most days each month can have (February in a leap year).
_LONGEST_MONTH = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}


class CronError(ValueError):
    """A cron expression that cannot be used; ``field`` names the faulty field, if one is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    ordinal: str
    low: int
    high: int
    # Where ``*`` and ``a/s`` end; differs from ``high`` only for weekdays (7 is an alias of 0).
    star_high: int
    names: Mapping[str, int]
    names_hint: str = ""

    def error(self, text: str, why: str) -> CronError:
        return CronError(f"{self.name} field ({self.ordinal}) {text!r}: {why}", field=self.name)


_MINUTE = _Field("minute", "1st", 0, 59, 59, {})
_HOUR = _Field("hour", "2nd", 0, 23, 23, {})
_DAY_OF_MONTH = _Field("day-of-month", "3rd", 1, 31, 31, {})
_MONTH = _Field("month", "4th", 1, 12, 12, _MONTH_NAMES, " or a month name jan-dec")
_DAY_OF_WEEK = _Field("day-of-week", "5th", 0, 7, 6, _DAY_NAMES, " or a day name sun-sat")
_FIELDS = (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression: the values each field allows, and how the day fields combine."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: tuple[int, ...]
    days_of_week: frozenset[int]  # 0 = Sunday
    day_of_month_star: bool
    day_of_week_star: bool
    # Neither minute nor hour begins with ``*``: the DST rules of a fixed-time entry apply.
    fixed_time: bool

    def day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether the day fields allow this local date (the month is checked by the caller)."""
        weekday = (calendar.weekday(year, month, day) + 1) % 7
        by_month_day = day in self.days_of_month
        by_weekday = weekday in self.days_of_week
        if self.day_of_month_star or self.day_of_week_star:
            return by_month_day and by_weekday
        return by_month_day or by_weekday


def parse_cron(expression: str) -> CronSchedule:
    """Parse and validate a cron expression; a ``CronError`` says which field is wrong and why."""
    if not isinstance(expression, str):
        raise CronError(f"a cron expression must be a string, not {type(expression).__name__}")
    text = expression.strip()
    if not text:
        raise CronError("the cron expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CronError(f"the cron expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    if text.startswith("@"):
        alias = text.lower()
        if alias not in ALIASES:
            known = ", ".join(ALIASES)
            raise CronError(f"{text!r} is not a known alias (use one of {known})")
        fields = ALIASES[alias].split()
    else:
        fields = text.split()
    if len(fields) != len(_FIELDS):
        hint = " (seconds and years are not supported)" if len(fields) > len(_FIELDS) else ""
        raise CronError(
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)} in {text!r}{hint}"
        )
    minutes, hours, days_of_month, months, days_of_week = (
        _parse_field(spec, field_text) for spec, field_text in zip(_FIELDS, fields, strict=True)
    )
    schedule = CronSchedule(
        expression=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days_of_month=frozenset(days_of_month),
        months=tuple(sorted(months)),
        days_of_week=frozenset(days_of_week),
        day_of_month_star=fields[2].startswith("*"),
        day_of_week_star=fields[4].startswith("*"),
        fixed_time=not (fields[0].startswith("*") or fields[1].startswith("*")),
    )
    _check_some_day_exists(schedule, fields[2])
    return schedule


def _parse_field(spec: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise spec.error(text, "has an empty list item (two commas, or one at an end)")
        base, slash, step_text = item.partition("/")
        step = _parse_step(spec, text, step_text) if slash else 1
        if base == "*":
            low, high = spec.low, spec.star_high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _parse_value(spec, text, first), _parse_value(spec, text, last)
            if low > high:
                hint = (
                    " (Sunday is 0 or 7: write fri-sat,sun or 5-7)" if spec is _DAY_OF_WEEK else ""
                )
                raise spec.error(text, f"the range {base!r} runs backwards{hint}")
        else:
            low = _parse_value(spec, text, base)
            high = spec.star_high if slash else low
        values.update(range(low, high + 1, step))
    if spec is _DAY_OF_WEEK and 7 in values:
        values.discard(7)
        values.add(0)
    return values


def _parse_step(spec: _Field, text: str, step_text: str) -> int:
    largest = spec.star_high - spec.low
    if not step_text.isdigit() or not 1 <= int(step_text) <= largest:
        raise spec.error(text, f"the step {step_text!r} must be a number from 1 to {largest}")
    return int(step_text)


def _parse_value(spec: _Field, text: str, token: str) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise spec.error(text, f"{value} is out of range {spec.low}-{spec.high}")
        return value
    if token.lower() in spec.names:
        return spec.names[token.lower()]
    if not token:
        raise spec.error(text, "a range or step is missing a number")
    if any(mark in token.upper() for mark in "?LW#"):
        raise spec.error(text, "Quartz-style '?', 'L', 'W' and '#' are not supported")
    raise spec.error(text, f"{token!r} is not a number {spec.low}-{spec.high}{spec.names_hint}")


def _check_some_day_exists(schedule: CronSchedule, day_of_month_text: str) -> None:
    """Refuse day/month pairs that never occur (``0 0 30 2 *``): they would never fire."""
    if not (schedule.day_of_month_star or schedule.day_of_week_star):
        return  # either field may match, and every weekday occurs in every month
    if any(
        day <= _LONGEST_MONTH[month] for month in schedule.months for day in schedule.days_of_month
    ):
        return
    month_names = ",".join(calendar.month_abbr[month].lower() for month in schedule.months)
    raise _DAY_OF_MONTH.error(
        day_of_month_text, f"no such day ever occurs in the months allowed ({month_names})"
    )


def resolve_timezone(tz: str | ZoneInfo) -> ZoneInfo:
    """The zone for an IANA name (``Europe/Berlin``), with a clear error for an unknown one."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"{tz!r} is not a known time zone (use an IANA name such as UTC or Europe/Berlin)"
        ) from None


def _schedule(expr: str | CronSchedule) -> CronSchedule:
    return expr if isinstance(expr, CronSchedule) else parse_cron(expr)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def next_runs(
    expr: str | CronSchedule, tz: str | ZoneInfo, after: datetime, n: int = 1
) -> list[datetime]:
    """The first ``n`` fire times strictly after ``after``, as aware UTC datetimes, in order."""
    if not 0 <= n <= MAX_RUNS:
        raise ValueError(f"n must be from 0 to {MAX_RUNS}, got {n}")
    runs: list[datetime] = []
    if n == 0:
        return runs
    for instant in _fire_times(_schedule(expr), resolve_timezone(tz), _aware(after, "after")):
        runs.append(instant)
        if len(runs) == n:
            break
    return runs


def slots_between(
    expr: str | CronSchedule,
    tz: str | ZoneInfo,
    start: datetime,
    end: datetime,
    *,
    limit: int = MAX_SLOTS,
) -> list[datetime]:
    """Fire times in ``(start, end]`` (aware UTC, in order): the slots missed since ``start``.

    The interval is half-open so that consecutive catch-ups (``end`` becomes the next ``start``)
    never see a slot twice. More than ``limit`` slots is an error rather than a huge list.
    """
    start_utc, end_utc = _aware(start, "start"), _aware(end, "end")
    if end_utc < start_utc:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    slots: list[datetime] = []
    for instant in _fire_times(_schedule(expr), resolve_timezone(tz), start_utc):
        if instant > end_utc:
            break
        if len(slots) == limit:
            raise ValueError(f"more than {limit} slots between {start_utc} and {end_utc}")
        slots.append(instant)
    return slots


def interval_estimate(
    expr: str | CronSchedule, tz: str | ZoneInfo, *, at: datetime | None = None
) -> timedelta:
    """The longest gap between consecutive runs over the year after ``at`` (default: now).

    The longest gap rather than the most common one, because it feeds the "stale" health check:
    ``0 9 * * mon-fri`` has a 72-hour gap every weekend, and a source must not be reported stale
    every Monday morning. DST is counted between days (a daily run has a 25-hour gap on the
    fall-back day) but not inside one, so this is an estimate, not an exact schedule.
    """
    schedule = _schedule(expr)
    zone = resolve_timezone(tz)
    start = _aware(at, "at") if at is not None else datetime.now(UTC)
    times_of_day = [timedelta(hours=h, minutes=m) for h in schedule.hours for m in schedule.minutes]
    longest = max(
        (later - earlier for earlier, later in itertools.pairwise(times_of_day)),
        default=timedelta(0),
    )
    first_day = start.astimezone(zone).date()
    previous: date | None = None
    for seen, day in enumerate(_matching_days(schedule, first_day), start=1):
        if previous is not None:
            ended = datetime.combine(previous, time()) + times_of_day[-1]
            began = datetime.combine(day, time()) + times_of_day[0]
            longest = max(longest, _as_utc(began, zone) - _as_utc(ended, zone))
        previous = day
        # Two days at least (a leap-day schedule has one every four years), a year at least.
        if seen >= 2 and day - first_day > timedelta(days=366):
            break
    return longest


def _as_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _fire_times(schedule: CronSchedule, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after ``after`` (aware UTC), in order, without duplicates."""
    previous: datetime | None = None
    for instant in _fire_times_unmerged(schedule, zone, after):
        # Slots in one DST gap all fire at the gap's end: that instant is yielded once.
        if instant != previous:
            yield instant
        previous = instant


def _fire_times_unmerged(
    schedule: CronSchedule, zone: ZoneInfo, after: datetime
) -> Iterator[datetime]:
    first_day = _first_day_after(after, zone)
    # A clock turned back makes wall-clock order differ from real order, so instants wait in a heap
    # until no later day can produce an earlier one: every slot of a day fires at or after the
    # first instant its midnight happens.
    waiting: list[datetime] = []
    try:
        for day in _matching_days(schedule, first_day):
            floor = _occurrences(datetime.combine(day, time()), zone)[0]
            while waiting and waiting[0] < floor:
                yield heapq.heappop(waiting)
            for hour in schedule.hours:
                for minute in schedule.minutes:
                    wall = datetime.combine(day, time(hour, minute))
                    for instant in _resolve(wall, zone, fixed_time=schedule.fixed_time):
                        if instant > after:
                            heapq.heappush(waiting, instant)
    except OverflowError:
        pass  # the calendar ends in year 9999
    while waiting:
        yield heapq.heappop(waiting)


def _first_day_after(after: datetime, zone: ZoneInfo) -> date:
    """The earliest local date with a slot that may fire after ``after``.

    Usually the local date of ``after``; the day before when ``after`` lies between the two
    occurrences of midnight of a clock turned back across it (yesterday's second 23:30 is ahead).
    """
    day = after.astimezone(zone).date()
    while day > date.min and _occurrences(datetime.combine(day, time()), zone)[-1] > after:
        day -= timedelta(days=1)
    return day


def _matching_days(schedule: CronSchedule, first_day: date) -> Iterator[date]:
    """Local dates from ``first_day`` on that the month and day fields allow, in order."""
    for year in range(first_day.year, 10_000):
        for month in schedule.months:
            if (year, month) < (first_day.year, first_day.month):
                continue
            start = first_day.day if (year, month) == (first_day.year, first_day.month) else 1
            last = calendar.monthrange(year, month)[1]
            for day in range(start, last + 1):
                if schedule.day_matches(year, month, day):
                    yield date(year, month, day)


def _resolve(wall: datetime, zone: ZoneInfo, *, fixed_time: bool) -> tuple[datetime, ...]:
    """The UTC instants a naive local wall-clock slot fires at, by the DST rules above."""
    occurrences, in_gap = _occurrences_and_gap(wall, zone)
    if fixed_time:
        return occurrences[:1]
    return () if in_gap else occurrences


def _occurrences(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The instants the clock reads ``wall`` (two in a fold); for a gap, the gap's end."""
    return _occurrences_and_gap(wall, zone)[0]


def _occurrences_and_gap(wall: datetime, zone: ZoneInfo) -> tuple[tuple[datetime, ...], bool]:
    earlier_offset = wall.replace(tzinfo=zone, fold=0).utcoffset()
    later_offset = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert earlier_offset is not None and later_offset is not None
    first = (wall - earlier_offset).replace(tzinfo=UTC)
    if earlier_offset == later_offset:
        return (first,), False
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        # The wall time happens twice; fold=1 is the second occurrence, after the clock went back.
        return (first, (wall - later_offset).replace(tzinfo=UTC)), False
    # The clock jumped over the wall time (PEP 495: fold=0 then reads it with the offset before).
    return (_gap_end(wall, zone, earlier_offset, later_offset),), True


def _gap_end(
    wall: datetime, zone: ZoneInfo, before_offset: timedelta, after_offset: timedelta
) -> datetime:
    """The first instant after the gap ``wall`` falls into (03:00 when 02:00 jumps to 03:00)."""
    # ``wall`` read with the offset after the jump lies before the jump, read with the offset
    # before it lies after: the jump is in between. Bisect on whole seconds (transitions are).
    low = int((wall - after_offset).replace(tzinfo=UTC).timestamp())
    high = int((wall - before_offset).replace(tzinfo=UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == before_offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
