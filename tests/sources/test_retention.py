"""Retention plans: the original's age rule, restic-style keep counts, protections, idempotence."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.sources.retention import BackupFacts, RetentionPlan, RetentionRule, plan_retention

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
AGE_RULE = RetentionRule()  # the original: trash after 15 days, purge after 7


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def backup(
    id: int,
    created_at: datetime,
    *,
    status: str = "completed",
    database: str = "shop",
    pinned: bool = False,
) -> BackupFacts:
    return BackupFacts(id, database, created_at, status, pinned)


def plan(
    backups: list[BackupFacts],
    rule: RetentionRule = AGE_RULE,
    *,
    tz: str = "UTC",
    now: datetime = NOW,
) -> RetentionPlan:
    return plan_retention(backups, rule, tz=tz, now=now)


def apply(backups: list[BackupFacts], result: RetentionPlan) -> list[BackupFacts]:
    """What the service would leave: trashed rows keep their row, with status in_trash."""
    trashed = set(result.trash_ids)
    return [replace(b, status="in_trash") if b.id in trashed else b for b in backups]


# ---- the original's rule (no keep_* set) -------------------------------------------------------


def test_age_rule_at_the_exact_boundaries() -> None:
    fifteen_days = timedelta(days=15)
    backups = [
        backup(1, NOW - fifteen_days - timedelta(seconds=1)),
        backup(2, NOW - fifteen_days),
        backup(3, NOW - fifteen_days + timedelta(seconds=1)),
        backup(4, NOW - timedelta(hours=1)),
    ]
    result = plan(backups)
    assert result.trash_ids == [1]
    assert sorted(result.keep_ids) == [2, 3, 4]
    assert result.reasons()[1] == ("older than 15 days",)
    assert result.reasons()[2] == ("younger than 15 days",)


def test_trash_after_days_comes_from_the_rule() -> None:
    backups = [
        backup(1, NOW - timedelta(days=3, seconds=1)),
        backup(2, NOW - timedelta(days=3)),
        backup(3, NOW),
    ]
    result = plan(backups, RetentionRule(trash_after_days=3, purge_after_days=1))
    assert result.trash_ids == [1]
    assert result.reasons()[1] == ("older than 3 days",)
    assert sorted(plan(backups, RetentionRule(trash_after_days=0.5)).trash_ids) == [1, 2]


def test_newest_completed_backup_of_each_database_is_never_trashed() -> None:
    old = NOW - timedelta(days=40)
    backups = [
        backup(1, old, database="shop"),
        backup(2, old + timedelta(days=1), database="shop"),
        backup(3, old, database="crm"),
        # A newer failed backup does not make the older completed one expendable.
        backup(4, NOW - timedelta(days=1), database="crm", status="failed"),
    ]
    result = plan(backups)
    assert result.trash_ids == [1]
    reasons = result.reasons()
    expected = ("newest completed backup", "would be trashed: older than 15 days")
    assert reasons[2] == expected
    assert reasons[3] == expected


def test_pinned_pending_and_in_progress_are_never_trashed() -> None:
    old = NOW - timedelta(days=100)
    backups = [
        backup(1, old, pinned=True),
        backup(2, old, status="pending"),
        backup(3, old, status="in_progress"),
        backup(4, old, status="failed", pinned=True),
        backup(5, NOW),
    ]
    result = plan(backups)
    assert result.trash_ids == []
    reasons = result.reasons()
    assert "pinned" in reasons[1]
    assert reasons[2] == ("pending",)
    assert reasons[3] == ("in progress",)
    assert "pinned" in reasons[4]


def test_failed_backups_follow_the_age_rule_under_both_rules() -> None:
    backups = [
        backup(1, NOW - timedelta(days=16), status="failed"),
        backup(2, NOW - timedelta(days=14), status="failed"),
        backup(3, NOW - timedelta(days=20)),
    ]
    for rule in (AGE_RULE, RetentionRule(keep_daily=7)):
        result = plan(backups, rule)
        assert result.trash_ids == [1]
        assert result.reasons()[1] == ("failed, older than 15 days",)
        assert result.reasons()[2] == ("failed, younger than 15 days",)
        assert 3 in result.keep_ids


def test_failed_backups_take_no_keep_place() -> None:
    # The newest backup of the day failed: the completed one is the day's survivor.
    backups = [
        backup(1, utc(2026, 4, 9, 1)),
        backup(2, utc(2026, 4, 9, 2)),
        backup(3, utc(2026, 4, 9, 3), status="failed"),
    ]
    result = plan(backups, RetentionRule(keep_daily=1))
    assert result.trash_ids == [1]
    assert result.reasons()[2] == ("keep-daily 2026-04-09", "newest completed backup")


def test_backups_in_the_trash_are_left_out() -> None:
    result = plan([backup(1, NOW - timedelta(days=30), status="in_trash"), backup(2, NOW)])
    assert [d.backup_id for d in result.decisions] == [2]


# ---- restic-style keep counts ------------------------------------------------------------------


def test_keep_last_ignores_age() -> None:
    backups = [backup(i, NOW - timedelta(hours=i)) for i in range(1, 6)]
    result = plan(backups, RetentionRule(keep_last=2))
    assert sorted(result.keep_ids) == [1, 2]
    assert sorted(result.trash_ids) == [3, 4, 5]  # an hour old, but not among the newest two
    assert result.reasons()[1] == ("keep-last 1 of 2", "newest completed backup")
    assert result.reasons()[2] == ("keep-last 2 of 2",)
    assert result.reasons()[3] == ("not kept by keep-last 2",)


def test_grandfather_father_son_over_a_hundred_days() -> None:
    # One backup a day at 01:00 UTC, 2026-01-01 to 2026-04-10 (a Friday).
    first = utc(2026, 1, 1, 1)
    backups = [backup(day + 1, first + timedelta(days=day)) for day in range(100)]
    rule = RetentionRule(keep_daily=7, keep_weekly=4, keep_monthly=3)
    result = plan(backups, rule)
    kept = {b.created_at.date().isoformat() for b in backups if b.id in result.keep_ids}
    assert kept == {
        *(f"2026-04-{day:02d}" for day in range(4, 11)),  # the newest seven days
        "2026-04-05",  # newest of 2026-W14 (2026-W15 is already kept as a day)
        "2026-03-29",  # 2026-W13
        "2026-03-22",  # 2026-W12
        "2026-03-31",  # newest of March (April is already kept)
        "2026-02-28",  # newest of February
    }
    by_date = {b.created_at.date().isoformat(): b.id for b in backups}
    reasons = result.reasons()
    assert reasons[by_date["2026-04-10"]] == (
        "keep-daily 2026-04-10",
        "keep-weekly 2026-W15",
        "keep-monthly 2026-04",
        "newest completed backup",
    )
    assert reasons[by_date["2026-04-05"]] == ("keep-daily 2026-04-05", "keep-weekly 2026-W14")
    assert reasons[by_date["2026-02-28"]] == ("keep-monthly 2026-02",)
    assert reasons[by_date["2026-02-27"]] == (
        "not kept by keep-daily 7, keep-weekly 4, keep-monthly 3",
    )
    assert len(result.trash_ids) == 100 - 11


def test_periods_without_backups_use_up_no_count() -> None:
    backups = [
        backup(1, utc(2026, 1, 15)),
        backup(2, utc(2026, 3, 15)),
        backup(3, utc(2026, 3, 20)),
        backup(4, utc(2026, 6, 15)),
    ]
    result = plan(backups, RetentionRule(keep_monthly=2), now=utc(2026, 6, 16))
    # The two newest months that have a backup are June and March, not June and May.
    assert sorted(result.keep_ids) == [3, 4]
    assert sorted(result.trash_ids) == [1, 2]


def test_days_are_read_in_the_sources_time_zone() -> None:
    # 23:30 UTC on March 27 is 00:30 on March 28 in Berlin (CET, +1).
    backups = [backup(1, utc(2026, 3, 27, 12)), backup(2, utc(2026, 3, 27, 23, 30))]
    rule = RetentionRule(keep_daily=5)
    assert plan(backups, rule, tz="UTC").trash_ids == [1]
    in_berlin = plan(backups, rule, tz="Europe/Berlin")
    assert in_berlin.trash_ids == []
    assert in_berlin.reasons()[2][0] == "keep-daily 2026-03-28"
    assert in_berlin.reasons()[1] == ("keep-daily 2026-03-27",)


def test_days_across_the_spring_change_in_berlin() -> None:
    # Berlin is +1 until 2026-03-29 01:00 UTC, +2 after: the same UTC hour falls on other days.
    backups = [
        backup(1, utc(2026, 3, 28, 22, 30)),  # 23:30 CET, March 28
        backup(2, utc(2026, 3, 28, 23, 30)),  # 00:30 CET, March 29
        backup(3, utc(2026, 3, 29, 21, 30)),  # 23:30 CEST, March 29
        backup(4, utc(2026, 3, 29, 22, 30)),  # 00:30 CEST, March 30
    ]
    result = plan(backups, RetentionRule(keep_daily=3), tz="Europe/Berlin", now=utc(2026, 3, 30))
    assert result.trash_ids == [2]  # the older of March 29's two
    assert result.reasons()[3] == ("keep-daily 2026-03-29",)
    assert result.reasons()[4][0] == "keep-daily 2026-03-30"
    assert result.reasons()[1] == ("keep-daily 2026-03-28",)


def test_days_across_the_fall_change_in_new_york() -> None:
    # 2026-11-01 01:30 happens twice in New York (EDT then EST): one day, one survivor.
    backups = [
        backup(1, utc(2026, 11, 1, 5, 30)),  # 01:30 EDT
        backup(2, utc(2026, 11, 1, 6, 30)),  # 01:30 EST
        backup(3, utc(2026, 11, 2, 4, 30)),  # 23:30 EST, still November 1
    ]
    result = plan(backups, RetentionRule(keep_daily=2), tz="America/New_York", now=utc(2026, 11, 2))
    assert sorted(result.trash_ids) == [1, 2]
    assert result.reasons()[3][0] == "keep-daily 2026-11-01"


def test_iso_week_53_and_the_calendar_year() -> None:
    # 2020-12-31 (Thu) and 2021-01-02 (Sat) are both in ISO week 2020-W53; 2021-01-04 is 2021-W01.
    backups = [
        backup(1, utc(2020, 12, 31, 12)),
        backup(2, utc(2021, 1, 2, 12)),
        backup(3, utc(2021, 1, 4, 12)),
    ]
    now = utc(2021, 1, 5)
    weekly = plan(backups, RetentionRule(keep_weekly=2), now=now)
    assert weekly.trash_ids == [1]
    assert weekly.reasons()[2] == ("keep-weekly 2020-W53",)
    assert weekly.reasons()[3][0] == "keep-weekly 2021-W01"
    # By calendar year the same backups split the other way.
    yearly = plan(backups, RetentionRule(keep_yearly=2), now=now)
    assert yearly.trash_ids == [2]
    assert yearly.reasons()[1] == ("keep-yearly 2020",)


def test_the_year_in_the_sources_zone() -> None:
    # 23:30 UTC on New Year's Eve is already 2027 in Berlin.
    backups = [backup(1, utc(2026, 12, 31, 12)), backup(2, utc(2026, 12, 31, 23, 30))]
    rule = RetentionRule(keep_yearly=3)
    assert plan(backups, rule, tz="UTC", now=utc(2027, 1, 2)).trash_ids == [1]
    in_berlin = plan(backups, rule, tz="Europe/Berlin", now=utc(2027, 1, 2))
    assert in_berlin.trash_ids == []
    assert in_berlin.reasons()[2][0] == "keep-yearly 2027"


def test_pinned_backups_survive_keep_counts_and_still_count() -> None:
    backups = [
        backup(1, utc(2026, 4, 8, 1), pinned=True),
        backup(2, utc(2026, 4, 8, 2)),
        backup(3, utc(2026, 4, 9, 1)),
    ]
    result = plan(backups, RetentionRule(keep_daily=1))
    assert result.trash_ids == [2]
    assert result.reasons()[1] == ("pinned", "would be trashed: not kept by keep-daily 1")
    # A pinned backup that is its day's newest uses up that day, as a tagged snapshot in restic.
    backups = [backup(1, utc(2026, 4, 8, 2), pinned=True), backup(3, utc(2026, 4, 9, 1))]
    result = plan(backups, RetentionRule(keep_daily=2))
    assert result.reasons()[1] == ("keep-daily 2026-04-08", "pinned")


def test_keep_counts_are_per_database() -> None:
    backups = [
        backup(1, utc(2026, 4, 9, 1), database="shop"),
        backup(2, utc(2026, 4, 9, 2), database="shop"),
        backup(3, utc(2026, 4, 9, 1), database="crm"),
    ]
    result = plan(backups, RetentionRule(keep_last=1))
    assert result.trash_ids == [1]
    assert sorted(result.keep_ids) == [2, 3]


def test_equal_times_are_ordered_by_id() -> None:
    at = utc(2026, 4, 9, 1)
    result = plan([backup(7, at), backup(8, at)], RetentionRule(keep_last=1))
    assert result.trash_ids == [7]


# ---- running it twice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        AGE_RULE,
        RetentionRule(keep_last=3),
        RetentionRule(keep_daily=7, keep_weekly=4),
        RetentionRule(keep_last=2, keep_daily=5, keep_weekly=3, keep_monthly=6, keep_yearly=2),
        RetentionRule(keep_yearly=1),
    ],
)
@pytest.mark.parametrize("seed", range(8))
def test_planning_the_result_again_trashes_nothing(rule: RetentionRule, seed: int) -> None:
    rng = random.Random(seed)
    statuses = ["completed"] * 8 + ["failed", "pending", "in_progress"]
    backups = [
        backup(
            i,
            NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 800)),
            status=rng.choice(statuses),
            database=rng.choice(["shop", "crm", "logs"]),
            pinned=rng.random() < 0.05,
        )
        for i in range(1, 301)
    ]
    first = plan(backups, rule, tz="Europe/Berlin")
    assert first.trash_ids  # the case is not vacuous
    after = apply(backups, first)
    second = plan(after, rule, tz="Europe/Berlin")
    assert second.trash_ids == []
    assert sorted(second.keep_ids) == sorted(first.keep_ids)
    # Nothing protected went, whatever the rule.
    trashed = {b.id: b for b in backups if b.id in first.trash_ids}
    assert all(not b.pinned and b.status in ("completed", "failed") for b in trashed.values())
    for database in ("shop", "crm", "logs"):
        completed = [b for b in backups if b.database_name == database and b.status == "completed"]
        if completed:
            newest = max(completed, key=lambda b: (b.created_at, b.id))
            assert newest.id not in trashed


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"keep_daily": 0}, "keep_daily must be a whole number from 1 to 100000"),
        ({"keep_last": -1}, "keep_last must be a whole number"),
        ({"keep_weekly": 1.5}, "keep_weekly must be a whole number"),
        ({"keep_monthly": True}, "keep_monthly must be a whole number"),
        ({"trash_after_days": 0}, "trash_after_days must be a number of days above 0"),
        ({"purge_after_days": -7}, "purge_after_days must be a number of days above 0"),
        ({"trash_after_days": "15"}, "trash_after_days must be a number"),
        ({"keep_hourly": 24}, "unknown retention setting(s) keep_hourly"),
    ],
)
def test_bad_rules_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RetentionRule.from_mapping(settings)
    assert message in str(caught.value)


def test_the_contracts_default_retention_object() -> None:
    rule = RetentionRule.from_mapping(
        {
            "trash_after_days": 15,
            "purge_after_days": 7,
            "keep_last": None,
            "keep_daily": None,
            "keep_weekly": None,
            "keep_monthly": None,
            "keep_yearly": None,
        }
    )
    assert rule == AGE_RULE
    assert not rule.keeps_by_count
    assert RetentionRule(keep_yearly=1).keeps_by_count


def test_bad_backups_and_times_are_refused() -> None:
    with pytest.raises(ValueError, match="backup 1 has a naive created_at"):
        plan([backup(1, datetime(2026, 4, 1))])
    with pytest.raises(ValueError, match="backup 1 is listed twice"):
        plan([backup(1, NOW), backup(1, NOW)])
    with pytest.raises(ValueError, match="unknown status 'done'"):
        plan([backup(1, NOW, status="done")])
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        plan([], now=datetime(2026, 4, 1))
    with pytest.raises(ValueError, match="not a known time zone"):
        plan([], tz="Europe/Atlantis")
