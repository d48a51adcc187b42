"""Copies on two local destinations, against the real MariaDB and dump tools: a backup is
dumped once and stored on both; a destination that can't be written leaves the backup completed
but degraded, and a retry stores the copy; a deleted or bit-flipped copy makes restores and
downloads fall back to the other; both bad is refused with the target untouched; deleting a
backup deletes every copy."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus, RestoreStatus
from app.backups.restores import RestoreRunner
from app.backups.runner import SPOOL_DIR, BackupRunner
from app.backups.schemas import BackupRead
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.destinations.copies import copy_reads
from app.destinations.models import Destination
from app.destinations.schemas import CopyRead
from app.destinations.service import sync_local_destination
from app.engines import get_engine
from app.engines.base import TargetSpec
from app.errors import Conflict, NotFound
from app.jobs.queue import ArqJobQueue
from app.jobs.reconciler import Reconciler
from app.keys import configure_encryption
from app.kit.encryption import install_key_ring
from app.sources.health import FAILED_COPY
from app.sources.health_service import SourceHealthService
from app.sources.models import Source
from app.sources.service import sync_default_source
from app.storage import get_storage
from tests import support
from tests.backups.test_runner import seed


@dataclass
class TwoPlaces:
    local_id: int
    second_id: int
    local_dir: Path
    second_dir: Path
    source: Source


@pytest.fixture(autouse=True)
def key_ring(settings: Settings) -> Iterator[None]:
    configure_encryption(settings)
    yield
    install_key_ring(None)


@pytest.fixture
async def places(database: Database, settings: Settings, tmp_path: Path) -> TwoPlaces:
    """The default source writing to ``local`` (DBKEEP_BACKUP_DIR) and a second directory."""
    second_dir = tmp_path / "second"
    async with database.sessionmaker() as session:
        local = await sync_local_destination(session, settings)
        source = await sync_default_source(session, settings)
        assert source is not None
        second = Destination(name="second", kind="local", config={"path": str(second_dir)})
        session.add(second)
        await session.flush()
        source.destination_ids = [local.id, second.id]
        await session.commit()
        return TwoPlaces(local.id, second.id, settings.backup_dir, second_dir, source)


@pytest.fixture
def runner(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


def service(session: object, settings: Settings) -> BackupService:
    return BackupService(
        session,  # type: ignore[arg-type]
        settings=settings,
        storage=get_storage(settings),
        queue=None,
        actor=Actor.system("test"),
    )


async def backed_up(database: Database, settings: Settings, runner: BackupRunner) -> DatabaseBackup:
    async with database.sessionmaker() as session:
        backup_id = (await service(session, settings).create(enqueue=False)).id
    return await runner.run_backup(backup_id)


async def copies_of(database: Database, backup_id: int) -> dict[str, CopyRead]:
    async with database.sessionmaker() as session:
        return {
            copy.destination_name: copy
            for copy in (await copy_reads(session, [backup_id]))[backup_id]
        }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def target_of(settings: Settings, database: str) -> TargetSpec:
    url = settings.target_url.get_secret_value()  # type: ignore[union-attr]
    return TargetSpec.from_url(url).with_database(database)


@pytest.fixture
def scratch_database() -> Iterator[str]:
    name = support.unique_name("dbkeep_scratch")
    support.admin_sql(f"CREATE DATABASE `{name}`")
    yield name
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


async def test_a_backup_is_dumped_once_and_stored_on_every_destination(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert [c.status for c in copies.values()] == ["stored", "stored"]
    for directory in (places.local_dir, places.second_dir):
        stored = directory / backup.path
        assert sha256(stored) == backup.checksum_sha256
        assert stored.stat().st_size == backup.file_size
    assert copies["second"].size == backup.file_size
    assert copies["second"].checksum_sha256 == backup.checksum_sha256
    assert copies["second"].verified_at is not None
    # The spool is gone once the copies are stored.
    assert [p for p in (places.local_dir / SPOOL_DIR).rglob("*") if p.is_file()] == []


async def health_codes(database: Database, source_id: int | None) -> list[str]:
    """The reason codes of the source's health now."""
    async with database.sessionmaker() as session:
        found = await SourceHealthService(session, backup_dir=None).evaluate()
    return next(
        [r.code for r in e.health.reasons] for e in found if e.snapshot.source_id == source_id
    )


