"""A SQLite source through the API: added, tested, backed up, restored (with its safety backup),
refused while another process writes; the jobs run here, in this process, as a worker runs them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.backups.models import BackupStatus, RestoreStatus
from app.backups.restores import RestoreRunner
from app.bootstrap import open_bootstrap
from app.config import Settings
from tests.api.conftest import (  # noqa: F401  (fixtures)
    admin_client,
    admin_user,
    app,
    make_user,
    password_hash,
)
from tests.engines.sqlite_support import make_hard_database, snapshot

SOURCES = "/admin/api/sources"
BACKUPS = "/admin/api/database-backups"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    where = tmp_path / "app-data"
    where.mkdir()
    return where


async def run_backup(settings: Settings, backup_id: int) -> Any:
    async with open_bootstrap(settings, sync=False) as runtime:
        return await runtime.backup_runner().run_backup(backup_id)


async def run_restore(settings: Settings, restore_id: int) -> Any:
    async with open_bootstrap(settings, sync=False) as runtime:
        return await RestoreRunner.from_runtime(runtime).run_restore(restore_id)


async def test_a_sqlite_source_is_added_backed_up_and_restored(
    admin_client: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
    data_dir: Path,
) -> None:
    path = make_hard_database(data_dir / "shop.db")
    url = f"sqlite://{path}"
    created = await admin_client.post(
        SOURCES, json={"name": "shop-file", "engine": "sqlite", "url": url}
    )
    assert created.status_code == 201, created.text
    source = created.json()["data"]
    assert (source["engine"], source["databases"], source["url"]) == ("sqlite", ["shop"], url)

    tested = await admin_client.post(f"{SOURCES}/{source['id']}/test")
    assert tested.status_code == 200, tested.text
    report = tested.json()["data"]
    assert report["ok"] is True, report
    assert sqlite3.sqlite_version in report["server_version"]
    assert "journal mode wal" in report["server_version"]
    assert report["databases"] == ["shop"]

    queued = await admin_client.post(f"{SOURCES}/{source['id']}/backups")
    assert queued.status_code == 202, queued.text
    [backup] = queued.json()["data"]
    assert backup["database_name"] == "shop"
    done = await run_backup(settings, backup["id"])
    assert done.status is BackupStatus.completed, done.error_message
    shown = (await admin_client.get(f"{BACKUPS}/{backup['id']}")).json()["data"]
    assert shown["status"] == "completed" and shown["file_size"] > 0

    expected = snapshot(path)
    connection = sqlite3.connect(path)
    connection.executescript("DELETE FROM orders; DROP VIEW big_spenders; PRAGMA user_version = 1;")
    connection.close()
    assert snapshot(path) != expected

    asked = await admin_client.post(f"{BACKUPS}/{backup['id']}/restore", json={})
    assert asked.status_code == 202, asked.text
    operation = await run_restore(settings, asked.json()["data"]["id"])
    assert operation.status is RestoreStatus.completed, operation.error_message
    assert operation.safety_backup_id is not None  # the file as it was, backed up first
    assert snapshot(path) == expected
    assert sorted(p.name for p in data_dir.iterdir() if "dbkeep" in p.name) == []
    safety = (await admin_client.get(f"{BACKUPS}/{operation.safety_backup_id}")).json()["data"]
    assert safety["status"] == "completed" and safety["trigger"] == "pre_restore"


HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
"""


async def test_a_restore_while_another_process_writes_fails_and_leaves_the_file(
    admin_client: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
    data_dir: Path,
) -> None:
    path = make_hard_database(data_dir / "busy.db")
    created = await admin_client.post(
        SOURCES, json={"name": "busy-file", "engine": "sqlite", "url": f"sqlite://{path}"}
    )
    source = created.json()["data"]
    [backup] = (await admin_client.post(f"{SOURCES}/{source['id']}/backups")).json()["data"]
    assert (await run_backup(settings, backup["id"])).status is BackupStatus.completed
    before = snapshot(path)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        asked = await admin_client.post(f"{BACKUPS}/{backup['id']}/restore", json={})
        assert asked.status_code == 202, asked.text
        operation = await run_restore(settings, asked.json()["data"]["id"])
    finally:
        child.communicate("\n", timeout=10)
    # Refused before anything: no safety backup, the file as it was.
    assert operation.status is RestoreStatus.failed
    assert operation.safety_backup_id is None
    assert "another process holds a write lock" in (operation.error_message or "")
    assert "it was not changed" in (operation.error_message or "")
    assert str(data_dir) not in (operation.error_message or "")
    assert snapshot(path) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "sqlite://relative/app.db"}, "url"),
        ({"url": "sqlite:///srv/../etc/app.db"}, "url"),
        ({"url": "sqlite:///srv/app/"}, "url"),
        ({"url": "sqlite:///srv/app.db", "databases": ["other"]}, "databases"),
        ({"url": "sqlite:///srv/app.db", "databases": ["*"]}, "databases"),
    ],
)
async def test_an_unusable_sqlite_source_is_refused(
    admin_client: httpx.AsyncClient,  # noqa: F811
    body: dict[str, Any],
    field: str,
) -> None:
    response = await admin_client.post(
        SOURCES, json={"name": "bad-file", "engine": "sqlite", **body}
    )
    assert response.status_code == 422, response.text
    answer = response.json()
    assert "/srv" not in response.text and "relative" not in response.text, answer
    assert (await admin_client.get(SOURCES)).json()["data"] == [] or all(
        s["name"] != "bad-file" for s in (await admin_client.get(SOURCES)).json()["data"]
    )
    assert field in response.text
