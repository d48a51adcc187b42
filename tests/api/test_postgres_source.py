"""A postgresql source end to end: created through /admin/api/sources, tested, backed up by
the backup runner (the worker's path), restored through the API by the restore runner (safety
backup first); a restore that fails is rolled back from the safety backup."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup, RestoreStatus
from app.backups.restores import RestoreRunner
from app.backups.runner import BackupRunner
from app.config import Settings
from app.db import Database
from app.engines.registry import EngineRegistry
from app.engines.routing import RoutingEngine
from app.storage import get_storage
from tests import support
from tests.engines.pg_support import (
    create_database,
    drop_database,
    fingerprint,
    load_fixture,
    pg_sql,
    pg_url,
)

SOURCES = "/admin/api/sources"
BACKUPS = "/admin/api/database-backups"


def runners(database: Database, settings: Settings) -> tuple[BackupRunner, RestoreRunner]:
    engine = RoutingEngine(EngineRegistry(settings))
    storage = get_storage(settings)
    backups = BackupRunner(database=database, settings=settings, engine=engine, storage=storage)
    restores = RestoreRunner(
        database=database, settings=settings, engine=engine, storage=storage,
        backup_runner=backups,
    )  # fmt: skip
    return backups, restores


async def create_source(client: httpx.AsyncClient, name: str, url: str) -> int:
    response = await client.post(SOURCES, json={"name": name, "engine": "postgresql", "url": url})
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def back_up(
    client: httpx.AsyncClient, backups: BackupRunner, source_id: int
) -> DatabaseBackup:
    response = await client.post(f"{SOURCES}/{source_id}/backups")
    assert response.status_code == 202, response.text
    (queued,) = response.json()["data"]
    done = await backups.run_backup(int(queued["id"]))
    assert done.status is BackupStatus.completed, done.error_message
    return done


async def test_a_postgresql_source_is_backed_up_and_restored_through_the_api(
    admin_client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    name = support.unique_name("dbkeep_pg_api")
    create_database(name)
    try:
        load_fixture(name)
        secret = "never-shown-" + support.unique_name("pw")
        source_id = await create_source(
            admin_client, "pgshop", pg_url(name, password=secret, query="sslmode=disable")
        )
        shown = await admin_client.get(f"{SOURCES}/{source_id}")
        assert shown.status_code == 200 and secret not in shown.text
        assert shown.json()["data"]["engine"] == "postgresql"

        tested = await admin_client.post(f"{SOURCES}/{source_id}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["data"]["ok"] is True, tested.text
        assert name in tested.text and "PostgreSQL" in tested.text and secret not in tested.text

        backups, restores = runners(database, settings)
        before = fingerprint(name)
        done = await back_up(admin_client, backups, source_id)
        assert done.target_database == name and (done.raw_size or 0) > 0

        pg_sql("DELETE FROM people; SELECT nextval('sales.invoice_no');", database=name)
        response = await admin_client.post(f"{BACKUPS}/{done.id}/restore", json={})
        assert response.status_code == 202, response.text
        restored = await restores.run_restore(int(response.json()["data"]["id"]))
        assert restored.status is RestoreStatus.completed, restored.error_message
        assert fingerprint(name) == before
        async with database.sessionmaker() as session:
            triggers = (await session.scalars(select(DatabaseBackup.trigger))).all()
        assert BackupTrigger.pre_restore in triggers  # the safety backup came first
    finally:
        drop_database(name)


async def test_a_failed_postgresql_restore_rolls_back_from_the_safety_backup(
    admin_client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """The backup's objects belong to postgres; the target source's account may create
    databases but not give objects to postgres, so pg_restore stops (--exit-on-error) after
    the database was replaced: the safety backup brings the target back as it was."""
    source_db = support.unique_name("dbkeep_pg_from")
    target_db = support.unique_name("dbkeep_pg_into")
    role = support.unique_name("dbkeep_pg_owner")
    create_database(source_db)
    pg_sql(f"CREATE ROLE {role} LOGIN CREATEDB; CREATE DATABASE {target_db} OWNER {role};")
    try:
        load_fixture(source_db)
        pg_sql(
            f"SET ROLE {role}; CREATE TABLE kept (v text); INSERT INTO kept VALUES ('mine');",
            database=target_db,
        )
        before = fingerprint(target_db)
        source_id = await create_source(admin_client, "pgfrom", pg_url(source_db))
        target_id = await create_source(admin_client, "pginto", pg_url(target_db, user=role))
        backups, restores = runners(database, settings)
        done = await back_up(admin_client, backups, source_id)
        response = await admin_client.post(
            f"{BACKUPS}/{done.id}/restore", json={"target_source_id": target_id}
        )
        assert response.status_code == 202, response.text
        result = await restores.run_restore(int(response.json()["data"]["id"]))
        assert result.status is RestoreStatus.rolled_back, result.error_message
        assert result.error_message and "pg_restore" in result.error_message
        assert fingerprint(target_db) == before
    finally:
        drop_database(source_db)
        drop_database(target_db)
        pg_sql(f"DROP ROLE IF EXISTS {role}")
