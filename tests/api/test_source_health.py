"""Health per source where it shows: ``/health`` (a ``sources`` check and section), the sources
API (``health`` on each source), and ``/metrics`` (per-source series, parsed with
prometheus_client's own parser)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from app.backups.models import BackupStatus
from app.db import Database
from tests.api.conftest import insert_backups

SOURCES = "/admin/api/sources"


async def add_source(
    client: httpx.AsyncClient, name: str, *, schedule: str | None = "0 * * * *"
) -> int:
    response = await client.post(
        SOURCES,
        json={
            "name": name,
            "url": "mysql://u:p@127.0.0.1:3306/",
            "databases": ["shop", "crm"],
            "schedule": schedule,
        },
    )
    assert response.status_code == 201, response.text
    source_id: int = response.json()["data"]["id"]
    return source_id


async def backups(database: Database, *rows: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    made = []
    for row in rows:
        ago = row.pop("ago")
        made.append({"target_database": "shop", "duration_ms": 1500, **row})
        made[-1]["backup_date"] = now - ago
    await insert_backups(database, made)


async def seed(admin_client: httpx.AsyncClient, database: Database) -> dict[str, int]:
    """healthy (two databases), broken (its last backup failed), stale (hourly, 3 h ago)."""
    ids = {name: await add_source(admin_client, name) for name in ("healthy", "broken", "stale")}
    minutes = timedelta(minutes=1)
    await backups(
        database,
        {"source_id": ids["healthy"], "ago": 20 * minutes, "file_size": 4096},
        {"source_id": ids["healthy"], "ago": 10 * minutes, "file_size": 5000},
        {
            "source_id": ids["healthy"],
            "ago": 15 * minutes,
            "file_size": 777,
            "target_database": "crm",
            "duration_ms": 250,
        },
        {"source_id": ids["broken"], "ago": 40 * minutes, "file_size": 2000},
        {
            "source_id": ids["broken"],
            "ago": 5 * minutes,
            "status": BackupStatus.failed,
            "error_message": "mariadb-dump: Got error: 1045: Access denied",
        },
        {"source_id": ids["stale"], "ago": 180 * minutes, "file_size": 3000},
    )
    return ids


async def test_sources_api_shows_each_sources_health(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    ids = await seed(admin_client, database)
    listed = (await admin_client.get(SOURCES)).json()["data"]
    health = {s["name"]: s["health"] for s in listed}
    assert health["healthy"] == {"status": "ok", "reasons": []}
    assert health["broken"]["status"] == "failing"
    [reason] = health["broken"]["reasons"]
    assert reason["code"] == "last_backup_failed" and reason["severity"] == "failing"
    assert reason["database"] == "shop" and "Access denied" in reason["message"]
    assert health["stale"]["status"] == "warning"
    assert [r["code"] for r in health["stale"]["reasons"]] == ["stale"]
    one = (await admin_client.get(f"{SOURCES}/{ids['broken']}")).json()["data"]
    assert one["health"] == health["broken"]
    assert "u:p@" not in str(listed)

    # A success brings the broken source back to ok.
    await backups(database, {"source_id": ids["broken"], "ago": timedelta(0)})
    one = (await admin_client.get(f"{SOURCES}/{ids['broken']}")).json()["data"]
    assert one["health"] == {"status": "ok", "reasons": []}


async def test_health_has_a_sources_section_and_is_degraded_by_them(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, database: Database
) -> None:
    await add_source(admin_client, "healthy")
    body = (await client.get("/health")).json()["data"]
    assert body["checks"]["sources"]["status"] == "ok"
    assert body["checks"]["sources"]["critical"] is False
    # The app's own "default" source (DBKEEP_TARGET_URL) is one too.
    assert sorted((s["name"], s["status"]) for s in body["sources"]) == [
        ("default", "ok"),
        ("healthy", "ok"),
    ]

    healthy = next(s["id"] for s in body["sources"] if s["name"] == "healthy")
    assert (await admin_client.delete(f"{SOURCES}/{healthy}")).status_code == 200
    await seed(admin_client, database)
    response = await client.get("/health")
    body = response.json()["data"]
    # Part 1's shape is kept: status, checks, next_backup_at; "sources" is added.
    assert {"status", "checks", "next_backup_at", "sources"} <= set(body)
    check = body["checks"]["sources"]
    assert check["status"] == "fail"
    assert check["details"] == {"ok": 2, "warning": 1, "failing": 1}
    assert "broken" in check["message"] and "stale" in check["message"]
    by_name = {s["name"]: s for s in body["sources"]}
    assert by_name["broken"]["status"] == "failing"
    assert by_name["stale"]["reasons"][0]["code"] == "stale"
    # A failing source makes dbkeep degraded, never unhealthy by itself (no 503 for it).
    assert body["status"] in {"degraded", "unhealthy"}
    if body["status"] == "unhealthy":
        assert "sources" not in response.json()["message"]
    else:
        assert response.status_code == 200


def scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the exposition: name -> {sorted labels: value}."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


async def test_metrics_per_source_series(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, database: Database
) -> None:
    ids = await seed(admin_client, database)
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = scrape(response.text)

    assert samples["dbkeep_source_health"] == {
        (("source", "default"),): 0.0,
        (("source", "healthy"),): 0.0,
        (("source", "stale"),): 1.0,
        (("source", "broken"),): 2.0,
    }
    size = samples["dbkeep_source_last_backup_size_bytes"]
    assert size == {
        (("database", "shop"), ("source", "healthy")): 5000.0,
        (("database", "crm"), ("source", "healthy")): 777.0,
        (("database", "shop"), ("source", "broken")): 2000.0,
        (("database", "shop"), ("source", "stale")): 3000.0,
    }
    duration = samples["dbkeep_source_last_backup_duration_seconds"]
    assert duration[(("database", "crm"), ("source", "healthy"))] == 0.25
    assert duration[(("database", "shop"), ("source", "healthy"))] == 1.5
    success = samples["dbkeep_source_last_success_timestamp_seconds"]
    now = datetime.now(UTC).timestamp()
    assert set(success) == set(size)
    stale_at = success[(("database", "shop"), ("source", "stale"))]
    assert now - 3 * 3600 - 60 < stale_at < now - 3 * 3600 + 60
    failed = samples["dbkeep_source_last_backup_failed"]
    assert failed[(("database", "shop"), ("source", "broken"))] == 1.0
    assert failed[(("database", "shop"), ("source", "healthy"))] == 0.0
    # Bounded cardinality: only source and database labels, never an id.
    for name, series in samples.items():
        if name.startswith("dbkeep_source_"):
            assert all({k for k, _ in key} <= {"source", "database"} for key in series)

    # A deleted source's series go away.
    assert (await admin_client.delete(f"{SOURCES}/{ids['stale']}")).status_code in {200, 409}
    listed = {s["name"] for s in (await admin_client.get(SOURCES)).json()["data"]}
    samples = scrape((await client.get("/metrics")).text)
    assert {dict(k)["source"] for k in samples["dbkeep_source_health"]} == listed


async def test_sources_list_statements_do_not_grow_with_sources(
    app: FastAPI, admin_client: httpx.AsyncClient, database: Database
) -> None:
    async def statements() -> int:
        executed: list[str] = []

        def count(*args: Any) -> None:
            executed.append(args[2])

        engine = app.state.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = await admin_client.get(SOURCES)
            assert response.status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(executed)

    async def add(names: list[str]) -> None:
        for name in names:
            source_id = await add_source(admin_client, name)
            await backups(
                database,
                {"source_id": source_id, "ago": timedelta(minutes=30)},
                {
                    "source_id": source_id,
                    "ago": timedelta(minutes=3),
                    "status": BackupStatus.failed,
                },
            )

    await add(["a0", "a1"])
    few = await statements()
    await add([f"b{i}" for i in range(10)])
    many = await statements()
    assert few == many


async def test_the_example_alert_rules_use_series_that_exist(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, database: Database
) -> None:
    await seed(admin_client, database)
    exposed = set(scrape((await client.get("/metrics")).text))
    rules_file = Path(__file__).parents[2] / "docs" / "prometheus-alerts.yml"
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 4
    for rule in rules:
        assert rule["alert"] and rule["annotations"]["summary"]
        for name in re.findall(r"dbkeep_[a-z_]+", rule["expr"]):
            assert name in exposed, (rule["alert"], name)
