"""The verifications API and the sources' verify fields: accepted, masked, encrypted at rest;
a verification is queued (202), listed per source and read by id; wrong states are 409."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
from sqlalchemy import text

from app.db import Database
from tests import support
from tests.api.conftest import BackupFactory, assert_failure

SOURCES = "/admin/api/sources"


async def _source(client: httpx.AsyncClient, target_database: str, **extra: object) -> Any:
    body = {
        "name": support.unique_name("v").replace("_", "-"),
        "url": support.target_url(target_database),
        **extra,
    }
    response = await client.post(SOURCES, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_verify_fields_are_accepted_masked_and_encrypted(
    admin_client: httpx.AsyncClient, database: Database, target_database: str
) -> None:
    password = "Vp-" + secrets.token_hex(10)
    verify_url = f"mysql://scratch:{password}@127.0.0.1:3306/"
    created = await _source(
        admin_client, target_database, verify_url=verify_url, verify_schedule="15 3 * * *"
    )
    assert created["verify_url"] == "mysql://scratch:***@127.0.0.1:3306/"
    assert created["verify_schedule"] == "15 3 * * *"
    assert password not in json.dumps(created)
    async with database.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT verify_url FROM sources WHERE id = :id"), {"id": created["id"]}
            )
        ).scalar_one()
    assert password not in stored
    patched = await admin_client.patch(
        f"{SOURCES}/{created['id']}", json={"verify_url": None, "verify_schedule": None}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["verify_url"] is None
    assert patched.json()["data"]["verify_schedule"] is None
    bad = await admin_client.patch(f"{SOURCES}/{created['id']}", json={"verify_url": "ftp://x/"})
    assert "verify_url" in assert_failure(bad, 422)["errors"]
    bad = await admin_client.patch(
        f"{SOURCES}/{created['id']}", json={"verify_schedule": "61 * * * *"}
    )
    assert "verify_schedule" in assert_failure(bad, 422)["errors"]


async def test_a_verification_is_queued_listed_and_read(
    admin_client: httpx.AsyncClient,
    viewer_client: httpx.AsyncClient,
    make_backup: BackupFactory,
    target_database: str,
) -> None:
    source = await _source(admin_client, target_database)
    path = f"{SOURCES}/{source['id']}/verifications"
    assert_failure(await admin_client.post(path), 409)  # no verify_url
    await admin_client.patch(
        f"{SOURCES}/{source['id']}", json={"verify_url": support.target_url("mysql")}
    )
    assert_failure(await admin_client.post(path), 409)  # no completed backup
    backup = await make_backup(source_id=source["id"], target_database=target_database)

    queued = await admin_client.post(path, json={})
    assert queued.status_code == 202, queued.text
    data = queued.json()["data"]
    assert data["backup_id"] == backup.id and data["status"] == "pending"
    assert set(data) >= {
        "id", "backup_id", "status", "tables", "duration_ms", "error_message", "started_at",
        "finished_at",
    }  # fmt: skip
    assert_failure(await admin_client.post(path, json={"backup_id": backup.id}), 409)  # pending

    listed = (await admin_client.get(path)).json()["data"]
    assert [v["id"] for v in listed] == [data["id"]]
    one = await admin_client.get(f"/admin/api/verifications/{data['id']}")
    assert one.status_code == 200 and one.json()["data"]["id"] == data["id"]

    assert_failure(await admin_client.get("/admin/api/verifications/999999999"), 404)
    assert_failure(await admin_client.get("/admin/api/verifications/0"), 422)
    assert_failure(await admin_client.post(path, json={"backup_id": 999999999}), 404)
    assert_failure(await admin_client.get(f"{SOURCES}/999999999/verifications"), 404)
    assert_failure(await viewer_client.get(path), 403)
    assert_failure(await viewer_client.get(f"/admin/api/verifications/{data['id']}"), 403)


async def test_a_backup_shows_its_manifest(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    manifest = {
        "format": 1,
        "engine": "mysql",
        "server_version": "10.11.19-MariaDB",
        "tables": [{"name": "items", "rows": 3}],
        "objects": {"view": 1},
    }
    backup = await make_backup(manifest=manifest)
    shown = await admin_client.get(f"/admin/api/database-backups/{backup.id}")
    assert shown.status_code == 200
    assert shown.json()["data"]["manifest"] == manifest


async def test_a_verify_url_is_checked_against_the_sources_own_engine(
    admin_client: httpx.AsyncClient, tmp_path: Any
) -> None:
    from tests.engines.pg_support import pg_url

    body = {"engine": "postgresql", "url": pg_url("postgres")}
    made = await admin_client.post(
        SOURCES, json={**body, "name": support.unique_name("pgv").replace("_", "-"),
                       "verify_url": pg_url("postgres")},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["data"]["verify_url"] == pg_url("postgres")
    refused = await admin_client.post(
        SOURCES, json={**body, "name": support.unique_name("pgv").replace("_", "-"),
                       "verify_url": "mysql://root@127.0.0.1:3306/"},
    )  # fmt: skip
    assert_failure(refused, 422)
    assert "postgresql" in json.dumps(refused.json())
    # A SQLite source: a directory (sqlite:///dir/) or nothing at all (dbkeep's var directory).
    db = tmp_path / "shop.db"
    import sqlite3

    sqlite3.connect(db).close()
    lite = {"engine": "sqlite", "url": f"sqlite://{db}"}
    made = await admin_client.post(
        SOURCES, json={**lite, "name": "lite-a", "verify_url": f"sqlite://{tmp_path}/"}
    )
    assert made.status_code == 201, made.text
    refused = await admin_client.post(
        SOURCES, json={**lite, "name": "lite-b", "verify_url": f"sqlite://{db}"}
    )
    assert_failure(refused, 422)
