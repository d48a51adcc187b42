"""Fixtures every test package shares: a migrated metadata store, a real MariaDB target, settings.

The metadata store is SQLite unless ``DBKEEP_TEST_METADATA`` is ``mysql`` or ``postgres``; it is
migrated once per session with Alembic and emptied before each test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from app.config import Settings
from app.db import Database
from app.migrate import upgrade_head
from app.models import Base
from tests import support

TEST_ENCRYPTION_KEY = "uXwFqJ6e5m8M3cK0Wn1m3gQ1mWbq3xjE0t8d5mN1c2Y="  # a Fernet key, tests only


@pytest.fixture(scope="session")
def mariadb_password() -> str:
    return support.ensure_test_account()


@pytest.fixture(scope="session")
def metadata_url(tmp_path_factory: pytest.TempPathFactory, mariadb_password: str) -> Iterator[str]:
    kind = os.environ.get("DBKEEP_TEST_METADATA", "sqlite")
    name = support.unique_name("dbkeep_meta")
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('meta')}/dbkeep.sqlite3"
    elif kind == "mysql":
        support.admin_sql(f"CREATE DATABASE `{name}`")
        url = (
            f"mysql+asyncmy://{support.TEST_USER}:{mariadb_password}@"
            f"{support.MARIADB_HOST}:{support.MARIADB_PORT}/{name}"
        )
    elif kind == "postgres":
        _psql(f'CREATE DATABASE "{name}"')
        url = f"{support.POSTGRES_URL}/{name}"
    else:
        raise ValueError(f"DBKEEP_TEST_METADATA={kind!r}: use sqlite, mysql or postgres")
    upgrade_head(url)
    yield url
    if kind == "mysql":
        support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")
    elif kind == "postgres":
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


@pytest.fixture
async def database(metadata_url: str) -> AsyncIterator[Database]:
    """The migrated metadata store, emptied before the test."""
    db = Database(metadata_url)
    async with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))
        # Deleting backups fires the counter triggers: empty the counters last.
        await conn.execute(delete(Base.metadata.tables["backup_counters"]))
    yield db
    await db.dispose()


@pytest.fixture
def target_database(mariadb_password: str) -> Iterator[str]:
    """A fresh, empty MariaDB database that the test may back up and restore."""
    name = support.unique_name("dbkeep_target")
    support.admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield name
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def settings(
    tmp_path: Path, metadata_url: str, target_database: str, mariadb_password: str
) -> Settings:
    return Settings(
        _env_file=None,
        env="test",
        database_url=metadata_url,
        redis_url=support.REDIS_URL,
        queue_name=support.unique_name("dbkeep:test:queue"),
        target_url=support.target_url(target_database, password=mariadb_password),
        backup_dir=tmp_path / "backups",
        var_dir=tmp_path / "var",
        secret_key="test-secret-key-" + "x" * 32,
        # One key for the test and every process it starts (CLI, workers), as in production.
        encryption_key=TEST_ENCRYPTION_KEY,
        schedule_enabled=False,
    )
