"""Copies on a local directory and a real S3-compatible bucket (SeaweedFS), against the real
MariaDB and dump tools: both copies stored with the backup's bytes; restores and downloads read
the S3 copy when the local one is gone; the S3 server killed before or in the middle of the upload
leaves the backup completed but degraded, and a retry once it is back stores the copy; wrong keys
and a missing bucket fail the copy with a reason that names them and shows no secret; an
encrypted backup's S3 object is an age file that restores on its own."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import app.backups.runner as runner_module
from app.audit.service import Actor
from app.backups.copying import CopyResult, CopyTarget
from app.backups.copying import upload as real_upload
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.runner import BackupRunner
from app.backups.schemas import BackupRead
from app.config import Settings
from app.db import Database
from app.destinations.models import Destination
from app.destinations.service import CopyRetryService, sync_local_destination
from app.destinations.tasks import copy_retry_job_id
from app.jobs.queue import ArqJobQueue
from app.jobs.reconciler import Reconciler
from app.pipeline.crypto import AGE_MAGIC
from app.sources.models import Source
from app.sources.service import sync_default_source
from app.storage import get_storage
from app.storage.base import BackupStorage, StorageWriter
from app.storage.s3 import MiB
from tests import support
from tests.backups.test_copies import (  # noqa: F401  (fixtures)
    backed_up,
    copies_of,
    key_ring,
    runner,
    scratch_database,
    service,
    sha256,
    target_of,
)
from tests.backups.test_runner import seed
from tests.s3server import S3Server, running_server

SECRET_FIELDS = ("access_key_id", "secret_access_key")


@dataclass
class LocalAndS3:
    local_id: int
    s3_id: int
    local_dir: Path
    server: S3Server
    bucket: str
    source: Source


async def add_s3_destination(
    database: Database, server: S3Server, bucket: str, **extra: Any
) -> int:
    """An ``s3`` destination row (its keys in the encrypted ``secrets``); ``extra`` may hold the
    storage's tuning (part size, attempts) that the API does not take."""
    config = server.config(bucket, **extra)
    hidden = {key: config.pop(key) for key in SECRET_FIELDS}
    async with database.sessionmaker() as session:
        row = Destination(name="offsite", kind="s3", config=config, secrets=json.dumps(hidden))
        session.add(row)
        await session.commit()
        return row.id


async def local_and_s3(
    database: Database,
    settings: Settings,
    server: S3Server,
    *,
    bucket: str | None = None,
    encryption: dict[str, Any] | None = None,
    **extra: Any,
) -> LocalAndS3:
    """The default source writing to ``local`` (DBKEEP_BACKUP_DIR) first, then the bucket."""
    bucket = bucket or await server.create_bucket()
    s3_id = await add_s3_destination(database, server, bucket, **extra)
    async with database.sessionmaker() as session:
        local = await sync_local_destination(session, settings)
        source = await sync_default_source(session, settings)
        assert source is not None
        source.destination_ids = [local.id, s3_id]
        if encryption is not None:
            source.encryption = encryption
        await session.commit()
        return LocalAndS3(local.id, s3_id, settings.backup_dir, server, bucket, source)


@pytest.fixture
async def places(database: Database, settings: Settings, s3_server: S3Server) -> LocalAndS3:
    return await local_and_s3(database, settings, s3_server)


async def object_bytes(server: S3Server, bucket: str, key: str) -> bytes:
    async with server.client() as client:
        response = await client.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
    return data


def seed_incompressible(database: str, mib: int) -> None:
    """A table of random bytes, so the dump stays about ``mib`` MiB once compressed (several
    multipart parts)."""
    support.admin_sql(
        "CREATE TABLE IF NOT EXISTS noise (id INT PRIMARY KEY, data LONGBLOB)", database=database
    )
    for i in range(mib):
        support.admin_sql(
            f"INSERT INTO noise VALUES ({i}, X'{os.urandom(MiB).hex()}')", database=database
        )


async def degraded(database: Database, settings: Settings, backup: DatabaseBackup) -> bool:
    copies = await copies_of(database, backup.id)
    async with database.sessionmaker() as session:
        read = await service(session, settings).get(backup.id)
    return bool(BackupRead.model_validate(read).with_copies(list(copies.values())).degraded)


