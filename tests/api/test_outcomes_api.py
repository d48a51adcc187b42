"""Issue 11 through the API: cancelled apart from failed (backups, statistics, metrics, restores),
a restore's phase, and the strict ``keep_existing_objects`` option."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.backups.models import BackupStatus, DatabaseBackup, RestoreOperation
from app.db import Database
from tests.api.conftest import BackupFactory, assert_failure
from tests.api.test_backups_actions import BACKUPS, completed  # noqa: F401 (a fixture)


async def test_statistics_list_and_metrics_count_a_cancel_apart_from_a_failure(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup(status=BackupStatus.failed, error_message="Access denied.")
    cancelled = await make_backup(status=BackupStatus.pending)
    response = await admin_client.post(f"{BACKUPS}/{cancelled.id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "failed"  # the contract's status ...
    assert response.json()["data"]["cancelled"] is True  # ... and what tells it apart

    stats = (await admin_client.get(f"{BACKUPS}/statistics")).json()["data"]
    assert (stats["failed_backups"], stats["cancelled_backups"]) == (1, 1)
    assert stats["total_backups"] == 2

    listed = (await admin_client.get(BACKUPS)).json()["data"]
    assert sorted((b["status"], b["cancelled"]) for b in listed) == [
        ("failed", False),
        ("failed", True),
    ]
    # The contract's status filter: "failed" still lists both.
    only_failed = (await admin_client.get(BACKUPS, params={"status": "failed"})).json()
    assert only_failed["meta"]["total"] == 2

    metrics = (await client.get("/metrics")).text
    assert 'dbkeep_backups{status="failed"} 1.0' in metrics
    assert 'dbkeep_backups{status="cancelled"} 1.0' in metrics
    assert 'dbkeep_job_duration_seconds_count{kind="backup",status="failed"} 1.0' in metrics
    assert 'dbkeep_job_duration_seconds_count{kind="backup",status="cancelled"} 1.0' in metrics


async def test_a_restore_reads_with_its_phase_cancel_and_option(
    admin_client: httpx.AsyncClient,
    completed: DatabaseBackup,  # noqa: F811
    database: Database,
) -> None:
    response = await admin_client.post(
        f"{BACKUPS}/{completed.id}/restore", json={"keep_existing_objects": True}
    )
    assert response.status_code == 202, response.text
    restore = response.json()["data"]
    assert restore["keep_existing_objects"] is True
    assert (restore["phase"], restore["cancelled"]) == ("queued", False)
    async with database.sessionmaker() as session:
        row = await session.scalar(select(RestoreOperation))
        assert row is not None and row.keep_existing_objects is True

    cancel = f"{BACKUPS}/{completed.id}/restores/{restore['id']}/cancel"
    cancelled = (await admin_client.post(cancel)).json()["data"]
    assert (cancelled["status"], cancelled["phase"], cancelled["cancelled"]) == (
        "failed",
        "finished",
        True,
    )
    assert "failed" not in (cancelled["error_message"] or "").lower()
    metrics = (await admin_client.get("/metrics")).text
    assert 'dbkeep_restores{status="cancelled"} 1.0' in metrics
    assert 'dbkeep_restores{status="failed"} 0.0' in metrics

    again = await admin_client.post(f"{BACKUPS}/{completed.id}/restore", json={})
    assert again.status_code == 202, again.text
    assert again.json()["data"]["keep_existing_objects"] is False  # the default


@pytest.mark.parametrize("value", [1, 0, "true", "false", "yes", "no", "on", 1.0, None])
async def test_keep_existing_objects_takes_only_json_booleans(
    admin_client: httpx.AsyncClient,
    completed: DatabaseBackup,  # noqa: F811
    value: Any,
) -> None:
    response = await admin_client.post(
        f"{BACKUPS}/{completed.id}/restore", json={"keep_existing_objects": value}
    )
    assert_failure(response, 422)


async def test_openapi_says_what_keep_existing_objects_does(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    request = schemas["RestoreRequest"]["properties"]["keep_existing_objects"]
    assert request["type"] == "boolean" and request["default"] is False
    assert "objects the backup does not have are kept" in request["description"].lower()
    assert "exactly the backup's database" in request["description"]
    read = next(v for k, v in schemas.items() if k.startswith("RestoreRead"))["properties"]
    assert {"cancelled", "phase", "keep_existing_objects"} <= set(read)
    assert set(read["phase"].get("enum") or schemas["RestorePhase"]["enum"]) == {
        "queued",
        "safety_backup",
        "loading",
        "rolling_back",
        "finished",
    }
    stats = next(v for k, v in schemas.items() if k.startswith("Statistics"))["properties"]
    assert "cancelled_backups" in stats
