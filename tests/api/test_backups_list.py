"""Listing: pagination, the six sorts, status and view filters, literal search, bad inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.totals import TOTALS_KEY, SearchTotals
from app.db import Database
from tests.api.conftest import assert_failure, insert_backups

BACKUPS = "/admin/api/database-backups"
STATUSES = [
    BackupStatus.completed,
    BackupStatus.completed,
    BackupStatus.failed,
    BackupStatus.pending,
    BackupStatus.in_progress,
    BackupStatus.in_trash,
]


@pytest.fixture
async def many(database: Database) -> list[DatabaseBackup]:
    """240 rows: distinct dates, sizes that collide in pairs, every status."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i in range(240):
        rows.append(
            {
                "status": STATUSES[i % len(STATUSES)],
                "backup_date": base + timedelta(hours=(i * 37) % 240),
                "file_size": 5000 + (i // 2) * 7 % 311,
            }
        )
    return await insert_backups(database, rows)


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        response = await client.get(BACKUPS, params={**params, "page": page, "per_page": 100})
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["data"])
        if page >= body["meta"]["last_page"]:
            return items
        page += 1


async def test_default_page_is_ten_newest_active_backups(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup]
) -> None:
    response = await admin_client.get(BACKUPS)
    assert response.status_code == 200
    body = response.json()
    active = [b for b in many if b.status is not BackupStatus.in_trash]
    assert body["success"] is True
    assert body["meta"] == {"current_page": 1, "per_page": 10, "total": 200, "last_page": 20}
    expected = sorted(active, key=lambda b: (b.backup_date, b.id), reverse=True)[:10]
    assert [b["id"] for b in body["data"]] == [b.id for b in expected]
    first = body["data"][0]
    assert "path" not in first
    for field in (
        "id", "filename", "unique_identifier", "file_size", "status", "error_message",
        "backup_date", "trashed_at", "completed_at", "created_by", "created_at", "updated_at",
        "compression", "checksum_sha256", "duration_ms", "trigger",
    ):  # fmt: skip
        assert field in first


async def test_pages_cover_every_row_once(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup]
) -> None:
    seen: list[int] = []
    for page in range(1, 21):
        body = (await admin_client.get(BACKUPS, params={"page": page})).json()
        assert body["meta"]["current_page"] == page
        seen.extend(b["id"] for b in body["data"])
    assert len(seen) == len(set(seen)) == 200
    beyond = (await admin_client.get(BACKUPS, params={"page": 21})).json()
    assert beyond["data"] == [] and beyond["meta"]["total"] == 200
    big = (await admin_client.get(BACKUPS, params={"per_page": 100})).json()
    assert len(big["data"]) == 100 and big["meta"]["last_page"] == 2


def _key(sort: str) -> tuple[Any, bool]:
    return {
        "latest": (lambda b: (b.backup_date, b.id), True),
        "oldest": (lambda b: (b.backup_date, b.id), False),
        "name_asc": (lambda b: (b.filename, b.id), False),
        "name_desc": (lambda b: (b.filename, b.id), True),
        "size_asc": (lambda b: (b.file_size, b.id), False),
        "size_desc": (lambda b: (b.file_size, b.id), True),
    }[sort]


@pytest.mark.parametrize(
    "sort", ["latest", "oldest", "name_asc", "name_desc", "size_asc", "size_desc"]
)
async def test_each_sort_orders_the_whole_list(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup], sort: str
) -> None:
    items = await all_pages(admin_client, sort=sort)
    key, reverse = _key(sort)
    active = [b for b in many if b.status is not BackupStatus.in_trash]
    assert [i["id"] for i in items] == [b.id for b in sorted(active, key=key, reverse=reverse)]


@pytest.mark.parametrize("status", ["completed", "pending", "in_progress", "failed"])
async def test_status_filter(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup], status: str
) -> None:
    items = await all_pages(admin_client, status=status)
    assert items and {i["status"] for i in items} == {status}
    assert len(items) == sum(1 for b in many if b.status.value == status)