async def test_a_destination_that_cannot_be_written_degrades_the_backup_and_retry_stores_it(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    # The second destination's directory is gone, and a file stands where it was.
    shutil.rmtree(places.second_dir, ignore_errors=True)
    places.second_dir.write_text("not a directory")
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "stored"
    assert copies["second"].status == "failed"
    assert copies["second"].error_message
    assert str(places.second_dir) not in copies["second"].error_message
    async with database.sessionmaker() as session:
        read = await service(session, settings).get(backup.id)
        shown = BackupRead.model_validate(read).with_copies(list(copies.values()))
    assert shown.degraded is True
    assert FAILED_COPY in await health_codes(database, backup.source_id)

    # Still unwritable: the retry fails again and says so.
    assert await runner.retry_copy(backup.id, places.second_id) == "failed"
    places.second_dir.unlink()
    assert await runner.retry_copy(backup.id, places.second_id) == "stored"
    copies = await copies_of(database, backup.id)
    assert copies["second"].status == "stored" and copies["second"].error_message is None
    assert sha256(places.second_dir / backup.path) == backup.checksum_sha256
    assert FAILED_COPY not in await health_codes(database, backup.source_id)


async def test_when_every_destination_fails_the_backup_fails(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
    tmp_path: Path,
) -> None:
    seed(target_database)
    async with database.sessionmaker() as session:
        third = Destination(
            name="third", kind="local", config={"path": str(tmp_path / "blocked" / "x")}
        )
        session.add(third)
        await session.flush()
        source = await session.get(Source, places.source.id)
        assert source is not None
        source.destination_ids = [places.second_id, third.id]
        await session.commit()
    (tmp_path / "blocked").write_text("a file")
    places.second_dir.write_text("a file too")
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.failed
    assert backup.error_message and "second" in backup.error_message
    copies = await copies_of(database, backup.id)
    assert {c.status for c in copies.values()} == {"failed"}


async def test_restore_falls_back_from_a_damaged_or_deleted_copy_and_refuses_when_both_are_bad(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
    scratch_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message

    flip_a_byte(places.local_dir / backup.path)  # same size, other bytes
    await runner.load(backup.id, target=target_of(settings, scratch_database))
    assert support.table_checksums(scratch_database) == support.table_checksums(target_database)
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "failed" and "damaged" in (copies["local"].error_message or "")
    assert copies["second"].status == "stored"

    # The local copy is repaired from the second one.
    assert await runner.retry_copy(backup.id, places.local_id) == "stored"
    assert sha256(places.local_dir / backup.path) == backup.checksum_sha256

    # Now the second copy is deleted and the first damaged: nothing intact is left.
    (places.second_dir / backup.path).unlink()
    flip_a_byte(places.local_dir / backup.path)
    support.admin_sql(f"DROP DATABASE IF EXISTS `{scratch_database}`")
    support.admin_sql(f"CREATE DATABASE `{scratch_database}`")
    support.admin_sql(
        "CREATE TABLE untouched (id INT PRIMARY KEY); INSERT INTO untouched VALUES (7);",
        database=scratch_database,
    )
    before = support.table_checksums(scratch_database)
    with pytest.raises(Conflict):
        await runner.load(backup.id, target=target_of(settings, scratch_database))
    assert support.table_checksums(scratch_database) == before
    copies = await copies_of(database, backup.id)
    assert {c.status for c in copies.values()} == {"failed"}


async def test_download_falls_back_to_the_intact_copy(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    (places.local_dir / backup.path).unlink()
    async with database.sessionmaker() as session:
        download = await service(session, settings).open_download(backup.id, raw=True)
        data = b"".join([chunk async for chunk in download.chunks])
    assert hashlib.sha256(data).hexdigest() == backup.checksum_sha256
    assert (await copies_of(database, backup.id))["local"].status == "failed"

    # Both gone: the download is refused.
    (places.second_dir / backup.path).unlink()
    async with database.sessionmaker() as session:
        with pytest.raises(NotFound):
            await service(session, settings).open_download(backup.id, raw=True)


async def test_deleting_a_backup_deletes_every_copy(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    assert (places.second_dir / backup.path).exists()
    async with database.sessionmaker() as session:
        await service(session, settings).delete(backup.id)
    assert not (places.local_dir / backup.path).exists()
    assert not (places.second_dir / backup.path).exists()


async def test_the_reconciler_flags_a_copy_whose_object_vanished(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    (places.second_dir / backup.path).unlink()
    queue = ArqJobQueue.from_settings(settings)
    try:
        reconciler = Reconciler(
            database=database,
            settings=settings,
            storage=get_storage(settings),
            queue=queue,
            in_progress_timeout_s=60,
        )
        report = await reconciler.run_once()
        assert report.copies_flagged == 1 and report.missing_flagged == 0
        copies = await copies_of(database, backup.id)
        assert copies["second"].status == "failed"
        assert "vanished" in (copies["second"].error_message or "")
        assert copies["local"].status == "stored"

        (places.local_dir / backup.path).unlink()
        reconciler._last_file_check = 0.0  # the check is throttled; force a second pass
        report = await reconciler.run_once()
        assert report.copies_flagged == 1 and report.missing_flagged == 1
        async with database.sessionmaker() as session:
            row = await session.get(DatabaseBackup, backup.id)
            assert row is not None and row.integrity_status is IntegrityStatus.missing
    finally:
        await queue.close()


async def test_a_restore_job_reads_the_intact_copy_when_the_first_is_bit_flipped(
    places: TwoPlaces,
    database: Database,
    settings: Settings,
    runner: BackupRunner,
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    flip_a_byte(places.local_dir / backup.path)
    support.admin_sql("DELETE FROM items WHERE id > 10", database=target_database)
    async with database.sessionmaker() as session:
        operation = await service(session, settings).request_restore(backup.id)
    restores = RestoreRunner(
        database=database,
        settings=settings,
        engine=runner.engine,
        storage=runner.storage,
        backup_runner=runner,
    )
    done = await restores.run_restore(operation.id)
    assert done.status is RestoreStatus.completed, done.error_message
    count = support.admin_sql("SELECT COUNT(*) FROM items", database=target_database).strip()
    assert count == "200"
    assert (await copies_of(database, backup.id))["local"].status == "failed"
