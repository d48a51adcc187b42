"""The schema is built by Alembic alone and matches the models on every supported backend."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.backups.search import include_name
from app.db import make_engine
from app.migrate import alembic_config
from app.models import Base
from tests import support


@pytest.fixture(params=["sqlite", "mysql", "postgres"])
def empty_store_url(request: pytest.FixtureRequest, tmp_path, mariadb_password: str):
    name = support.unique_name("dbkeep_mig")
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"
        return
    if request.param == "mysql":
        support.admin_sql(f"CREATE DATABASE `{name}`")
        yield (
            f"mysql+asyncmy://{support.TEST_USER}:{mariadb_password}@"
            f"{support.MARIADB_HOST}:{support.MARIADB_PORT}/{name}"
        )
        support.admin_sql(f"DROP DATABASE `{name}`")
        return
    from tests.conftest import _psql

    _psql(f'CREATE DATABASE "{name}"')
    yield f"{support.POSTGRES_URL}/{name}"
    _psql(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_upgrade_downgrade_upgrade_matches_models(empty_store_url: str) -> None:
    config = alembic_config(empty_store_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")

    engine = make_engine(empty_store_url)
    async with engine.connect() as conn:

        def diff(sync_conn):  # type: ignore[no-untyped-def]
            ctx = MigrationContext.configure(
                sync_conn, opts={"compare_type": True, "include_name": include_name}
            )
            return compare_metadata(ctx, Base.metadata)

        def backup_indexes(sync_conn):  # type: ignore[no-untyped-def]
            return {ix["name"] for ix in inspect(sync_conn).get_indexes("database_backups")}

        differences = await conn.run_sync(diff)
        if conn.dialect.name == "sqlite":
            differences = await _column_level_foreign_keys_checked(conn, differences)
        assert differences == []
        indexes = await conn.run_sync(backup_indexes)
    await engine.dispose()
    # The original's four indexes.
    assert {
        "ix_database_backups_status",
        "ix_database_backups_backup_date",
        "ix_database_backups_trashed_at",
        "ix_database_backups_status_backup_date",
    } <= indexes


async def _column_level_foreign_keys_checked(conn, differences):  # type: ignore[no-untyped-def]
    """SQLite can add a column with a foreign key only as a column constraint (``ADD COLUMN
    ... REFERENCES``; a table constraint would rebuild the table and drop its triggers), and
    SQLAlchemy's reflection reads a foreign key's name and ON DELETE from table constraints
    only: such a key shows as removed and added. Checked here with SQLite's own list instead."""
    column_level = {
        ("database_backups", "source_id", "sources", "SET NULL"),
        ("backup_restores", "target_source_id", "sources", "SET NULL"),
    }
    found = {
        (table, row[3], row[2], row[6])
        for table in ("database_backups", "backup_restores")
        for row in await conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})")
    }
    assert column_level <= found
    columns = {(t, c) for t, c, _, _ in column_level}

    def about_them(item: object) -> bool:
        if not (isinstance(item, tuple) and item[0] in {"remove_fk", "add_fk"}):
            return False
        key = item[1]
        return (key.table.name, key.column_keys[0]) in columns

    return [item for item in differences if not about_them(item)]
