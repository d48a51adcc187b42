"""The backup list, its CSV export and the statistics by source and database: the new fields,
the filters combined with status, search, sort and view, their totals kept apart, bad values."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.backups.models import BackupStatus, DatabaseBackup
from app.db import Database
from tests.api.conftest import assert_failure, insert_backups
from tests.api.test_backups_list import all_pages

BACKUPS = "/admin/api/database-backups"
SOURCES = "/admin/api/sources"
STATUSES = [
    BackupStatus.completed,
    BackupStatus.failed,
    BackupStatus.completed,
    BackupStatus.pending,
    BackupStatus.in_trash,
]


@dataclass(frozen=True)
class Seeded:
    alpha: int
    beta: int
    rows: list[DatabaseBackup]


async def add_source(client: httpx.AsyncClient, name: str) -> int:
    response = await client.post(
        SOURCES, json={"name": name, "url": "mysql://u:p@127.0.0.1:3306/", "databases": ["*"]}
    )
    assert response.status_code == 201, response.text
    source_id: int = response.json()["data"]["id"]
    return source_id


@pytest.fixture
async def seeded(admin_client: httpx.AsyncClient, database: Database) -> Seeded:
    """Two sources with two databases each (and a few backups of no source), every status."""
    alpha, beta = await add_source(admin_client, "alpha"), await add_source(admin_client, "beta")
    base = datetime(2026, 2, 1, tzinfo=UTC)
    plan = [(alpha, "shop", 12), (alpha, "crm", 7), (beta, "shop", 9), (None, "shop", 4)]
    rows: list[dict[str, Any]] = []
    for source_id, db, count in plan:
        for i in range(count):
            n = len(rows)
            rows.append(
                {
                    "source_id": source_id,
                    "target_database": db,
                    "status": STATUSES[n % len(STATUSES)],
                    "backup_date": base + timedelta(hours=(n * 17) % 64),
                    "file_size": 1000 + (n * 31) % 97,
                    "filename": f"{db}_{source_id}_{i:02d}{'_x' if i % 3 == 0 else ''}.sql.zst",
                }
            )
    return Seeded(alpha, beta, await insert_backups(database, rows))


def expected(
    rows: list[DatabaseBackup],
    *,
    source_id: int | None = None,
    database: str | None = None,
    status: str | None = None,
    view: str = "active",
    search: str | None = None,
) -> list[DatabaseBackup]:
    def keep(b: DatabaseBackup) -> bool:
        trashed = b.status is BackupStatus.in_trash
        shown = b.status_before_trash if trashed else b.status
        return (
            (trashed if view == "trash" else not trashed)
            and (status is None or shown == status)
            and (source_id is None or b.source_id == source_id)
            and (database is None or b.target_database == database)
            and (search is None or search in b.filename)
        )

    return [b for b in rows if keep(b)]


async def test_each_backup_names_its_source_and_database(
    admin_client: httpx.AsyncClient, seeded: Seeded
) -> None:
    items = await all_pages(admin_client)
    by_id = {b.id: b for b in seeded.rows}
    names = {seeded.alpha: "alpha", seeded.beta: "beta", None: None}
    assert len(items) == len(expected(seeded.rows))
    for item in items:
        row = by_id[item["id"]]
        assert item["source_id"] == row.source_id
        assert item["source_name"] == names[row.source_id]
        assert item["database_name"] == item["target_database"] == row.target_database
    one = next(b for b in seeded.rows if b.source_id == seeded.beta)
    detail = (await admin_client.get(f"{BACKUPS}/{one.id}")).json()["data"]
    assert (detail["source_id"], detail["source_name"], detail["database_name"]) == (
        seeded.beta,
        "beta",
        "shop",
    )


@pytest.mark.parametrize(
    "filters",
    [
        {"source": "alpha"},
        {"source": "beta"},
        {"database": "crm"},
        {"source": "alpha", "database": "shop"},
        {"source": "alpha", "status": "completed"},
        {"source": "alpha", "view": "trash"},
        {"source": "beta", "view": "trash", "status": "completed"},
        {"database": "shop", "status": "failed", "sort": "size_asc"},
        {"source": "alpha", "search": "_x", "sort": "name_desc"},
        {"source": "alpha", "database": "crm", "search": "crm", "sort": "oldest"},
        {"database": "shop", "search": "_x", "view": "trash"},
    ],
)
async def test_filters_by_source_and_database_combine_with_the_others(
    admin_client: httpx.AsyncClient, seeded: Seeded, filters: dict[str, str]
) -> None:
    params = dict(filters)
    source = params.pop("source", None)
    if source is not None:
        params["source_id"] = str(seeded.alpha if source == "alpha" else seeded.beta)
    sort = params.get("sort", "latest")
    items = await all_pages(admin_client, **params)
    want = expected(
        seeded.rows,
        source_id=int(params["source_id"]) if "source_id" in params else None,
        database=params.get("database"),
        status=params.get("status"),
        view=params.get("view", "active"),
        search=params.get("search"),
    )
    key = {
        "latest": (lambda b: (b.backup_date, b.id), True),
        "oldest": (lambda b: (b.backup_date, b.id), False),
        "name_desc": (lambda b: (b.filename, b.id), True),
        "size_asc": (lambda b: (b.file_size, b.id), False),
    }[sort]
    assert want, "each case must match something"
    assert [i["id"] for i in items] == [b.id for b in sorted(want, key=key[0], reverse=key[1])]
    page = (await admin_client.get(BACKUPS, params={**params, "per_page": 3})).json()
    assert page["meta"]["total"] == len(want)
    assert page["meta"]["last_page"] == -(-len(want) // 3)


async def test_an_unknown_source_is_an_empty_page(
    admin_client: httpx.AsyncClient, seeded: Seeded
) -> None:
    response = await admin_client.get(BACKUPS, params={"source_id": 2**62})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == [] and body["meta"]["total"] == 0 and body["meta"]["last_page"] == 1
    stats = (await admin_client.get(f"{BACKUPS}/statistics", params={"source_id": 2**62})).json()
    assert stats["data"]["total_backups"] == 0 and stats["data"]["latest_backup"] is None


async def test_kept_totals_never_serve_another_source_or_database(
    admin_client: httpx.AsyncClient, seeded: Seeded, database: Database
) -> None:
    async def total(**params: Any) -> int:
        response = await admin_client.get(BACKUPS, params={**params, "per_page": 1})
        assert response.status_code == 200, response.text
        value: int = response.json()["meta"]["total"]
        return value

    rows = seeded.rows
    for search in (None, "_x"):
        extra = {"search": search} if search else {}
        alpha = await total(source_id=seeded.alpha, **extra)
        beta = await total(source_id=seeded.beta, **extra)
        crm = await total(database="crm", **extra)
        assert alpha == len(expected(rows, source_id=seeded.alpha, search=search))
        assert beta == len(expected(rows, source_id=seeded.beta, search=search))
        assert crm == len(expected(rows, database="crm", search=search))
        assert len({alpha, beta, crm}) == 3
        # Asked again (now from the kept totals), each still has its own.
        assert await total(source_id=seeded.alpha, **extra) == alpha
        assert await total(source_id=seeded.beta, **extra) == beta

    # A backup moving to another source or database changes the kept totals' version.
    moved = next(b for b in rows if b.source_id == seeded.alpha and b.status.value == "completed")
    before = await total(source_id=seeded.alpha)
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.id == moved.id)
            .values(source_id=seeded.beta, target_database="crm")
        )
        await session.commit()
    assert await total(source_id=seeded.alpha) == before - 1
    assert await total(source_id=seeded.beta, database="crm") == 1

    # A source deleted with its backups kept: they belong to no source any more.
    assert await total(source_id=seeded.beta) > 0
    async with database.sessionmaker() as session:  # a running backup would refuse the delete
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.status == BackupStatus.pending)
            .values(status=BackupStatus.failed)
        )
        await session.commit()
    deleted = await admin_client.delete(f"{SOURCES}/{seeded.beta}")
    assert deleted.status_code == 200, deleted.text
    assert await total(source_id=seeded.beta) == 0


async def test_statistics_of_a_source_match_its_list(
    admin_client: httpx.AsyncClient, seeded: Seeded
) -> None:
    async def total(**params: Any) -> int:
        body = (await admin_client.get(BACKUPS, params={**params, "per_page": 1})).json()
        value: int = body["meta"]["total"]
        return value

    for scope in (
        {"source_id": seeded.alpha},
        {"source_id": seeded.beta},
        {"database": "crm"},
        {"source_id": seeded.alpha, "database": "shop"},
    ):
        response = await admin_client.get(f"{BACKUPS}/statistics", params=scope)
        assert response.status_code == 200, response.text
        stats = response.json()["data"]
        trashed = await total(**scope, view="trash")
        assert stats["trashed_backups"] == trashed
        assert stats["total_backups"] == await total(**scope) + trashed
        assert stats["completed_backups"] == await total(**scope, status="completed")
        assert stats["failed_backups"] == await total(**scope, status="failed")
        completed = await all_pages(admin_client, **scope, status="completed")
        assert stats["latest_backup"]["id"] == completed[0]["id"]
        assert stats["oldest_backup"]["id"] == completed[-1]["id"]
        assert stats["average_size"] == round(
            sum(b["file_size"] for b in completed) / len(completed)
        )
    everything = (await admin_client.get(f"{BACKUPS}/statistics")).json()["data"]
    assert everything["total_backups"] == len(seeded.rows)


async def test_the_csv_export_filters_by_source_and_database(
    admin_client: httpx.AsyncClient, seeded: Seeded
) -> None:
    response = await admin_client.get(
        f"{BACKUPS}/export.csv", params={"source_id": seeded.alpha, "database": "crm"}
    )
    assert response.status_code == 200, response.text
    records = list(csv.DictReader(io.StringIO(response.text)))
    want = expected(seeded.rows, source_id=seeded.alpha, database="crm")
    assert sorted(int(r["id"]) for r in records) == sorted(b.id for b in want)
    assert {(r["source_id"], r["source"], r["database"]) for r in records} == {
        (str(seeded.alpha), "alpha", "crm")
    }
    unknown = await admin_client.get(f"{BACKUPS}/export.csv", params={"source_id": 2**62})
    assert unknown.status_code == 200 and len(unknown.text.strip().splitlines()) == 1


@pytest.mark.parametrize("path", ["", "/statistics", "/export.csv"])
@pytest.mark.parametrize(
    "params,field",
    [
        ({"source_id": "0"}, "source_id"),
        ({"source_id": "-1"}, "source_id"),
        ({"source_id": "x"}, "source_id"),
        ({"source_id": "1.5"}, "source_id"),
        ({"source_id": "+1"}, "source_id"),
        ({"source_id": "99999999999999999999"}, "source_id"),
        ({"database": "shop'; DROP TABLE x; --"}, "database"),
        ({"database": 'sh"op'}, "database"),
        ({"database": "`shop`"}, "database"),
        ({"database": "-shop"}, "database"),
        ({"database": ""}, "database"),
        ({"database": "d" * 65}, "database"),
    ],
)
async def test_bad_source_and_database_values_are_422(
    admin_client: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    body = assert_failure(await admin_client.get(f"{BACKUPS}{path}", params=params), 422)
    assert field in body["errors"]