async def test_trash_view_shows_only_trashed_backups(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup]
) -> None:
    items = await all_pages(admin_client, view="trash")
    assert len(items) == 40 and {i["status"] for i in items} == {"in_trash"}
    assert all(i["trashed_at"] for i in items)
    active = await all_pages(admin_client, view="active")
    assert "in_trash" not in {i["status"] for i in active}


@pytest.fixture
async def awkward_names(database: Database) -> list[DatabaseBackup]:
    names = [
        "backup_100%_done.sql.zst",
        "backup_1000_done.sql.zst",
        "backup_a_b.sql.zst",
        "backupXaYb.sql.zst",
        "backup_o'brien\".sql.zst",
        "backup_back\\slash.sql.zst",
    ]
    return await insert_backups(database, [{"filename": n} for n in names])


@pytest.mark.parametrize(
    "search,expected",
    [
        ("100%", ["backup_100%_done.sql.zst"]),
        ("%", ["backup_100%_done.sql.zst"]),
        ("a_b", ["backup_a_b.sql.zst"]),
        ("p_X", []),
        ("o'brien\"", ["backup_o'brien\".sql.zst"]),
        ("back\\slash", ["backup_back\\slash.sql.zst"]),
        ("' OR 1=1 --", []),
        ("'; DROP TABLE database_backups; --", []),
        ("XAYB", ["backupXaYb.sql.zst"]),
        ("日本語", []),
    ],
)
async def test_search_is_a_literal_match(
    admin_client: httpx.AsyncClient,
    awkward_names: list[DatabaseBackup],
    search: str,
    expected: list[str],
) -> None:
    response = await admin_client.get(BACKUPS, params={"search": search})
    assert response.status_code == 200, response.text
    assert sorted(b["filename"] for b in response.json()["data"]) == sorted(expected)


async def test_search_finds_the_unique_identifier(
    admin_client: httpx.AsyncClient, awkward_names: list[DatabaseBackup]
) -> None:
    target = awkward_names[3]
    response = await admin_client.get(BACKUPS, params={"search": target.unique_identifier[10:20]})
    assert [b["id"] for b in response.json()["data"]] == [target.id]


async def test_the_api_keeps_a_search_total_for_the_next_page(
    app: FastAPI, admin_client: httpx.AsyncClient, awkward_names: list[DatabaseBackup]
) -> None:
    database: Database = app.state.database
    totals = database.session_info[TOTALS_KEY]
    assert isinstance(totals, SearchTotals) and len(totals) == 0
    first = await admin_client.get(BACKUPS, params={"search": "a", "per_page": 1})
    second = await admin_client.get(BACKUPS, params={"search": "a", "per_page": 1, "page": 2})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert len(totals) == 1
    assert first.json()["meta"]["total"] == second.json()["meta"]["total"] >= 2


async def test_search_length_is_capped(admin_client: httpx.AsyncClient) -> None:
    assert (await admin_client.get(BACKUPS, params={"search": "x" * 200})).status_code == 200
    body = assert_failure(await admin_client.get(BACKUPS, params={"search": "x" * 201}), 422)
    assert "search" in body["errors"]
    assert_failure(await admin_client.get(BACKUPS, params={"search": "%" * 10_000}), 422)
    assert_failure(await admin_client.get(BACKUPS, params={"search": "a\x00b"}), 422)


@pytest.mark.parametrize(
    "params,field",
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "99999999999999999999999"}, "page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "101"}, "per_page"),
        ({"per_page": "10000"}, "per_page"),
        ({"sort": "bogus"}, "sort"),
        ({"sort": "name_asc; DROP TABLE database_backups"}, "sort"),
        ({"sort": "filename"}, "sort"),
        ({"status": "in_trash"}, "status"),
        ({"status": "completed' OR '1'='1"}, "status"),
        ({"view": "all"}, "view"),
        ({"view": ""}, "view"),
    ],
)
async def test_bad_list_parameters_are_422(
    admin_client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    body = assert_failure(await admin_client.get(BACKUPS, params=params), 422)
    assert field in body["errors"]
    assert body["message"].startswith(f"Invalid {field}")
