"""Cron expressions: parsing, clear errors, and fire times across DST changes and year ends."""

from __future__ import annotations

import itertools
import time as clock
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.sources.cron import (
    CronError,
    interval_estimate,
    next_runs,
    parse_cron,
    slots_between,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` (fold=1: its second occurrence), as the UTC instant."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


# ---- parsing ---------------------------------------------------------------------------------


def test_fields_lists_ranges_steps_and_names() -> None:
    schedule = parse_cron("0,30 */6 1-5,20 JAN-mar,dec mon-fri")
    assert schedule.minutes == (0, 30)
    assert schedule.hours == (0, 6, 12, 18)
    assert schedule.days_of_month == {1, 2, 3, 4, 5, 20}
    assert schedule.months == (1, 2, 3, 12)
    assert schedule.days_of_week == {1, 2, 3, 4, 5}
    assert schedule.fixed_time is False  # the hour field begins with '*'


def test_steps_over_ranges_and_from_a_start() -> None:
    assert parse_cron("10-30/10 * * * *").minutes == (10, 20, 30)
    assert parse_cron("50/5 * * * *").minutes == (50, 55)
    assert parse_cron("* * * * 1/2").days_of_week == {1, 3, 5}  # never 7, Sunday's alias


def test_sunday_is_0_and_7() -> None:
    assert parse_cron("0 0 * * 7").days_of_week == {0}
    assert parse_cron("0 0 * * 5-7").days_of_week == {5, 6, 0}
    assert parse_cron("0 0 * * sun").days_of_week == {0}


@pytest.mark.parametrize(
    ("alias", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias: str, same_as: str) -> None:
    parsed, expected = parse_cron(alias), parse_cron(same_as)
    assert (parsed.minutes, parsed.hours, parsed.days_of_month, parsed.months) == (
        expected.minutes,
        expected.hours,
        expected.days_of_month,
        expected.months,
    )
    assert parsed.days_of_week == expected.days_of_week
    assert parsed.fixed_time == expected.fixed_time


@pytest.mark.parametrize(
    ("expression", "field", "words"),
    [
        ("61 * * * *", "minute", ["minute field (1st) '61'", "61 is out of range 0-59"]),
        ("* 24 * * *", "hour", ["hour field (2nd)", "24 is out of range 0-23"]),
        ("* * 0 * *", "day-of-month", ["day-of-month field (3rd)", "0 is out of range 1-31"]),
        ("* * * 13 *", "month", ["month field (4th)", "13 is out of range 1-12"]),
        ("* * * * 8", "day-of-week", ["day-of-week field (5th)", "8 is out of range 0-7"]),
        ("* * * * mun", "day-of-week", ["'mun' is not a number 0-7 or a day name sun-sat"]),
        ("* * * foo *", "month", ["'foo' is not a number 1-12 or a month name jan-dec"]),
        ("x * * * *", "minute", ["'x' is not a number 0-59"]),
        ("-5 * * * *", "minute", ["missing a number"]),
        ("1- * * * *", "minute", ["missing a number"]),
        ("*/0 * * * *", "minute", ["the step '0' must be a number from 1 to 59"]),
        ("*/60 * * * *", "minute", ["the step '60' must be a number from 1 to 59"]),
        ("* */x * * *", "hour", ["the step 'x' must be a number from 1 to 23"]),
        ("30-10 * * * *", "minute", ["the range '30-10' runs backwards"]),
        ("0 0 * * fri-sun", "day-of-week", ["runs backwards", "fri-sat,sun or 5-7"]),
        ("1,,2 * * * *", "minute", ["empty list item"]),
        ("1, * * * *", "minute", ["empty list item"]),
        ("0 0 ? * mon", "day-of-month", ["Quartz-style"]),
        ("0 0 L * *", "day-of-month", ["Quartz-style"]),
        ("0 0 * * 1#2", "day-of-week", ["Quartz-style"]),
        ("0 0 30 2 *", "day-of-month", ["no such day ever occurs", "(feb)"]),
        ("0 0 31 4,6 *", "day-of-month", ["no such day ever occurs", "(apr,jun)"]),
    ],
)
def test_bad_fields_say_which_and_why(expression: str, field: str, words: list[str]) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert caught.value.field == field
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("* * * *", ["5 fields", "got 4"]),
        ("0 * * * * *", ["got 6", "seconds and years are not supported"]),
        ("@reboot", ["'@reboot' is not a known alias", "@daily"]),
        ("@often", ["not a known alias"]),
        ("* " * 150, ["longer than 200 characters"]),
    ],
)
def test_bad_expressions_say_why(expression: str, words: list[str]) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert caught.value.field is None
    for word in words:
        assert word in str(caught.value)


def test_a_february_29th_schedule_is_accepted() -> None:
    assert parse_cron("0 0 29 2 *").days_of_month == {29}
    # With a restricted weekday either day field may match, so any day of month is fine.
    assert parse_cron("0 0 31 2 mon").days_of_month == {31}


# ---- fire times ------------------------------------------------------------------------------


def test_next_runs_are_strictly_after_and_in_order() -> None:
    assert next_runs("*/15 * * * *", "UTC", utc(2026, 5, 4, 10, 7), 4) == [
        utc(2026, 5, 4, 10, 15),
        utc(2026, 5, 4, 10, 30),
        utc(2026, 5, 4, 10, 45),
        utc(2026, 5, 4, 11, 0),
    ]
    # Exactly on a slot: that slot is not "after".
    assert next_runs("*/15 * * * *", "UTC", utc(2026, 5, 4, 10, 15), 1) == [utc(2026, 5, 4, 10, 30)]
    assert next_runs("*/15 * * * *", "UTC", utc(2026, 5, 4, 10, 14, 59, 999999), 1) == [
        utc(2026, 5, 4, 10, 15)
    ]


def test_results_are_aware_utc_whatever_zone_after_is_in() -> None:
    after = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 03:00 UTC
    (run,) = next_runs("0 4 * * *", "UTC", after, 1)
    assert run == utc(2026, 7, 1, 4, 0)
    assert run.tzinfo is UTC


def test_local_time_in_the_sources_zone() -> None:
    # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    assert next_runs("0 2 * * *", "Europe/Berlin", utc(2026, 1, 10), 1) == [utc(2026, 1, 10, 1)]
    assert next_runs("0 2 * * *", "Europe/Berlin", utc(2026, 7, 9, 12), 1) == [utc(2026, 7, 10, 0)]


def test_both_day_fields_restricted_means_either() -> None:
    runs = next_runs("0 0 13 * fri", "UTC", utc(2026, 2, 1), 5)
    # February 2026: Fridays 6, 13 (also the 13th, once), 20, 27; then Friday March 6.
    assert runs == [utc(2026, 2, d) for d in (6, 13, 20, 27)] + [utc(2026, 3, 6)]


def test_a_star_day_field_means_the_other_one_alone() -> None:
    assert next_runs("0 0 * * fri", "UTC", utc(2026, 2, 1), 2) == [
        utc(2026, 2, 6),
        utc(2026, 2, 13),
    ]
    assert next_runs("0 0 13 * *", "UTC", utc(2026, 2, 1), 2) == [
        utc(2026, 2, 13),
        utc(2026, 3, 13),
    ]
    # '*/2' begins with '*': both must match (Vixie cron), so odd days that are Mondays.
    assert next_runs("0 0 */2 * mon", "UTC", utc(2026, 2, 1), 3) == [
        utc(2026, 2, 9),
        utc(2026, 2, 23),
        utc(2026, 3, 9),
    ]


def test_year_boundary() -> None:
    assert next_runs("@yearly", "Europe/Berlin", utc(2026, 12, 31, 22, 59), 2) == [
        utc(2026, 12, 31, 23, 0),  # midnight in Berlin
        utc(2027, 12, 31, 23, 0),
    ]
    assert next_runs("59 23 31 12 *", "UTC", utc(2026, 12, 31, 23, 59), 1) == [
        utc(2027, 12, 31, 23, 59)
    ]
    assert next_runs("0 0 * * mon", "UTC", utc(2026, 12, 30), 2) == [
        utc(2027, 1, 4),
        utc(2027, 1, 11),
    ]


def test_february_29th_and_far_apart_runs_are_found_quickly() -> None:
    started = clock.perf_counter()
    runs = next_runs("0 0 29 2 *", "UTC", utc(2024, 3, 1), 20)
    assert clock.perf_counter() - started < 1.0  # steps by month and day, never by minute
    assert runs[:3] == [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29)]
    assert runs[17:19] == [utc(2096, 2, 29), utc(2104, 2, 29)]  # 2100 is no leap year


# ---- DST: spring forward (the local time does not exist) --------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # Berlin jumps 02:00 CET -> 03:00 CEST on 2026-03-29; New York 02:00 EST -> 03:00 EDT
        # on 2026-03-08. The 02:30 slot runs once, at 03:00 local, the first instant after the gap.
        ("Europe/Berlin", 29, utc(2026, 3, 29, 1, 0)),
        ("America/New_York", 8, utc(2026, 3, 8, 7, 0)),
    ],
)
def test_a_slot_in_the_spring_gap_runs_once_at_the_gaps_end(
    zone: str, day: int, expected: datetime
) -> None:
    runs = next_runs("30 2 * * *", zone, local(zone, 2026, 3, day - 1, 12), 3)
    assert runs == [
        expected,
        local(zone, 2026, 3, day + 1, 2, 30),
        local(zone, 2026, 3, day + 2, 2, 30),
    ]
    assert runs[0].astimezone(ZoneInfo(zone)).hour == 3


def test_several_slots_in_the_gap_run_once_and_not_twice_with_the_next_slot() -> None:
    zone = "Europe/Berlin"
    assert slots_between("0,30 2,3 * * *", zone, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [
        local(zone, 2026, 3, 29, 3, 0),  # 02:00, 02:30 and 03:00 are one run
        local(zone, 2026, 3, 29, 3, 30),
    ]


def test_hourly_keeps_its_real_rhythm_over_the_spring_gap() -> None:
    # 01:00 CET and 03:00 CEST are one real hour apart: no extra run for the missing 02:00.
    assert next_runs("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 30), 3) == [
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
    ]
    runs = next_runs("*/20 * * * *", "America/New_York", utc(2026, 3, 8, 6, 30), 4)
    assert [r.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") for r in runs] == [
        "01:40",
        "03:00",
        "03:20",
        "03:40",
    ]


# ---- DST: fall back (the local time happens twice) --------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "day", "first"),
    [
        # Berlin goes 03:00 CEST -> 02:00 CET on 2026-10-25; New York 02:00 EDT -> 01:00 EST on
        # 2026-11-01. A fixed-time slot in the repeated hour runs once, at its first occurrence.
        ("Europe/Berlin", "30 2 * * *", (2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        ("America/New_York", "30 1 * * *", (2026, 11, 1), utc(2026, 11, 1, 5, 30)),
    ],
)
def test_a_slot_in_the_repeated_hour_runs_once(
    zone: str, expression: str, day: tuple[int, int, int], first: datetime
) -> None:
    start = datetime(*day, tzinfo=UTC) - timedelta(hours=12)
    runs = slots_between(expression, zone, start, start + timedelta(days=2))
    assert runs[0] == first
    assert len(runs) == 2  # that day and the next, never twice on the day itself
    assert runs[1] - runs[0] == timedelta(hours=25)


def test_hourly_runs_at_each_real_hour_of_the_repeated_hour() -> None:
    zone = "Europe/Berlin"
    runs = slots_between("0 * * * *", zone, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 2, 30))
    assert runs == [
        utc(2026, 10, 24, 23),  # 01:00 CEST
        utc(2026, 10, 25, 0),  # 02:00 CEST
        utc(2026, 10, 25, 1),  # 02:00 CET, the same wall clock an hour later
        utc(2026, 10, 25, 2),  # 03:00 CET
    ]
    assert [r.astimezone(ZoneInfo(zone)).hour for r in runs] == [1, 2, 2, 3]


def test_every_half_hour_in_new_york_on_fall_back_day() -> None:
    zone = "America/New_York"
    runs = next_runs("*/30 * * * *", zone, local(zone, 2026, 11, 1, 0, 45), 5)
    assert runs == [
        local(zone, 2026, 11, 1, 1, 0),
        local(zone, 2026, 11, 1, 1, 30),
        local(zone, 2026, 11, 1, 1, 0, fold=1),
        local(zone, 2026, 11, 1, 1, 30, fold=1),
        local(zone, 2026, 11, 1, 2, 0),
    ]
    # Asked from between the two occurrences, the second one is still ahead.
    assert next_runs("*/30 * * * *", zone, local(zone, 2026, 11, 1, 1, 40), 1) == [
        local(zone, 2026, 11, 1, 1, 0, fold=1)
    ]


def test_fall_back_across_midnight_is_in_real_order() -> None:
    # Santiago turns 2026-04-05 00:00 back to 2026-04-04 23:00: 23:30 on the 4th happens twice.
    zone = "America/Santiago"
    runs = next_runs("30 * * * *", zone, local(zone, 2026, 4, 4, 22, 45), 4)
    assert runs == [
        local(zone, 2026, 4, 4, 23, 30),
        local(zone, 2026, 4, 4, 23, 30, fold=1),
        local(zone, 2026, 4, 5, 0, 30),
        local(zone, 2026, 4, 5, 1, 30),
    ]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(runs))
    # From between the two midnights, yesterday's second 23:30 is still ahead.
    assert next_runs("30 * * * *", zone, local(zone, 2026, 4, 4, 23, 45), 1) == [
        local(zone, 2026, 4, 4, 23, 30, fold=1)
    ]
    # Spring forward at midnight (2026-09-06 00:00 -> 01:00): the daily run is at 01:00.
    assert next_runs("@daily", zone, utc(2026, 9, 5, 12), 1) == [local(zone, 2026, 9, 6, 1, 0)]


def _oracle(expression: str, zone_name: str, start: datetime, end: datetime) -> list[datetime]:
    """The documented rules applied by brute force to every real minute: the reference."""
    zone = ZoneInfo(zone_name)
    schedule = parse_cron(expression)

    def matches(wall: datetime) -> bool:
        return (
            wall.minute in schedule.minutes
            and wall.hour in schedule.hours
            and wall.month in schedule.months
            and schedule.day_matches(wall.year, wall.month, wall.day)
        )

    fired = []
    instant = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    previous_wall = (instant - timedelta(minutes=1)).astimezone(zone)
    while instant <= end:
        wall = instant.astimezone(zone)
        skipped = []
        step = previous_wall.replace(tzinfo=None) + timedelta(minutes=1)
        while step < wall.replace(tzinfo=None) and wall.utcoffset() != previous_wall.utcoffset():
            skipped.append(step)
            step += timedelta(minutes=1)
        in_gap = schedule.fixed_time and any(matches(s) for s in skipped)
        repeat_ok = wall.fold == 0 or not schedule.fixed_time
        if in_gap or (matches(wall.replace(tzinfo=None)) and repeat_ok):
            fired.append(instant)
        previous_wall = wall
        instant += timedelta(minutes=1)
    return fired


@pytest.mark.parametrize(
    "expression",
    ["30 2 * * *", "0,30 1-3 * * *", "*/20 * * * *", "15 */2 * * *", "* 2 * * *", "@daily"],
)
@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", utc(2026, 3, 28, 12)),
        ("Europe/Berlin", utc(2026, 10, 24, 12)),
        ("America/New_York", utc(2026, 3, 7, 12)),
        ("America/New_York", utc(2026, 10, 31, 12)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 0)),  # a 30-minute DST change
        ("America/Santiago", utc(2026, 4, 4, 12)),
    ],
)
def test_agrees_with_a_minute_by_minute_reference(
    expression: str, zone: str, start: datetime
) -> None:
    end = start + timedelta(days=2)
    assert slots_between(expression, zone, start, end) == _oracle(expression, zone, start, end)


# ---- catching up -------------------------------------------------------------------------------


def test_slots_between_is_half_open() -> None:
    start, end = utc(2026, 5, 1, 0, 0), utc(2026, 5, 3, 0, 0)
    assert slots_between("@daily", "UTC", start, end) == [utc(2026, 5, 2), utc(2026, 5, 3)]
    # Back to back windows see every slot exactly once.
    middle = utc(2026, 5, 2)
    both = slots_between("@daily", "UTC", start, middle) + slots_between(
        "@daily", "UTC", middle, end
    )
    assert both == [utc(2026, 5, 2), utc(2026, 5, 3)]
    assert slots_between("@daily", "UTC", end, end) == []


def test_slots_between_across_the_spring_gap_in_berlin() -> None:
    zone = "Europe/Berlin"
    slots = slots_between("30 2 * * *", zone, utc(2026, 3, 27), utc(2026, 3, 31))
    assert slots == [
        local(zone, 2026, 3, 27, 2, 30),
        local(zone, 2026, 3, 28, 2, 30),
        local(zone, 2026, 3, 29, 3, 0),
        local(zone, 2026, 3, 30, 2, 30),
    ]


def test_chained_next_runs_equal_one_long_call() -> None:
    zone = "America/New_York"
    long = next_runs("*/7 1-2 * * *", zone, utc(2026, 10, 31), 40)
    chained: list[datetime] = []
    after = utc(2026, 10, 31)
    while len(chained) < 40:
        (run,) = next_runs("*/7 1-2 * * *", zone, after, 1)
        chained.append(run)
        after = run
    assert chained == long
    assert long == sorted(set(long))


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs("@daily", "UTC", datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a known time zone"):
        next_runs("@daily", "Mars/Olympus", utc(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="n must be from 0 to 10000"):
        next_runs("@daily", "UTC", utc(2026, 1, 1), -1)
    with pytest.raises(ValueError, match="is before start"):
        slots_between("@daily", "UTC", utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="more than 100 slots"):
        slots_between("* * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=100)
    with pytest.raises(CronError, match="minute field"):
        next_runs("99 * * * *", "UTC", utc(2026, 1, 1), 1)
    assert next_runs("@daily", "UTC", utc(2026, 1, 1), 0) == []


# ---- the interval the "stale" health check uses -----------------------------------------------

AT = utc(2026, 1, 1)


@pytest.mark.parametrize(
    ("expression", "zone", "interval"),
    [
        ("*/15 * * * *", "UTC", timedelta(minutes=15)),
        ("@hourly", "Europe/Berlin", timedelta(hours=1)),
        ("@daily", "UTC", timedelta(days=1)),
        # The fall-back day is 25 hours long.
        ("30 2 * * *", "Europe/Berlin", timedelta(hours=25)),
        # The weekend gap, not the weekday one: no "stale" every Monday morning.
        ("0 9 * * mon-fri", "UTC", timedelta(days=3)),
        ("0 0,12 * * *", "UTC", timedelta(hours=12)),
        ("0 1,23 * * *", "UTC", timedelta(hours=22)),
        ("@weekly", "UTC", timedelta(days=7)),
        ("@monthly", "UTC", timedelta(days=31)),
        ("@yearly", "UTC", timedelta(days=365)),
        ("0 0 29 2 *", "UTC", timedelta(days=4 * 365 + 1)),
        ("* * 1 * *", "UTC", timedelta(days=30, minutes=1)),  # March 1, 23:59 to April 1
    ],
)
def test_interval_estimate_is_the_longest_gap(
    expression: str, zone: str, interval: timedelta
) -> None:
    assert interval_estimate(expression, zone, at=AT) == interval


def test_interval_estimate_defaults_to_now() -> None:
    assert interval_estimate("@daily", "UTC") == timedelta(days=1)