async def reconcile_once(database: Database, settings: Settings, *, max_age_s: int) -> Any:
    """One reconciler pass, with dumps timing out after ``max_age_s`` (what makes a
    temporary an orphan)."""
    tuned = settings.model_copy(
        update={"backup_timeout_seconds": max_age_s, "heartbeat_timeout_seconds": 0}
    )
    queue = ArqJobQueue.from_settings(tuned)
    try:
        reconciler = Reconciler(
            database=database,
            settings=tuned,
            storage=get_storage(tuned),
            queue=queue,
            in_progress_timeout_s=60,
        )
        return await reconciler.run_once()
    finally:
        await queue.close()


# ---- both copies, reads from S3 --------------------------------------------------------------


async def test_a_backup_is_stored_locally_and_in_the_bucket_with_the_same_bytes(
    places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert [(name, c.status) for name, c in copies.items()] == [
        ("local", "stored"),
        ("offsite", "stored"),
    ]
    assert sha256(places.local_dir / backup.path) == backup.checksum_sha256
    assert await places.server.keys(places.bucket) == [backup.path]
    stored = await object_bytes(places.server, places.bucket, backup.path)
    assert len(stored) == backup.file_size
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256
    assert copies["offsite"].checksum_sha256 == backup.checksum_sha256
    assert copies["offsite"].size == backup.file_size
    assert await places.server.multipart_uploads(places.bucket) == []
    assert await degraded(database, settings, backup) is False


async def test_restore_reads_the_s3_copy_when_the_local_one_is_deleted(
    places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    scratch_database: str,  # noqa: F811
) -> None:
    seed(target_database, rows=5000)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    (places.local_dir / backup.path).unlink()
    await runner.load(backup.id, target=target_of(settings, scratch_database))
    assert support.table_checksums(scratch_database) == support.table_checksums(target_database)
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "failed" and "missing" in (copies["local"].error_message or "")
    assert copies["offsite"].status == "stored"

    # The local copy is stored again from the bucket.
    assert await runner.retry_copy(backup.id, places.local_id) == "stored"
    assert sha256(places.local_dir / backup.path) == backup.checksum_sha256


async def test_a_download_falls_back_to_the_s3_copy(
    places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    (places.local_dir / backup.path).unlink()
    async with database.sessionmaker() as session:
        download = await service(session, settings).open_download(backup.id, raw=True)
        data = b"".join([chunk async for chunk in download.chunks])
    assert hashlib.sha256(data).hexdigest() == backup.checksum_sha256
    assert len(data) == backup.file_size
    assert (await copies_of(database, backup.id))["local"].status == "failed"


async def test_deleting_a_backup_deletes_the_s3_object_too(
    places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    assert await places.server.keys(places.bucket) == [backup.path]
    async with database.sessionmaker() as session:
        await service(session, settings).delete(backup.id)
    assert await places.server.keys(places.bucket) == []
    assert not (places.local_dir / backup.path).exists()


async def test_the_reconciler_flags_an_s3_copy_whose_object_vanished(
    places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
) -> None:
    seed(target_database)
    backup = await backed_up(database, settings, runner)
    async with places.server.client() as client:
        await client.delete_object(Bucket=places.bucket, Key=backup.path)
    report = await reconcile_once(database, settings, max_age_s=3600)
    assert report.copies_flagged == 1 and report.missing_flagged == 0
    copies = await copies_of(database, backup.id)
    assert copies["offsite"].status == "failed"
    assert "vanished" in (copies["offsite"].error_message or "")
    assert copies["local"].status == "stored"
    assert await runner.retry_copy(backup.id, places.s3_id) == "stored"
    assert await places.server.keys(places.bucket) == [backup.path]


async def test_a_source_with_the_bucket_alone_is_dumped_straight_into_it_and_restores(
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    scratch_database: str,  # noqa: F811
    s3_server: S3Server,
) -> None:
    """One destination: no spool, the dump streams into the multipart upload itself."""
    seed(target_database, rows=5000)
    places = await local_and_s3(database, settings, s3_server)
    async with database.sessionmaker() as session:
        source = await session.get(Source, places.source.id)
        assert source is not None
        source.destination_ids = [places.s3_id]
        await session.commit()
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    assert not (places.local_dir / backup.path).exists()
    copies = await copies_of(database, backup.id)
    assert list(copies) == ["offsite"] and copies["offsite"].status == "stored"
    stored = await object_bytes(s3_server, places.bucket, backup.path)
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256
    await runner.load(backup.id, target=target_of(settings, scratch_database))
    assert support.table_checksums(scratch_database) == support.table_checksums(target_database)
    async with database.sessionmaker() as session:
        download = await service(session, settings).open_download(backup.id, raw=True)
        data = b"".join([chunk async for chunk in download.chunks])
    assert data == stored


# ---- faults ------------------------------------------------------------------------------------


@pytest.fixture
def private_server() -> Iterator[S3Server]:
    """A server of the test's own, which it may kill (the session's stays up)."""
    with running_server() as server:
        yield server


class _KillingWriter:
    """Passes writes through; once ``after`` bytes went in, kills the server (SIGKILL)."""

    def __init__(self, inner: StorageWriter, server: S3Server, after: int) -> None:
        self.inner, self.server, self.after, self.written = inner, server, after, 0

    async def write(self, chunk: bytes) -> None:
        await self.inner.write(chunk)
        self.written += len(chunk)
        if self.written >= self.after and self.server.process is not None:
            await asyncio.sleep(0.3)  # let the parts in flight land
            self.server.stop(kill=True)

    async def commit(self) -> int:
        return await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


class _KillingStorage:
    def __init__(self, inner: BackupStorage, server: S3Server, after: int) -> None:
        self.inner, self.server, self.after = inner, server, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def open_writer(self, key: str) -> _KillingWriter:
        return _KillingWriter(await self.inner.open_writer(key), self.server, self.after)


@pytest.mark.slow
async def test_the_s3_server_killed_mid_upload_degrades_the_backup_and_a_retry_stores_it(
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    private_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_incompressible(target_database, 16)
    places = await local_and_s3(
        database, settings, private_server, part_size=5 * MiB, max_attempts=2
    )

    async def killing_upload(
        source: BackupStorage, key: str, target: CopyTarget, **kwargs: Any
    ) -> CopyResult:
        if target.name == "offsite" and target.storage is not None:
            target = CopyTarget(
                target.destination_id,
                target.name,
                _KillingStorage(target.storage, private_server, after=7 * MiB),  # type: ignore[arg-type]
            )
        return await real_upload(source, key, target, **kwargs)

    monkeypatch.setattr(runner_module, "upload_copy", killing_upload)
    backup = await backed_up(database, settings, runner)
    assert private_server.process is None, "the server was not killed: no upload happened"
    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.file_size > 10 * MiB  # several parts: the kill came in the middle
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "stored"
    assert sha256(places.local_dir / backup.path) == backup.checksum_sha256
    assert copies["offsite"].status == "failed"
    assert "can't be reached" in (copies["offsite"].error_message or "")
    assert await degraded(database, settings, backup) is True

    # Back up again: nothing was published, the cut multipart upload is left over (the
    # reconciler's to clean), and the retry stores the copy from the local one.
    private_server.start()
    assert await private_server.keys(places.bucket) == []
    assert len(await private_server.multipart_uploads(places.bucket)) == 1
    monkeypatch.setattr(runner_module, "upload_copy", real_upload)
    assert await runner.retry_copy(backup.id, places.s3_id) == "stored"
    copies = await copies_of(database, backup.id)
    assert copies["offsite"].status == "stored" and copies["offsite"].error_message is None
    stored = await object_bytes(private_server, places.bucket, backup.path)
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256
    assert await degraded(database, settings, backup) is False

    # The reconciler aborts the cut upload in the bucket (once older than any live upload).
    assert (await reconcile_once(database, settings, max_age_s=3600)).orphans_removed == 0
    assert len(await private_server.multipart_uploads(places.bucket)) == 1
    assert (await reconcile_once(database, settings, max_age_s=0)).orphans_removed == 1
    assert await private_server.multipart_uploads(places.bucket) == []
    assert await private_server.keys(places.bucket) == [backup.path]


@pytest.mark.slow
async def test_the_s3_server_down_before_the_upload_degrades_the_backup_and_a_retry_stores_it(
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    private_server: S3Server,
) -> None:
    seed(target_database)
    places = await local_and_s3(database, settings, private_server, max_attempts=2)
    private_server.stop(kill=True)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "stored"
    assert copies["offsite"].status == "failed"
    assert "can't be reached" in (copies["offsite"].error_message or "")
    assert await degraded(database, settings, backup) is True

    # Still down: the retry fails again and says why.
    assert await runner.retry_copy(backup.id, places.s3_id) == "failed"
    private_server.start()
    # What POST .../copies/{destination_id}/retry does: the copy pending, the job queued ...
    queue = ArqJobQueue.from_settings(settings)
    try:
        async with database.sessionmaker() as session:
            shown = await CopyRetryService(
                session, actor=Actor.system("test"), queue=queue
            ).request_retry(backup.id, places.s3_id)
        assert [c.status for c in shown] == ["stored", "pending"]
        job = copy_retry_job_id(settings.queue_name, backup.id, places.s3_id)
        assert await queue.redis.exists(f"arq:job:{job}") == 1
    finally:
        await queue.close()
    # ... and what the job (run_copy_retry) runs.
    assert await runner.retry_copy(backup.id, places.s3_id) == "stored"
    stored = await object_bytes(private_server, places.bucket, backup.path)
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256


async def test_wrong_keys_fail_the_s3_copy_with_a_reason_and_no_secret(
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    s3_server: S3Server,
) -> None:
    seed(target_database)
    wrong = "wrongSECRETneverShown0123456789"
    places = await local_and_s3(
        database, settings, s3_server, secret_access_key=wrong, max_attempts=1
    )
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "stored"
    assert copies["offsite"].status == "failed"
    reason = copies["offsite"].error_message or ""
    assert "secret access key" in reason, reason
    for secret in (wrong, s3_server.secret_key):
        assert secret not in reason and secret not in (backup.error_message or "")
    assert await s3_server.keys(places.bucket) == []


async def test_a_missing_bucket_fails_the_s3_copy_naming_the_bucket(
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    s3_server: S3Server,
) -> None:
    seed(target_database)
    await local_and_s3(database, settings, s3_server, bucket="no-such-bucket-x", max_attempts=1)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "stored"
    assert copies["offsite"].status == "failed"
    reason = copies["offsite"].error_message or ""
    assert "bucket 'no-such-bucket-x' does not exist" in reason, reason
    assert s3_server.secret_key not in reason


# ---- encryption --------------------------------------------------------------------------------


@pytest.fixture
async def encrypted_places(
    database: Database, settings: Settings, s3_server: S3Server
) -> AsyncIterator[LocalAndS3]:
    yield await local_and_s3(
        database, settings, s3_server, encryption={"enabled": True, "recipients": []}
    )


async def test_an_encrypted_backup_is_an_age_file_in_the_bucket_and_restores_from_it_alone(
    encrypted_places: LocalAndS3,
    database: Database,
    settings: Settings,
    runner: BackupRunner,  # noqa: F811
    target_database: str,
    scratch_database: str,  # noqa: F811
) -> None:
    places = encrypted_places
    seed(target_database, rows=3000)
    backup = await backed_up(database, settings, runner)
    assert backup.status is BackupStatus.completed, backup.error_message
    assert backup.encrypted is True
    stored = await object_bytes(places.server, places.bucket, backup.path)
    assert stored.startswith(b"age-encryption.org/v1\n") and stored.startswith(AGE_MAGIC)
    assert hashlib.sha256(stored).hexdigest() == backup.checksum_sha256
    assert len(stored) == backup.file_size
    assert b"CREATE TABLE" not in stored
    assert (places.local_dir / backup.path).read_bytes() == stored

    (places.local_dir / backup.path).unlink()
    await runner.load(backup.id, target=target_of(settings, scratch_database))
    assert support.table_checksums(scratch_database) == support.table_checksums(target_database)
    copies = await copies_of(database, backup.id)
    assert copies["local"].status == "failed" and copies["offsite"].status == "stored"
