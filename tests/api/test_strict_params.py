"""Strict booleans in bodies and query strings; strict ids and pages (app/http/params.py).

A value nobody meant as false (``0``, ``"no"``, ``"off"``, ``"f"``, ``0.0``) never starts a restore
without its safety backup; ``+1``, `` 1``, ``1.0``, ``1_0`` are not ids or pages on any route.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
import zstandard
from sqlalchemy import func, select, update

from app.auth.models import User
from app.backups.models import DatabaseBackup, RestoreOperation
from app.config import Settings
from app.db import Database
from tests.api.conftest import BackupFactory, assert_failure

BACKUPS = "/admin/api/database-backups"
LOOSE_NUMBERS = ["+1", " 1", "1 ", "1.0", "1_0", "01", "1e1", "0x1", "\u0661", "-1", "0", ""]


@pytest.fixture
async def intact(make_backup: BackupFactory, settings: Settings, database: Database) -> int:
    backup = await make_backup()
    stored = zstandard.ZstdCompressor().compress(b"CREATE TABLE t (id int);\n")
    path = settings.backup_dir / backup.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stored)
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.id == backup.id)
            .values(file_size=len(stored), checksum_sha256=hashlib.sha256(stored).hexdigest())
        )
        await session.commit()
    return backup.id


async def _restores(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(RestoreOperation)) or 0)


@pytest.mark.parametrize("value", [0, 1, "no", "off", "f", "false", "true", 0.0, 1.0, None, [], {}])
@pytest.mark.parametrize("field", ["use_safety_backup", "keep_existing_objects"])
async def test_restore_flags_take_json_booleans_only(
    admin_client: httpx.AsyncClient, intact: int, database: Database, field: str, value: Any
) -> None:
    response = await admin_client.post(f"{BACKUPS}/{intact}/restore", json={field: value})
    assert_failure(response, 422)
    assert await _restores(database) == 0


async def test_restore_flags_as_json_booleans_still_work(
    admin_client: httpx.AsyncClient, intact: int
) -> None:
    response = await admin_client.post(
        f"{BACKUPS}/{intact}/restore", json={"use_safety_backup": False}
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["use_safety_backup"] is False


@pytest.mark.parametrize("value", LOOSE_NUMBERS)
async def test_audit_event_pages_and_user_ids_are_digits_only(
    admin_client: httpx.AsyncClient, value: str
) -> None:
    for name in ("page", "per_page", "user_id"):
        response = await admin_client.get("/admin/api/audit-events", params={name: value})
        assert_failure(response, 422)


async def test_audit_events_with_plain_numbers(
    admin_client: httpx.AsyncClient, admin_user: User
) -> None:
    response = await admin_client.get(
        "/admin/api/audit-events", params={"page": "1", "per_page": "10", "user_id": admin_user.id}
    )
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["per_page"] == 10
    too_big = {"user_id": str(2**63)}
    assert_failure(await admin_client.get("/admin/api/audit-events", params=too_big), 422)
    assert_failure(await admin_client.get("/admin/api/audit-events", params={"per_page": 101}), 422)


@pytest.mark.parametrize("value", LOOSE_NUMBERS)
async def test_backup_ids_and_pages_are_digits_only_on_every_route(
    admin_client: httpx.AsyncClient, intact: int, value: str
) -> None:
    for name in ("page", "per_page"):
        assert_failure(await admin_client.get(BACKUPS, params={name: value}), 422)
    if not value.strip():
        return  # an empty or blank path segment is another route
    for method, path in [
        ("GET", f"{BACKUPS}/{value}"),
        ("DELETE", f"{BACKUPS}/{value}"),
        ("POST", f"{BACKUPS}/{value}/restore"),
        ("GET", f"{BACKUPS}/{value}/restores"),
        ("POST", f"{BACKUPS}/{value}/cancel"),
        ("POST", f"{BACKUPS}/{value}/trash"),
        ("POST", f"{BACKUPS}/{value}/restore-from-trash"),
        ("POST", f"{BACKUPS}/{intact}/restores/{value}/cancel"),
        ("GET", f"/admin/database-backups/{value}/download"),
    ]:
        response = await admin_client.request(method, path)
        assert response.status_code in {404, 422}, (method, path, response.status_code)
        if value.strip() == value and "/" not in value:
            assert_failure(response, 422)


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "f", "t", "0.0", "2", "", "True"])
async def test_the_raw_download_flag_is_true_false_1_or_0(
    admin_client: httpx.AsyncClient, intact: int, value: str
) -> None:
    url = f"/admin/database-backups/{intact}/download"
    assert_failure(await admin_client.get(url, params={"raw": value}), 422)


@pytest.mark.parametrize("value", ["1", "true", "0", "false"])
async def test_the_raw_download_flag_words_that_work(
    admin_client: httpx.AsyncClient, intact: int, value: str
) -> None:
    url = f"/admin/database-backups/{intact}/download"
    assert (await admin_client.get(url, params={"raw": value})).status_code == 200
