"""Create, details, download, restore, cancel, trash, delete, statistics and bulk actions."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import User
from app.backups.models import BackupStatus, DatabaseBackup, RestoreOperation, RestoreStatus
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.api.conftest import BackupFactory, assert_failure, login, make_client

BACKUPS = "/admin/api/database-backups"
SQL = b"-- MariaDB dump\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1),(2);\n" * 2000
SQL += b"-- Dump completed on 2026-01-01  0:00:00\n"


def store_file(settings: Settings, backup: DatabaseBackup, content: bytes = SQL) -> bytes:
    """Write ``backup``'s file the way the runner would: zstd-compressed under its key."""
    stored = zstandard.ZstdCompressor().compress(content)
    path = settings.backup_dir / backup.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stored)
    return stored


@pytest.fixture
async def completed(
    make_backup: BackupFactory, settings: Settings, database: Database
) -> DatabaseBackup:
    """A completed backup whose file exists with the recorded size and checksum."""
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


async def count(database: Database, model: type[Any]) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def backup_status(database: Database, backup_id: int) -> BackupStatus | None:
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, backup_id)
        return row.status if row else None


# ---- create ---------------------------------------------------------------------------------


async def test_create_queues_a_pending_backup_and_returns_at_once(
    admin_client: httpx.AsyncClient, admin_user: User, settings: Settings, database: Database
) -> None:
    response = await admin_client.post(BACKUPS)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["success"] is True and body["message"] == "Backup queued."
    data = body["data"]
    assert data["status"] == "pending" and data["created_by"] == admin_user.id
    assert data["trigger"] == "manual" and len(data["unique_identifier"]) == 32
    assert "path" not in data and str(settings.backup_dir) not in response.text
    assert await backup_status(database, data["id"]) is BackupStatus.pending

    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    try:
        assert await redis.zcard(settings.queue_name) == 1
    finally:
        await redis.aclose()


async def test_create_with_redis_down_is_503_and_leaves_nothing_pending(
    database: Database, settings: Settings, admin_user: User
) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    async with app.router.lifespan_context(app), make_client(app) as c:
        await login(c, admin_user.email)
        body = assert_failure(await c.post(BACKUPS), 503)
        assert "queue" in body["message"].lower()
    async with database.sessionmaker() as session:
        rows = list(await session.scalars(select(DatabaseBackup)))
    assert [r.status for r in rows] == [BackupStatus.failed]


# ---- details --------------------------------------------------------------------------------


