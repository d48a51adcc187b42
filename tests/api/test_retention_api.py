"""Pinning a backup (``PATCH /admin/api/database-backups/{id}``, strict booleans) and a
source's retention preview, which says what auto-trash then does, without doing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.audit.service import Actor
from app.backups.service import BackupService
from app.db import Database
from tests.api.conftest import BackupFactory, assert_failure, insert_backups

BACKUPS = "/admin/api/database-backups"
SOURCES = "/admin/api/sources"
DAY = timedelta(days=1)


async def test_a_backup_is_pinned_and_unpinned(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    backup = await make_backup()
    assert (await admin_client.get(f"{BACKUPS}/{backup.id}")).json()["data"]["pinned"] is False

    pinned = await admin_client.patch(f"{BACKUPS}/{backup.id}", json={"pinned": True})
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["data"]["pinned"] is True
    assert pinned.json()["message"] == "Backup pinned."
    assert (await admin_client.get(f"{BACKUPS}/{backup.id}")).json()["data"]["pinned"] is True
    listed = (await admin_client.get(BACKUPS)).json()["data"]
    assert [row["pinned"] for row in listed if row["id"] == backup.id] == [True]

    unpinned = await admin_client.patch(f"{BACKUPS}/{backup.id}", json={"pinned": False})
    assert unpinned.json()["data"]["pinned"] is False


@pytest.mark.parametrize(
    "body",
    [{"pinned": "true"}, {"pinned": 1}, {"pinned": None}, {}, {"pinned": True, "status": "x"}],
)
async def test_pinning_takes_only_a_json_boolean(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, body: dict[str, Any]
) -> None:
    backup = await make_backup()
    assert_failure(await admin_client.patch(f"{BACKUPS}/{backup.id}", json=body), 422)
    assert (await admin_client.get(f"{BACKUPS}/{backup.id}")).json()["data"]["pinned"] is False


async def test_pinning_an_unknown_or_bad_id_and_without_rights(
    admin_client: httpx.AsyncClient, viewer_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    assert_failure(await admin_client.patch(f"{BACKUPS}/999999", json={"pinned": True}), 404)
    assert_failure(await admin_client.patch(f"{BACKUPS}/0", json={"pinned": True}), 422)
    backup = await make_backup()
    assert_failure(await viewer_client.patch(f"{BACKUPS}/{backup.id}", json={"pinned": True}), 403)
    response = await admin_client.patch(
        f"{BACKUPS}/{backup.id}", content=b"pinned=true", headers={"Content-Type": "text/plain"}
    )
    assert_failure(response, 415)


async def test_the_preview_says_what_auto_trash_then_does_and_changes_nothing(
    admin_client: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    sources = (await admin_client.get(SOURCES)).json()["data"]
    [default] = [s for s in sources if s["name"] == "default"]
    rule = {"trash_after_days": 15, "purge_after_days": 7, "keep_daily": 2}
    changed = await admin_client.patch(f"{SOURCES}/{default['id']}", json={"retention": rule})
    assert changed.status_code == 200, changed.text
    # Noon yesterday (UTC, the source's zone), so the days are the same whatever the time now.
    noon = (datetime.now(UTC) - DAY).replace(hour=12, minute=0, second=0, microsecond=0)
    rows = await insert_backups(
        database,
        [
            {"source_id": default["id"], "backup_date": noon},
            {"source_id": default["id"], "backup_date": noon - timedelta(hours=1)},
            {"source_id": default["id"], "backup_date": noon - 1 * DAY},
            {"source_id": default["id"], "backup_date": noon - 2 * DAY},
            {"source_id": default["id"], "backup_date": noon - 3 * DAY, "pinned": True},
        ],
    )
    newest, same_day, second_day, third_day, pinned = (row.id for row in rows)

    response = await admin_client.get(f"{SOURCES}/{default['id']}/retention-preview")
    assert response.status_code == 200, response.text
    preview = response.json()["data"]
    assert sorted(preview["trash"]) == sorted([same_day, third_day])
    reasons = {d["backup_id"]: (d["action"], d["reasons"]) for d in preview["decisions"]}
    assert reasons[third_day] == ("trash", ["not kept by keep-daily 2"])
    assert reasons[pinned][0] == "keep" and "pinned" in reasons[pinned][1]
    assert reasons[second_day][0] == "keep" and any(
        "keep-daily" in r for r in reasons[second_day][1]
    )
    assert preview["rule"]["keep_daily"] == 2
    listed = (await admin_client.get(BACKUPS, params={"per_page": 50})).json()["data"]
    assert all(row["status"] == "completed" for row in listed)  # nothing was trashed

    async with database.sessionmaker() as session:
        service = BackupService(
            session,
            settings=app.state.settings,
            storage=app.state.storage,
            queue=None,
            actor=Actor.system("test"),
        )
        moved = await service.auto_trash()
    assert sorted(moved) == sorted(preview["trash"])
    again = (await admin_client.get(f"{SOURCES}/{default['id']}/retention-preview")).json()
    assert again["data"]["trash"] == []
    assert newest not in moved


async def test_the_preview_of_an_unknown_source_is_404(admin_client: httpx.AsyncClient) -> None:
    assert_failure(await admin_client.get(f"{SOURCES}/999999/retention-preview"), 404)
    assert_failure(await admin_client.get(f"{SOURCES}/abc/retention-preview"), 422)
