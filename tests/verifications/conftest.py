"""Verification test fixtures: a source with a verify_url, a completed backup of seeded data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.jobs.queue import ArqJobQueue
from app.keys import configure_encryption
from app.kit.encryption import install_key_ring
from app.kit.secret import Secret
from app.sources.models import Source
from app.storage import get_storage
from tests import support

SEED = r"""
CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), note TEXT, b BLOB);
INSERT INTO items (name, note, b) SELECT CONCAT('it''s, (', seq, ')'), REPEAT('x,(', seq % 9),
  UNHEX(SHA2(seq, 256)) FROM seq_1_to_5000;
CREATE TABLE tags (id INT PRIMARY KEY, label VARCHAR(40));
INSERT INTO tags VALUES (1, 'a\'b'), (2, '),(');
CREATE TABLE nothing (id INT PRIMARY KEY);
CREATE VIEW item_names AS SELECT name FROM items;
CREATE TRIGGER tags_upper BEFORE INSERT ON tags FOR EACH ROW SET NEW.label = UPPER(NEW.label);
"""


def scratch_databases() -> list[str]:
    out = support.admin_sql("SHOW DATABASES LIKE 'dbkeep\\_verify\\_%'")
    return [line for line in out.split() if line]


@pytest.fixture(autouse=True)
def keys(settings: Settings) -> Iterator[object]:
    ring = configure_encryption(settings)
    yield ring
    install_key_ring(None)


@pytest.fixture
def backups(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


@pytest.fixture
async def source(database: Database, target_database: str, mariadb_password: str) -> Source:
    url = support.target_url(target_database, password=mariadb_password)
    async with database.sessionmaker() as session:
        row = Source(
            name=support.unique_name("src").replace("_", "-"),
            engine="mysql",
            url=Secret(url),
            databases=[target_database],
            exclude=[],
            retention={},
            verify_url=Secret(support.target_url("mysql", password=mariadb_password)),
        )
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


@pytest.fixture
async def completed(
    database: Database, settings: Settings, backups: BackupRunner, source: Source,
    target_database: str,
) -> AsyncIterator[int]:  # fmt: skip
    support.admin_sql(SEED, database=target_database)
    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=get_storage(settings), queue=None,
            actor=Actor.system("test"),
        )  # fmt: skip
        backup = await service.create(source=source, database=target_database, enqueue=False)
    done = await backups.run_backup(backup.id)
    assert done.status is BackupStatus.completed, done.error_message
    assert done.manifest is not None
    yield done.id
    for name in scratch_databases():
        if name == f"dbkeep_verify_{done.id}":
            support.admin_sql(f"DROP DATABASE `{name}`")


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[ArqJobQueue]:
    q = ArqJobQueue.from_settings(settings)
    yield q
    keys = await q.redis.keys(f"*{settings.queue_name}*")
    if keys:
        await q.redis.delete(*keys)
    await q.close()
