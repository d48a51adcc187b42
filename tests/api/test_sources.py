"""The sources API against the real MariaDB: CRUD with its checks, the connection test (server,
privileges, databases), back up now (one backup per database, system databases never), delete
(refused while busy; backups kept or deleted), and a password that never comes back."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from app.backups.models import BackupStatus, DatabaseBackup
from app.config import Settings
from app.db import Database
from app.sources.models import Source
from tests import support
from tests.api.conftest import BackupFactory, assert_failure

SOURCES = "/admin/api/sources"
BACKUPS = "/admin/api/database-backups"


@pytest.fixture
def account() -> Iterator[tuple[str, str]]:
    with support.mariadb_account("dbkeep_src") as account:
        yield account


@pytest.fixture
def second_database() -> Iterator[str]:
    with support.scratch_database() as name:
        yield name


url_of = support.account_url


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(SOURCES, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_a_source_is_added_with_its_url_masked_and_stored_encrypted(
    admin_client: httpx.AsyncClient,
    database: Database,
    account: tuple[str, str],
    target_database: str,
) -> None:
    user, password = account
    created = await create(
        admin_client,
        name="shop",
        url=url_of(account, target_database),
        schedule="30 2 * * *",
        timezone="Europe/Berlin",
        retention={"keep_daily": 7, "keep_weekly": 4},
    )
    assert created["url"] == (
        f"mysql://{user}:***@{support.MARIADB_HOST}:{support.MARIADB_PORT}/{target_database}"
    )
    assert created["databases"] == [target_database]  # the URL's database
    assert created["retention"]["keep_daily"] == 7
    assert created["retention"]["trash_after_days"] == 15
    assert created["next_run_at"] is not None and created["from_environment"] is False

    listed = (await admin_client.get(SOURCES)).json()["data"]
    names = [s["name"] for s in listed]
    assert names == sorted(names) and {"default", "shop"} <= set(names)
    one = (await admin_client.get(f"{SOURCES}/{created['id']}")).json()["data"]
    assert one["url"] == created["url"]

    # At rest: ciphertext, not the password.
    async with database.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT url FROM sources WHERE name = 'shop'"))
        ).scalar_one()
    assert password not in stored and user not in stored

    for body in (created, listed, one):
        assert password not in json.dumps(body)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "Bad Name"}, "name", "pattern"),
        ({"schedule": "61 * * * *"}, "schedule", "minute"),
        ({"schedule": "* * *"}, "schedule", "5 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "time zone"),
        ({"url": "ftp://host/db"}, "url", "scheme"),
        ({"databases": ["*", "shop"]}, "databases", "alone"),
        ({"databases": ["--result-file=/tmp/x"]}, "databases", "database name"),
        ({"retention": {"keep_daily": 0}}, "retention", "greater than"),
        ({"retention": {"keep_hourly": 3}}, "retention", "extra"),
        ({"enabled": "yes"}, "enabled", "bool"),
        ({"engine": "oracle"}, "engine", "mysql"),
        # A mysql:// URL for a postgresql source: the URL is what is wrong.
        ({"engine": "postgresql"}, "url", "use postgresql://"),
        ({"password": "x"}, "password", "extra"),
    ],
)
async def test_a_bad_source_is_refused_with_what_is_wrong(
    admin_client: httpx.AsyncClient,
    account: tuple[str, str],
    target_database: str,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    base: dict[str, Any] = {"name": "shop", "url": url_of(account, target_database)}
    response = await admin_client.post(SOURCES, json={**base, **body})
    failure = assert_failure(response, 422)
    said = json.dumps(failure).lower()
    assert field in said and words.lower() in said, failure
    assert account[1] not in response.text
    assert (await admin_client.get(SOURCES)).json()["data"][-1]["name"] != "shop"


async def test_names_are_unique_and_default_belongs_to_the_environment(
    admin_client: httpx.AsyncClient, account: tuple[str, str], target_database: str
) -> None:
    url = url_of(account, target_database)
    await create(admin_client, name="shop", url=url)
    assert_failure(await admin_client.post(SOURCES, json={"name": "shop", "url": url}), 409)
    assert_failure(await admin_client.post(SOURCES, json={"name": "default", "url": url}), 409)

    default = next(
        s for s in (await admin_client.get(SOURCES)).json()["data"] if s["name"] == "default"
    )
    assert default["from_environment"] is True
    assert_failure(await admin_client.patch(f"{SOURCES}/{default['id']}", json={"url": url}), 409)
    assert_failure(await admin_client.delete(f"{SOURCES}/{default['id']}"), 409)
    # Its schedule and retention are the operator's to change.
    changed = await admin_client.patch(
        f"{SOURCES}/{default['id']}", json={"schedule": None, "retention": {"keep_last": 3}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["schedule"] is None
    assert changed.json()["data"]["next_run_at"] is None


async def test_only_admins_reach_sources(
    client: httpx.AsyncClient, viewer_client: httpx.AsyncClient
) -> None:
    assert_failure(await client.get(SOURCES), 401)
    assert_failure(await viewer_client.get(SOURCES), 403)
    assert_failure(await viewer_client.post(SOURCES, json={"name": "x", "url": "mysql://h/d"}), 403)


async def test_the_connection_test_reports_server_privileges_and_databases(
    admin_client: httpx.AsyncClient,
    account: tuple[str, str],
    target_database: str,
    second_database: str,
) -> None:
    source = await create(admin_client, name="shop", url=url_of(account, target_database))
    report = (await admin_client.post(f"{SOURCES}/{source['id']}/test")).json()["data"]
    assert report["ok"] is True, report
    assert "MariaDB" in report["server_version"]
    assert {target_database, second_database} <= set(report["databases"])
    assert not {"mysql", "information_schema", "performance_schema", "sys"} & set(
        report["databases"]
    )
    assert report["missing_privileges"] == []
    assert report["dump_tool"] and report["client_tool"]


async def test_the_connection_test_names_missing_privileges_and_wrong_passwords(
    admin_client: httpx.AsyncClient, target_database: str
) -> None:
    with support.mariadb_account("dbkeep_ro", on=f"`{target_database}`.*", privileges="SELECT") as (
        user,
        password,
    ):
        limited = await create(
            admin_client, name="limited", url=url_of((user, password), target_database)
        )
        report = (await admin_client.post(f"{SOURCES}/{limited['id']}/test")).json()["data"]
        assert report["ok"] is False
        assert report["missing_privileges"] == ["SHOW VIEW", "TRIGGER", "EVENT"]
        assert "GRANT SHOW VIEW, TRIGGER, EVENT" in report["message"]

        wrong = await create(
            admin_client, name="wrong", url=url_of((user, "not-" + password), target_database)
        )
        response = await admin_client.post(f"{SOURCES}/{wrong['id']}/test")
        report = response.json()["data"]
        assert report["ok"] is False and "access denied" in report["message"]
        assert password not in response.text


async def test_back_up_now_makes_one_backup_per_database_never_a_system_one(
    admin_client: httpx.AsyncClient,
    database: Database,
    account: tuple[str, str],
    target_database: str,
    second_database: str,
) -> None:
    excluded = support.unique_name("dbkeep_excluded")
    support.admin_sql(f"CREATE DATABASE `{excluded}`")
    try:
        every = await create(
            admin_client, name="server", url=url_of(account), databases=["*"], exclude=[excluded]
        )
        response = await admin_client.post(f"{SOURCES}/{every['id']}/backups")
        assert response.status_code == 202, response.text
        queued = response.json()["data"]
    finally:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{excluded}`")
    names = [b["target_database"] for b in queued]
    assert {target_database, second_database} <= set(names)
    assert excluded not in names and len(names) == len(set(names))
    assert not {"mysql", "information_schema", "performance_schema", "sys"} & set(names)
    assert all(
        b["status"] == "pending"
        and b["filename"].startswith(f"backup_server_{b['target_database']}_")
        for b in queued
    )

    async with database.sessionmaker() as session:
        rows = list(await session.scalars(select(DatabaseBackup)))
    assert {r.source_id for r in rows} == {every["id"]}

    # One database of a source, by name; one it doesn't have is a 404.
    named = await create(
        admin_client, name="two", url=url_of(account), databases=[target_database, second_database]
    )
    one = await admin_client.post(
        f"{SOURCES}/{named['id']}/backups", json={"database": second_database}
    )
    assert one.status_code == 202, one.text
    assert [b["target_database"] for b in one.json()["data"]] == [second_database]
    assert_failure(
        await admin_client.post(f"{SOURCES}/{named['id']}/backups", json={"database": "nope"}),
        404,
    )


async def test_part_one_backups_belong_to_the_default_source(
    admin_client: httpx.AsyncClient, database: Database, target_database: str
) -> None:
    response = await admin_client.post(BACKUPS)
    assert response.status_code == 202, response.text
    async with database.sessionmaker() as session:
        default = await session.scalar(select(Source).where(Source.name == "default"))
        backup = await session.get(DatabaseBackup, response.json()["data"]["id"])
    assert default is not None and backup is not None
    assert backup.source_id == default.id and backup.target_database == target_database


async def test_a_busy_source_is_not_deleted_and_its_backups_stay_or_go_as_asked(
    admin_client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    make_backup: BackupFactory,
    account: tuple[str, str],
    target_database: str,
) -> None:
    kept_source = await create(admin_client, name="kept", url=url_of(account, target_database))
    gone_source = await create(admin_client, name="gone", url=url_of(account, target_database))
    kept = await make_backup(status=BackupStatus.completed, source_id=kept_source["id"])
    running = await make_backup(status=BackupStatus.in_progress, source_id=gone_source["id"])

    busy = assert_failure(await admin_client.delete(f"{SOURCES}/{gone_source['id']}"), 409)
    assert "pending or running" in busy["message"]

    response = await admin_client.delete(f"{SOURCES}/{kept_source['id']}")
    assert response.status_code == 200, response.text
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, kept.id)
    assert row is not None and row.source_id is None  # kept, without a source

    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, running.id)
        assert row is not None
        row.status = BackupStatus.completed
        await session.commit()
    path = settings.backup_dir / running.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    response = await admin_client.delete(
        f"{SOURCES}/{gone_source['id']}", params={"delete_backups": "true"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"deleted_backups": 1}
    assert not path.exists()
    async with database.sessionmaker() as session:
        assert await session.get(DatabaseBackup, running.id) is None
        assert await session.get(Source, gone_source["id"]) is None


async def test_no_source_password_reaches_a_log_line(
    admin_client: httpx.AsyncClient,
    account: tuple[str, str],
    target_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    source = await create(admin_client, name="shop", url=url_of(account, target_database))
    await admin_client.patch(f"{SOURCES}/{source['id']}", json={"url": url_of(account, "x")})
    await admin_client.post(f"{SOURCES}/{source['id']}/test")
    await admin_client.post(f"{SOURCES}/{source['id']}/backups")
    assert caplog.records
    assert account[1] not in caplog.text
