"""``POST …/{id}/restore`` with a target: another source of the backup's engine and/or another
database name; every bad target refused before anything is queued."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.backups.models import DatabaseBackup, RestoreOperation
from app.config import Settings
from app.db import Database
from app.sources.models import Source
from tests import support
from tests.api.conftest import BackupFactory, assert_failure
from tests.api.test_backups_actions import SQL, store_file

BACKUPS = "/admin/api/database-backups"
SOURCES = "/admin/api/sources"


@pytest.fixture
async def completed(
    make_backup: BackupFactory, settings: Settings, database: Database
) -> DatabaseBackup:
    backup = await make_backup()
    stored = store_file(settings, backup)
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, backup.id)
        assert row is not None
        row.file_size = len(stored)
        row.checksum_sha256 = hashlib.sha256(stored).hexdigest()
        row.raw_size = len(SQL)
        await session.commit()
        return row


async def source(client: httpx.AsyncClient, name: str, **body: Any) -> int:
    url = f"mysql://u:p@{support.MARIADB_HOST}:{support.MARIADB_PORT}/"
    response = await client.post(SOURCES, json={"name": name, "url": url, **body})
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def restores(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(RestoreOperation)) or 0)


async def test_a_restore_into_another_source_and_database_is_recorded_and_shown(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup
) -> None:
    one = await source(admin_client, "staging", databases=["stage"])
    response = await admin_client.post(
        f"{BACKUPS}/{completed.id}/restore", json={"target_source_id": one}
    )
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert (data["target_source_id"], data["target_database"]) == (one, "stage")
    history = (await admin_client.get(f"{BACKUPS}/{completed.id}/restores")).json()["data"]
    assert (history[0]["target_source_id"], history[0]["target_database"]) == (one, "stage")


async def test_a_named_database_is_the_target_and_claims_it(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup
) -> None:
    every = await source(admin_client, "everything", databases=["*"])
    body = {"target_source_id": every, "database": "fresh_copy"}
    response = await admin_client.post(f"{BACKUPS}/{completed.id}/restore", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["target_database"] == "fresh_copy"
    # That database is taken now: a second restore into it waits for the first.
    again = await admin_client.post(f"{BACKUPS}/{completed.id}/restore", json=body)
    assert "fresh_copy" in assert_failure(again, 409)["message"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"target_source_id": 999_999}, 404, None),
        ({"target_source_id": "ALL"}, 422, None),
        ({"target_source_id": 0}, 422, None),
        ({"target_source_id": "<every>"}, 422, "database"),  # ["*"] needs a database
        ({"target_source_id": "<several>"}, 422, "database"),  # which one of several?
        ({"database": "--result-file=/tmp/x"}, 422, None),
        ({"database": "a`b"}, 422, None),
        ({"database": "x" * 65}, 422, None),
        ({"database": "*"}, 422, None),
        ({"database": "mysql"}, 422, "database"),  # a system database is never the target
        ({"database": ""}, 422, None),
    ],
)
async def test_a_bad_target_is_refused_and_nothing_is_queued(
    admin_client: httpx.AsyncClient,
    completed: DatabaseBackup,
    database: Database,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    every = await source(admin_client, "everything", databases=["*"])
    several = await source(admin_client, "several", databases=["a", "b"])
    named = {"<every>": every, "<several>": several}
    if body.get("target_source_id") in named:
        body = {**body, "target_source_id": named[body["target_source_id"]]}
    failure = assert_failure(
        await admin_client.post(f"{BACKUPS}/{completed.id}/restore", json=body), status
    )
    if field is not None:
        assert field in (failure.get("errors") or {}), failure
    assert await restores(database) == 0


async def test_a_default_source_backup_restores_into_the_database_the_environment_names_now(
    admin_client: httpx.AsyncClient,
    completed: DatabaseBackup,
    database: Database,
    target_database: str,
) -> None:
    # Taken when DBKEEP_TARGET_URL named another database (the variable changed since): as in
    # part 1, a restore loads into the target the variable names now.
    async with database.sessionmaker() as session:
        default = await session.scalar(select(Source).where(Source.name == "default"))
        row = await session.get(DatabaseBackup, completed.id)
        assert default is not None and row is not None
        row.source_id, row.target_database = default.id, "shop_before"
        await session.commit()
    response = await admin_client.post(f"{BACKUPS}/{completed.id}/restore", json={})
    assert response.status_code == 202, response.text
    assert response.json()["data"]["target_database"] == target_database