async def test_details(admin_client: httpx.AsyncClient, completed: DatabaseBackup) -> None:
    response = await admin_client.get(f"{BACKUPS}/{completed.id}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == completed.id and data["filename"] == completed.filename
    assert data["checksum_sha256"] == completed.checksum_sha256
    assert "path" not in data


@pytest.mark.parametrize(
    "raw_id,status",
    [
        ("abc", 422),
        ("0", 422),
        ("-1", 422),
        ("1.0", 422),
        ("+1", 422),
        ("1e3", 422),
        ("9223372036854775808", 422),
        ("99999999999999999999999999", 422),
        ("9223372036854775807", 404),
        ("123456", 404),
    ],
)
async def test_bad_and_unknown_ids(
    admin_client: httpx.AsyncClient, raw_id: str, status: int
) -> None:
    for method, path in [
        ("GET", f"{BACKUPS}/{raw_id}"),
        ("DELETE", f"{BACKUPS}/{raw_id}"),
        ("POST", f"{BACKUPS}/{raw_id}/trash"),
        ("POST", f"{BACKUPS}/{raw_id}/restore-from-trash"),
        ("POST", f"{BACKUPS}/{raw_id}/restore"),
        ("POST", f"{BACKUPS}/{raw_id}/cancel"),
        ("GET", f"{BACKUPS}/{raw_id}/restores"),
        ("GET", f"/admin/database-backups/{raw_id}/download"),
    ]:
        body = assert_failure(await admin_client.request(method, path), status)
        if status == 422:
            assert "backup_id" in body["errors"], (method, path)


# ---- download -------------------------------------------------------------------------------


async def test_download_streams_decompressed_sql_with_a_server_made_name(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    async with admin_client.stream(
        "GET", f"/admin/database-backups/{completed.id}/download"
    ) as response:
        assert response.status_code == 200
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == SQL
    assert response.headers["content-type"].startswith("application/sql")
    stem = completed.filename.removesuffix(".sql.zst")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f'filename="{stem}.sql"' in disposition
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    async with database.sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert "backup.download" in actions


async def test_raw_download_is_the_stored_file(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, settings: Settings
) -> None:
    response = await admin_client.get(
        f"/admin/database-backups/{completed.id}/download", params={"raw": "1"}
    )
    assert response.status_code == 200
    assert response.content == (settings.backup_dir / completed.path).read_bytes()
    assert hashlib.sha256(response.content).hexdigest() == completed.checksum_sha256
    assert response.headers["content-length"] == str(completed.file_size)
    assert f'filename="{completed.filename}"' in response.headers["content-disposition"]


@pytest.mark.parametrize(
    "status", [BackupStatus.pending, BackupStatus.in_progress, BackupStatus.failed,
               BackupStatus.in_trash],
)  # fmt: skip
async def test_download_of_an_unfinished_failed_or_trashed_backup_is_409(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, settings: Settings,
    status: BackupStatus,
) -> None:  # fmt: skip
    backup = await make_backup(status=status)
    store_file(settings, backup)
    for raw in ("0", "1"):
        response = await admin_client.get(
            f"/admin/database-backups/{backup.id}/download", params={"raw": raw}
        )
        assert_failure(response, 409)


async def test_download_of_a_purged_file_is_404(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, settings: Settings
) -> None:
    (settings.backup_dir / completed.path).unlink()
    response = await admin_client.get(f"/admin/database-backups/{completed.id}/download")
    assert_failure(response, 404)
    assert str(settings.backup_dir) not in response.text


async def test_download_of_a_deleted_backup_is_404(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup
) -> None:
    assert (await admin_client.delete(f"{BACKUPS}/{completed.id}")).status_code == 200
    assert_failure(await admin_client.get(f"/admin/database-backups/{completed.id}/download"), 404)


async def test_download_of_a_damaged_file_is_409(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, settings: Settings
) -> None:
    path = settings.backup_dir / completed.path
    path.write_bytes(b"this is not zstd at all" * 10)
    response = await admin_client.get(f"/admin/database-backups/{completed.id}/download")
    body = assert_failure(response, 409)
    assert "damaged" in body["message"]


# ---- restore --------------------------------------------------------------------------------


async def test_restore_queues_and_reports_the_restore_id(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    response = await admin_client.post(f"{BACKUPS}/{completed.id}/restore")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["success"] is True and "restore" in body["message"].lower()
    restore = body["data"]
    assert restore["backup_id"] == completed.id and restore["status"] == "pending"
    assert restore["use_safety_backup"] is True

    history = await admin_client.get(f"{BACKUPS}/{completed.id}/restores")
    assert [r["id"] for r in history.json()["data"]] == [restore["id"]]

    # A second restore while the first is pending is refused.
    assert_failure(await admin_client.post(f"{BACKUPS}/{completed.id}/restore"), 409)
    assert await count(database, RestoreOperation) == 1


async def test_a_pending_restore_is_cancelled_at_once_and_only_once(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    restore = (await admin_client.post(f"{BACKUPS}/{completed.id}/restore")).json()["data"]
    cancel = f"{BACKUPS}/{completed.id}/restores/{restore['id']}/cancel"

    response = await admin_client.post(cancel)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Restore cancelled; the database was not changed."
    assert body["data"]["status"] == "failed" and body["data"]["cancel_requested_at"]
    assert "Cancelled before it started" in body["data"]["error_message"]
    again = assert_failure(await admin_client.post(cancel), 409)
    assert "only a pending or running restore" in again["message"]
    async with database.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEvent.action))).all()
    assert "restore.cancel" in actions
    # The backup can be restored again at once.
    assert (await admin_client.post(f"{BACKUPS}/{completed.id}/restore")).status_code == 202


async def test_a_running_restore_is_asked_to_stop(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    restore = (await admin_client.post(f"{BACKUPS}/{completed.id}/restore")).json()["data"]
    async with database.sessionmaker() as session:
        row = await session.get(RestoreOperation, restore["id"])
        assert row is not None
        row.status = RestoreStatus.in_progress
        await session.commit()

    response = await admin_client.post(f"{BACKUPS}/{completed.id}/restores/{restore['id']}/cancel")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "in_progress" and data["cancel_requested_at"]
    assert response.json()["message"].startswith("Cancellation requested")


async def test_cancelling_a_restore_that_is_not_there_or_not_yours_to_name_is_404(
    admin_client: httpx.AsyncClient,
    viewer_client: httpx.AsyncClient,
    completed: DatabaseBackup,
    make_backup: BackupFactory,
) -> None:
    restore = (await admin_client.post(f"{BACKUPS}/{completed.id}/restore")).json()["data"]
    other = await make_backup()
    assert_failure(await admin_client.post(f"{BACKUPS}/{completed.id}/restores/999/cancel"), 404)
    assert_failure(
        await admin_client.post(f"{BACKUPS}/{other.id}/restores/{restore['id']}/cancel"), 404
    )
    assert_failure(
        await viewer_client.post(f"{BACKUPS}/{completed.id}/restores/{restore['id']}/cancel"), 403
    )
    assert_failure(await admin_client.post(f"{BACKUPS}/{completed.id}/restores/0/cancel"), 422)


async def test_restore_options_body(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup
) -> None:
    response = await admin_client.post(
        f"{BACKUPS}/{completed.id}/restore", json={"use_safety_backup": False}
    )
    assert response.status_code == 202
    assert response.json()["data"]["use_safety_backup"] is False


@pytest.mark.parametrize(
    "status", [BackupStatus.pending, BackupStatus.in_progress, BackupStatus.failed,
               BackupStatus.in_trash],
)  # fmt: skip
async def test_restore_of_a_backup_that_is_not_completed_is_409(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, database: Database,
    status: BackupStatus,
) -> None:  # fmt: skip
    backup = await make_backup(status=status)
    assert_failure(await admin_client.post(f"{BACKUPS}/{backup.id}/restore"), 409)
    assert await count(database, RestoreOperation) == 0


@pytest.mark.parametrize("damage", ["missing", "truncated"])
async def test_restore_of_a_missing_or_truncated_file_is_409(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, settings: Settings,
    database: Database, damage: str,
) -> None:  # fmt: skip
    path = settings.backup_dir / completed.path
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    body = assert_failure(await admin_client.post(f"{BACKUPS}/{completed.id}/restore"), 409)
    assert str(settings.backup_dir) not in body["message"]
    assert await count(database, RestoreOperation) == 0


async def test_restore_with_bad_bodies(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    url = f"{BACKUPS}/{completed.id}/restore"
    assert_failure(await admin_client.post(url, json={"use_safety_backup": "maybe"}), 422)
    assert_failure(await admin_client.post(url, json={"unexpected": 1}), 422)
    assert_failure(
        await admin_client.post(url, content="yes", headers={"Content-Type": "text/plain"}), 415
    )
    assert await count(database, RestoreOperation) == 0


# ---- cancel, trash, restore from trash, delete ------------------------------------------------


async def test_cancel_a_pending_backup(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, database: Database
) -> None:
    backup = await make_backup(status=BackupStatus.pending)
    response = await admin_client.post(f"{BACKUPS}/{backup.id}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "failed"
    assert await backup_status(database, backup.id) is BackupStatus.failed
    assert_failure(await admin_client.post(f"{BACKUPS}/{backup.id}/cancel"), 409)


async def test_cancel_a_running_backup_asks_the_worker(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    backup = await make_backup(status=BackupStatus.in_progress)
    response = await admin_client.post(f"{BACKUPS}/{backup.id}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["cancel_requested_at"] is not None


async def test_trash_restore_from_trash_and_delete(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, settings: Settings,
    database: Database,
) -> None:  # fmt: skip
    url = f"{BACKUPS}/{completed.id}"
    trashed = await admin_client.post(f"{url}/trash")
    assert trashed.status_code == 200
    assert trashed.json()["message"] == "Backup moved to trash."
    assert trashed.json()["data"]["status"] == "in_trash" and trashed.json()["data"]["trashed_at"]
    assert_failure(await admin_client.post(f"{url}/trash"), 409)

    back = await admin_client.post(f"{url}/restore-from-trash")
    assert back.status_code == 200 and back.json()["message"] == "Backup restored from trash."
    assert (
        back.json()["data"]["status"] == "completed" and back.json()["data"]["trashed_at"] is None
    )
    assert_failure(await admin_client.post(f"{url}/restore-from-trash"), 409)

    deleted = await admin_client.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == {
        "success": True, "message": "Backup deleted permanently.", "data": None,
    }  # fmt: skip
    assert not (settings.backup_dir / completed.path).exists()
    assert_failure(await admin_client.get(url), 404)
    assert_failure(await admin_client.delete(url), 404)

    async with database.sessionmaker() as session:
        events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    actions = [e.action for e in events if e.action.startswith("backup.")]
    assert actions == ["backup.trash", "backup.restore_from_trash", "backup.delete"]
    assert all(e.client_ip == "198.51.100.7" and e.actor == "admin@example.com"
               for e in events if e.action.startswith("backup."))  # fmt: skip


@pytest.mark.parametrize("status", [BackupStatus.pending, BackupStatus.in_progress])
async def test_running_backups_cannot_be_trashed_or_deleted(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, database: Database,
    status: BackupStatus,
) -> None:  # fmt: skip
    backup = await make_backup(status=status)
    assert_failure(await admin_client.post(f"{BACKUPS}/{backup.id}/trash"), 409)
    assert_failure(await admin_client.delete(f"{BACKUPS}/{backup.id}"), 409)
    assert await backup_status(database, backup.id) is status


# ---- statistics -----------------------------------------------------------------------------


async def test_statistics_has_the_eight_fields(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    empty = (await admin_client.get(f"{BACKUPS}/statistics")).json()["data"]
    assert empty == {
        "total_backups": 0, "completed_backups": 0, "failed_backups": 0, "trashed_backups": 0,
        "total_size": 0, "average_size": 0, "latest_backup": None, "oldest_backup": None,
        "cancelled_backups": 0, "trash_after_days": 15, "purge_after_days": 7,
    }  # fmt: skip
    old = await make_backup(file_size=100, backup_date=_ago(days=3))
    new = await make_backup(file_size=300, backup_date=_ago(days=1))
    await make_backup(status=BackupStatus.failed, file_size=0)
    await make_backup(status=BackupStatus.in_trash, file_size=50)
    data = (await admin_client.get(f"{BACKUPS}/statistics")).json()["data"]
    assert data["total_backups"] == 4
    assert data["completed_backups"] == 2
    assert data["failed_backups"] == 1
    assert data["trashed_backups"] == 1
    assert data["total_size"] == 450
    assert data["average_size"] == 200
    assert data["latest_backup"]["id"] == new.id
    assert data["oldest_backup"]["id"] == old.id
    assert "path" not in data["latest_backup"]


def _ago(**kwargs: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(**kwargs)


# ---- bulk -----------------------------------------------------------------------------------


async def test_bulk_trash_reports_every_id(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, database: Database
) -> None:
    done = await make_backup()
    failed = await make_backup(status=BackupStatus.failed)
    running = await make_backup(status=BackupStatus.in_progress)
    ids = [done.id, 999_999, running.id, failed.id, done.id]
    response = await admin_client.post(f"{BACKUPS}/bulk-trash", json={"backup_ids": ids})
    assert response.status_code == 200
    body = response.json()
    results = {r["id"]: r for r in body["data"]["results"]}
    assert [r["id"] for r in body["data"]["results"]] == [done.id, 999_999, running.id, failed.id]
    assert results[done.id]["success"] and results[failed.id]["success"]
    assert results[999_999] | {"message": ""} == {
        "id": 999_999, "success": False, "status": 404, "message": "",
    }  # fmt: skip
    assert results[running.id]["status"] == 409 and not results[running.id]["success"]
    assert body["data"]["succeeded"] == 2 and body["data"]["failed"] == 2
    assert body["message"] == "2 of 4 backups moved to trash."
    assert await backup_status(database, done.id) is BackupStatus.in_trash
    assert await backup_status(database, running.id) is BackupStatus.in_progress


async def test_bulk_delete_reports_every_id_and_removes_files(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, make_backup: BackupFactory,
    settings: Settings, database: Database,
) -> None:  # fmt: skip
    pending = await make_backup(status=BackupStatus.pending)
    response = await admin_client.request(
        "DELETE", f"{BACKUPS}/bulk-delete", json={"backup_ids": [completed.id, pending.id, 42_424]}
    )
    assert response.status_code == 200
    statuses = [(r["id"], r["status"]) for r in response.json()["data"]["results"]]
    assert statuses == [(completed.id, 200), (pending.id, 409), (42_424, 404)]
    assert await backup_status(database, completed.id) is None
    assert await backup_status(database, pending.id) is BackupStatus.pending
    assert not (settings.backup_dir / completed.path).exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"backup_ids": []},
        {"backup_ids": list(range(1, 102))},
        {"backup_ids": list(range(1, 100_001))},
        {"backup_ids": ["1", "2"]},
        {"backup_ids": [1, "x"]},
        {"backup_ids": [-1]},
        {"backup_ids": [0]},
        {"backup_ids": [1.5]},
        {"backup_ids": [True]},
        {"backup_ids": [2**63]},
        {"backup_ids": None},
        {"backup_ids": "1,2,3"},
        {"ids": [1]},
        {},
        [1, 2],
        "backup_ids",
    ],
)
async def test_bad_bulk_bodies_are_422_and_do_nothing(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database,
    payload: object,
) -> None:  # fmt: skip
    for method, path in [("POST", "bulk-trash"), ("DELETE", "bulk-delete")]:
        response = await admin_client.request(method, f"{BACKUPS}/{path}", json=payload)
        body = assert_failure(response, 422)
        assert body["errors"]
        assert len(body["errors"]) <= 20
        assert len(response.content) < 10_000
    assert await backup_status(database, completed.id) is BackupStatus.completed


async def test_bulk_body_that_is_not_json(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        f"{BACKUPS}/bulk-trash", content="backup_ids=1", headers={"Content-Type": "text/plain"}
    )
    assert_failure(response, 415)
    missing_type = await admin_client.post(f"{BACKUPS}/bulk-trash", content=b'{"backup_ids":[1]}')
    assert missing_type.status_code in (415, 422)
    broken = await admin_client.post(
        f"{BACKUPS}/bulk-trash", content="{", headers={"Content-Type": "application/json"}
    )
    assert_failure(broken, 422)
    no_body = await admin_client.post(f"{BACKUPS}/bulk-trash")
    assert_failure(no_body, 422)


# ---- methods and sizes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("GET", f"{BACKUPS}/1/trash", "POST"),
        ("GET", f"{BACKUPS}/1/restore", "POST"),
        ("GET", f"{BACKUPS}/1/restore-from-trash", "POST"),
        ("GET", f"{BACKUPS}/1/cancel", "POST"),
        ("GET", f"{BACKUPS}/bulk-delete", "DELETE"),
        ("GET", f"{BACKUPS}/bulk-trash", "POST"),
        ("POST", f"{BACKUPS}/bulk-delete", "DELETE"),
        ("DELETE", f"{BACKUPS}/bulk-trash", "POST"),
        ("DELETE", f"{BACKUPS}/statistics", "GET"),
        ("PUT", BACKUPS, "GET, POST"),
        ("PUT", f"{BACKUPS}/1", "DELETE, GET, PATCH"),
        ("POST", "/admin/database-backups/1/download", "GET"),
        ("GET", "/api/auth/login", "POST"),
        ("GET", "/api/auth/logout", "POST"),
    ],
)
async def test_wrong_method_is_405_with_the_envelope(
    admin_client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await admin_client.request(method, path)
    assert_failure(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= set(
        allowed.replace(" ", "").split(",")
    )


async def test_ten_megabyte_body_is_413(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup, database: Database
) -> None:
    big = b'{"backup_ids": [' + b"1," * 5_000_000 + b"1]}"
    response = await admin_client.post(
        f"{BACKUPS}/bulk-trash", content=big, headers={"Content-Type": "application/json"}
    )
    assert_failure(response, 413)
    assert await backup_status(database, completed.id) is BackupStatus.completed


async def test_body_limit_holds_without_content_length(admin_client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536

    response = await admin_client.post(
        "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_failure(response, 413)


async def test_unknown_api_path_is_404_envelope(admin_client: httpx.AsyncClient) -> None:
    assert_failure(await admin_client.get("/admin/api/nothing-here"), 404)
    assert_failure(await admin_client.post("/nothing"), 404)


async def test_api_responses_carry_security_headers(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get(BACKUPS)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]


async def test_lifecycle_is_audited_and_listed(
    admin_client: httpx.AsyncClient, completed: DatabaseBackup
) -> None:
    await admin_client.post(BACKUPS)
    await admin_client.get(f"/admin/database-backups/{completed.id}/download")
    await admin_client.post(f"{BACKUPS}/bulk-trash", json={"backup_ids": [completed.id]})
    response = await admin_client.get("/admin/api/audit-events", params={"per_page": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["total"] == 4 and body["meta"]["last_page"] == 2
    assert [e["action"] for e in body["data"]] == ["backup.trash", "backup.download"]
    assert body["data"][0]["client_ip"] == "198.51.100.7"
    logins = await admin_client.get("/admin/api/audit-events", params={"action": "auth.login"})
    assert [e["action"] for e in logins.json()["data"]] == ["auth.login"]
    assert_failure(
        await admin_client.get("/admin/api/audit-events", params={"action": "x' OR 1=1"}), 422
    )


async def test_backup_routes_answer_even_without_cookie_when_token_used(
    app: FastAPI, admin_token: Any, completed: DatabaseBackup, tmp_path: Path
) -> None:
    client = admin_token.client
    assert (await client.get(f"/admin/database-backups/{completed.id}/download")).content == SQL
    assert (await client.post(f"{BACKUPS}/{completed.id}/trash")).status_code == 200


async def test_create_without_a_target_is_409_that_says_what_to_set(
    database: Database, settings: Settings, admin_user: User
) -> None:
    app = create_app(settings.model_copy(update={"target_url": None}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        await login(c, admin_user.email)
        body = assert_failure(await c.post(BACKUPS), 409)
    assert "DBKEEP_TARGET_URL" in body["message"]
    assert await count(database, DatabaseBackup) == 0
