"""POST /admin/api/sources/schedule-preview: the next five runs of a cron expression in a time
zone (UTC instants) and the longest gap, for the dashboard to show while a schedule is typed; a
bad expression or zone is a 422 naming the field; admins only; nothing is saved."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests import support
from tests.api.conftest import assert_failure

PREVIEW = "/admin/api/sources/schedule-preview"


def _parsed(runs: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(run.replace("Z", "+00:00")) for run in runs]


async def test_the_next_five_runs_are_utc_instants_at_the_local_wall_time(
    admin_client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    response = await admin_client.post(
        PREVIEW, json={"schedule": "30 2 * * *", "timezone": "Asia/Kolkata"}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    runs = _parsed(data["runs"])
    assert len(runs) == 5
    assert all(run.utcoffset() == timedelta(0) for run in runs)
    assert before < runs[0] <= before + timedelta(days=1)
    # 02:30 in Kolkata (UTC+05:30, no DST) is 21:00 UTC, one day apart.
    local = [run.astimezone(ZoneInfo("Asia/Kolkata")) for run in runs]
    assert {(t.hour, t.minute) for t in local} == {(2, 30)}
    assert {(run.hour, run.minute) for run in runs} == {(21, 0)}
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(days=1)] * 4
    assert data["interval_seconds"] == 86_400


async def test_a_weekday_schedule_reports_the_weekend_gap(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(PREVIEW, json={"schedule": "0 9 * * mon-fri"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert all(run.weekday() < 5 for run in _parsed(data["runs"]))
    assert data["interval_seconds"] == 72 * 3600


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"schedule": "61 * * * *", "timezone": "UTC"}, "schedule", "minute field"),
        ({"schedule": "* * *", "timezone": "UTC"}, "schedule", "5 fields"),
        ({"schedule": "", "timezone": "UTC"}, "schedule", "empty"),
        ({"schedule": "0 0 30 2 *", "timezone": "UTC"}, "schedule", "no such day"),
        ({"schedule": "0 2 * * *", "timezone": "Mars/Olympus"}, "timezone", "time zone"),
    ],
)
async def test_a_bad_schedule_or_zone_is_refused_at_its_field(
    admin_client: httpx.AsyncClient, body: dict[str, str], field: str, words: str
) -> None:
    failure = assert_failure(await admin_client.post(PREVIEW, json=body), 422)
    assert words in failure["errors"][field][0]
    assert words in failure["message"]


async def test_a_malformed_body_is_refused(admin_client: httpx.AsyncClient) -> None:
    failure = assert_failure(await admin_client.post(PREVIEW, json={"schedule": 5}), 422)
    assert "schedule" in failure["errors"]


async def test_only_admins_may_preview(
    viewer_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    body = {"schedule": "@daily", "timezone": "UTC"}
    assert_failure(await viewer_client.post(PREVIEW, json=body), 403)
    assert (await client.post(PREVIEW, json=body)).status_code in (401, 403)


async def test_source_actions_say_what_they_did(
    admin_client: httpx.AsyncClient, target_database: str
) -> None:
    # The dashboard shows these words; they used to be dropped from the envelope.
    url = f"mysql://root@{support.MARIADB_HOST}:{support.MARIADB_PORT}/{target_database}"
    created = await admin_client.post("/admin/api/sources", json={"name": "said", "url": url})
    assert created.status_code == 201, created.text
    assert created.json()["message"] == "Source added."
    source_id = created.json()["data"]["id"]
    saved = await admin_client.patch(f"/admin/api/sources/{source_id}", json={"enabled": False})
    assert saved.json()["message"] == "Source saved."
    deleted = await admin_client.delete(f"/admin/api/sources/{source_id}")
    assert deleted.json() == {
        "success": True,
        "message": "Source deleted; its backups were kept.",
        "data": {"deleted_backups": 0},
    }
