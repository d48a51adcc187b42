"""A verification against the real MariaDB: a good backup passes; a damaged one or a manifest
that disagrees fails; no scratch database is ever left behind; the reconciler cleans up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database, utcnow
from app.engines import get_engine
from app.errors import Conflict
from app.keys import configure_encryption
from app.kit.encryption import install_key_ring
from app.kit.secret import Secret
from app.sources.models import Source
from app.storage import get_storage
from app.verifications.models import BackupVerification, VerificationStatus
from app.verifications.reconcile import STOPPED, reconcile_verifications
from app.verifications.runner import VerificationRunner
from app.verifications.service import VerificationService
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
def keys(settings: Settings) -> object:
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


async def _verify(database: Database, backups: BackupRunner, backup_id: int) -> BackupVerification:
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(backup_id)
    return await VerificationRunner(database=database, backups=backups).run(requested.id)


async def test_a_good_backup_passes_and_leaves_no_scratch_database(
    database: Database, backups: BackupRunner, completed: int, target_database: str
) -> None:
    before = support.table_checksums(target_database)
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.passed, done.error_message
    assert done.error_message is None
    rows = {t["name"]: (t["expected_rows"], t["restored_rows"]) for t in done.tables}
    assert rows == {"items": (5000, 5000), "tags": (2, 2), "nothing": (0, 0)}
    assert done.duration_ms is not None and done.started_at and done.finished_at
    assert f"dbkeep_verify_{completed}" not in scratch_databases()
    # The source's own database was never touched.
    assert support.table_checksums(target_database) == before


async def test_a_truncated_file_fails_and_leaves_no_scratch_database(
    database: Database, backups: BackupRunner, completed: int, settings: Settings
) -> None:
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, completed)
        assert backup is not None
        path = get_storage(settings).path(backup.path)  # type: ignore[attr-defined]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.failed
    assert done.error_message and "damaged" in done.error_message
    assert f"dbkeep_verify_{completed}" not in scratch_databases()


async def test_a_manifest_that_disagrees_fails(
    database: Database, backups: BackupRunner, completed: int
) -> None:
    async with database.sessionmaker() as session:
        backup = await session.get(DatabaseBackup, completed)
        assert backup is not None and backup.manifest is not None
        manifest = dict(backup.manifest)
        manifest["tables"] = [
            {**t, "rows": t["rows"] + 1} if t["name"] == "tags" else t for t in manifest["tables"]
        ]
        backup.manifest = manifest
        await session.commit()
    done = await _verify(database, backups, completed)
    assert done.status is VerificationStatus.failed
    assert done.error_message == "table `tags` has 2 rows, the dump held 3"
    tags = next(t for t in done.tables if t["name"] == "tags")
    assert tags == {"name": "tags", "expected_rows": 3, "restored_rows": 2}
    assert f"dbkeep_verify_{completed}" not in scratch_databases()


async def test_a_second_request_while_one_is_pending_is_refused(
    database: Database, completed: int
) -> None:
    async with database.sessionmaker() as session:
        service = VerificationService(session, queue=None, actor=Actor.system("test"))
        await service.request_for_backup(completed)
        with pytest.raises(Conflict):
            await service.request_for_backup(completed)


async def test_the_reconciler_drops_a_dead_workers_scratch_database(
    database: Database, settings: Settings, completed: int
) -> None:
    name = f"dbkeep_verify_{completed}"
    support.admin_sql(f"CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (id INT);")
    async with database.sessionmaker() as session:
        requested = await VerificationService(
            session, queue=None, actor=Actor.system("test")
        ).request_for_backup(completed)
        row = await session.get(BackupVerification, requested.id)
        assert row is not None
        row.status = VerificationStatus.running
        row.started_at = row.heartbeat_at = utcnow()
        await session.commit()
    # A live verification's database stays.
    assert await reconcile_verifications(database, settings) == (0, 0)
    assert name in scratch_databases()
    async with database.sessionmaker() as session:
        row = await session.get(BackupVerification, requested.id)
        assert row is not None
        row.heartbeat_at = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds + 5)
        await session.commit()
    failed, dropped = await reconcile_verifications(database, settings)
    assert (failed, dropped) == (1, 1)
    assert name not in scratch_databases()
    async with database.sessionmaker() as session:
        row = await session.get(BackupVerification, requested.id, populate_existing=True)
        assert row is not None and row.status is VerificationStatus.failed
        assert row.error_message == STOPPED
