"""The destinations API: CRUD with its checks, the bootstrap ``local`` from DBKEEP_BACKUP_DIR,
the probe test (write, read back, delete) with a clear reason when it fails, a secret that is
stored encrypted and never returned, and deletes refused while something uses the destination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text

from app.backups.models import BackupStatus
from app.config import Settings
from app.db import Database
from app.destinations.models import BackupCopy
from app.destinations.tasks import copy_retry_job_id
from tests.api.conftest import BackupFactory, assert_failure

DESTINATIONS = "/admin/api/destinations"
SOURCES = "/admin/api/sources"
BACKUPS = "/admin/api/database-backups"
SECRET = "Sk-never-shown-0123456789abcdef"


async def add(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(DESTINATIONS, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_the_backup_dir_is_the_bootstrap_local_destination(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await admin_client.get(DESTINATIONS)
    assert response.status_code == 200
    [local] = response.json()["data"]
    assert local["name"] == "local" and local["kind"] == "local"
    assert local["config"] == {"path": str(settings.backup_dir)}
    assert local["from_environment"] is True
    assert local["objects_stored"] == 0 and local["bytes_stored"] == 0
    changed = await admin_client.patch(
        f"{DESTINATIONS}/{local['id']}", json={"config": {"path": "/elsewhere"}}
    )
    assert_failure(changed, 409)
    assert_failure(await admin_client.delete(f"{DESTINATIONS}/{local['id']}"), 409)


async def test_a_local_destination_is_added_read_changed_tested_and_deleted(
    admin_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    created = await add(
        admin_client, name="second", kind="local", config={"path": str(tmp_path / "two")}
    )
    assert created["config"] == {"path": str(tmp_path / "two")}
    assert created["has_secret"] is False
    assert_failure(
        await admin_client.post(
            DESTINATIONS, json={"name": "second", "kind": "local", "config": {"path": "/x"}}
        ),
        409,
    )
    bad = assert_failure(
        await admin_client.post(
            DESTINATIONS, json={"name": "rel", "kind": "local", "config": {"path": "rel/dir"}}
        ),
        422,
    )
    assert "config.path" in bad["errors"]

    tested = await admin_client.post(f"{DESTINATIONS}/{created['id']}/test")
    assert tested.status_code == 200, tested.text
    result = tested.json()["data"]
    assert result["ok"] is True
    assert [step["name"] for step in result["steps"]] == ["write", "read", "delete"]
    assert list((tmp_path / "two").iterdir()) == []  # the probe object is gone again

    moved = await admin_client.patch(
        f"{DESTINATIONS}/{created['id']}",
        json={"name": "third", "config": {"path": str(tmp_path / "three")}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["name"] == "third"
    got = await admin_client.get(f"{DESTINATIONS}/{created['id']}")
    assert got.json()["data"]["config"] == {"path": str(tmp_path / "three")}

    deleted = await admin_client.delete(f"{DESTINATIONS}/{created['id']}")
    assert deleted.status_code == 200, deleted.text
    assert_failure(await admin_client.get(f"{DESTINATIONS}/{created['id']}"), 404)


async def test_the_test_says_why_a_destination_that_cannot_be_written_fails(
    admin_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    created = await add(
        admin_client, name="blocked", kind="local", config={"path": str(blocker / "backups")}
    )
    response = await admin_client.post(f"{DESTINATIONS}/{created['id']}/test")
    assert response.status_code == 200
    result = response.json()["data"]
    assert result["ok"] is False
    assert result["steps"][0]["name"] == "write" and result["steps"][0]["ok"] is False
    assert "write step failed" in result["message"]
    assert str(tmp_path) not in response.text  # no path in the reason


async def test_an_s3_secret_is_stored_encrypted_never_returned_and_kept_on_patch(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    config = {
        "endpoint_url": "http://127.0.0.1:9",
        "bucket": "dbkeep-backups",
        "prefix": "prod/",
        "region": "us-east-1",
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": SECRET,
        "force_path_style": True,
    }
    response = await admin_client.post(
        DESTINATIONS, json={"name": "offsite", "kind": "s3", "config": config}
    )
    assert response.status_code == 201, response.text
    assert SECRET not in response.text
    created = response.json()["data"]
    assert created["has_secret"] is True
    assert "secret_access_key" not in created["config"]
    assert created["config"]["bucket"] == "dbkeep-backups"

    patched = await admin_client.patch(
        f"{DESTINATIONS}/{created['id']}", json={"config": {"prefix": "other/"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["has_secret"] is True
    assert patched.json()["data"]["config"]["prefix"] == "other/"
    for url in (DESTINATIONS, f"{DESTINATIONS}/{created['id']}"):
        assert SECRET not in (await admin_client.get(url)).text

    async with database.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT config, secrets FROM destinations WHERE name = 'offsite'")
            )
        ).one()
    assert SECRET not in str(stored[0]) and SECRET not in str(stored[1])
    assert stored[1]  # encrypted, but there


async def test_a_destination_in_use_or_holding_copies_is_not_deleted(
    admin_client: httpx.AsyncClient,
    tmp_path: Path,
    settings: Settings,
    make_backup: BackupFactory,
) -> None:
    second = await add(
        admin_client, name="second", kind="local", config={"path": str(tmp_path / "two")}
    )
    sources = (await admin_client.get(SOURCES)).json()["data"]
    default = next(s for s in sources if s["name"] == "default")
    local_id = default["destination_ids"][0]
    changed = await admin_client.patch(
        f"{SOURCES}/{default['id']}", json={"destination_ids": [local_id, second["id"]]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["destination_ids"] == [local_id, second["id"]]
    refused = assert_failure(await admin_client.delete(f"{DESTINATIONS}/{second['id']}"), 409)
    assert "default" in refused["message"]

    unknown = await admin_client.patch(
        f"{SOURCES}/{default['id']}", json={"destination_ids": [999999]}
    )
    assert_failure(unknown, 422)
    empty = await admin_client.patch(f"{SOURCES}/{default['id']}", json={"destination_ids": []})
    assert_failure(empty, 422)


async def test_a_backup_shows_its_copies_and_a_failed_copy_can_be_retried(
    admin_client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    tmp_path: Path,
    make_backup: BackupFactory,
) -> None:
    second = await add(
        admin_client, name="second", kind="local", config={"path": str(tmp_path / "two")}
    )
    local = next(
        d for d in (await admin_client.get(DESTINATIONS)).json()["data"] if d["name"] == "local"
    )
    backup = await make_backup(
        status=BackupStatus.completed, file_size=11, checksum_sha256="a" * 64
    )
    async with database.sessionmaker() as session:
        session.add_all(
            [
                BackupCopy(
                    backup_id=backup.id,
                    destination_id=local["id"],
                    position=0,
                    status="stored",
                    storage_key=backup.path,
                    size=11,
                    checksum_sha256="a" * 64,
                ),
                BackupCopy(
                    backup_id=backup.id,
                    destination_id=second["id"],
                    position=1,
                    status="failed",
                    storage_key=backup.path,
                    error_message="Could not write: not a directory.",
                ),
            ]
        )
        await session.commit()

    shown = (await admin_client.get(f"{BACKUPS}/{backup.id}")).json()["data"]
    assert shown["degraded"] is True
    assert [(c["destination_name"], c["status"]) for c in shown["copies"]] == [
        ("local", "stored"),
        ("second", "failed"),
    ]
    assert set(shown["copies"][0]) == {
        "destination_id",
        "destination_name",
        "status",
        "size",
        "checksum_sha256",
        "verified_at",
        "error_message",
    }
    listed = (await admin_client.get(BACKUPS)).json()["data"]
    assert [row["degraded"] for row in listed if row["id"] == backup.id] == [True]
    listed_local = next(
        d for d in (await admin_client.get(DESTINATIONS)).json()["data"] if d["name"] == "local"
    )
    assert listed_local["objects_stored"] == 1 and listed_local["bytes_stored"] == 11

    # A destination holding copies can't be deleted.
    refused = assert_failure(await admin_client.delete(f"{DESTINATIONS}/{second['id']}"), 409)
    assert "cop" in refused["message"]

    retry = f"{BACKUPS}/{backup.id}/copies/{second['id']}/retry"
    queued = await admin_client.post(retry)
    assert queued.status_code == 202, queued.text
    assert [c["status"] for c in queued.json()["data"]] == ["stored", "pending"]
    redis = Redis.from_url(settings.redis_url)
    try:
        job = copy_retry_job_id(settings.queue_name, backup.id, second["id"])
        assert await redis.exists(f"arq:job:{job}") == 1
    finally:
        await redis.aclose()
    stored = f"{BACKUPS}/{backup.id}/copies/{local['id']}/retry"
    assert_failure(await admin_client.post(stored), 409)
    assert_failure(await admin_client.post(f"{BACKUPS}/{backup.id}/copies/999999/retry"), 404)
