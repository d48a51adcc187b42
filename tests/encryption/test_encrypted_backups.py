"""Encrypted backups of a real MariaDB database, end to end: the stored file is an age file the
standard tools open (`age -d -i key.txt FILE | zstd -d`), holds no plaintext of the dump,
restores exactly through the normal restore path, is refused (target untouched) when dbkeep
holds no key for it, and stays readable after the identity is rotated."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from app.audit.service import Actor
from app.backups.models import BackupStatus, DatabaseBackup, RestoreStatus
from app.backups.restores import RestoreRunner
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.encryption.models import EncryptionIdentity
from app.encryption.service import EncryptionService, keys_for_backup
from app.engines import get_engine
from app.keys import configure_encryption
from app.kit.secret import Secret
from app.pipeline.crypto import AGE_MAGIC, WrongIdentity, decryptor
from app.sources.models import Source
from app.storage import get_storage
from tests import support
from tests.backups.test_runner import seed

AGE = shutil.which("age")
ZSTD = shutil.which("zstd")
needs_tools = pytest.mark.skipif(AGE is None or ZSTD is None, reason="age and zstd are needed")


@pytest.fixture
def user_key(tmp_path: Path) -> tuple[Path, str]:
    """A user's offline key made by ``age-keygen``: (its file, its public key)."""
    if shutil.which("age-keygen") is None:
        pytest.skip("age-keygen is not installed")
    key = tmp_path / "user-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(
        line.split(": ")[1]
        for line in key.read_text().splitlines()
        if line.startswith("# public key")
    )
    return key, public


@pytest.fixture
async def source(
    database: Database, settings: Settings, target_database: str, user_key: tuple[Path, str]
) -> Source:
    configure_encryption(settings)
    async with database.sessionmaker() as session:
        row = Source(
            name="enc",
            engine="mysql",
            url=Secret(support.target_url(target_database)),
            databases=[target_database],
            exclude=[],
            timezone="UTC",
            retention={},
            encryption={"enabled": True, "recipients": [user_key[1]]},
        )
        session.add(row)
        await session.commit()
        return row


@pytest.fixture
def runner(database: Database, settings: Settings) -> BackupRunner:
    return BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )


def _service(session: object, settings: Settings) -> BackupService:
    return BackupService(
        session,  # type: ignore[arg-type]
        settings=settings,
        storage=get_storage(settings),
        queue=None,
        actor=Actor.system("test"),
    )


async def _backup(
    runner: BackupRunner, database: Database, settings: Settings, src: Source
) -> DatabaseBackup:
    async with database.sessionmaker() as session:
        pending = await _service(session, settings).create(enqueue=False, source=src)
    done = await runner.run_backup(pending.id)
    assert done.status is BackupStatus.completed, done.error_message
    return done


async def _restore(database: Database, settings: Settings, runner: BackupRunner, backup_id: int):  # type: ignore[no-untyped-def]
    async with database.sessionmaker() as session:
        operation = await _service(session, settings).request_restore(backup_id)
    restores = RestoreRunner(
        database=database,
        settings=settings,
        engine=runner.engine,
        storage=runner.storage,
        backup_runner=runner,
    )
    return await restores.run_restore(operation.id)


def _stored(settings: Settings, backup: DatabaseBackup) -> Path:
    return Path(settings.backup_dir) / backup.path


async def _kit_file(database: Database, tmp_path: Path) -> Path:
    async with database.sessionmaker() as session:
        kit = await EncryptionService(session).recovery_kit(actor=Actor.system("test"))
    path = tmp_path / "dbkeep-identity.txt"
    path.write_text(kit)
    return path


@needs_tools
async def test_an_encrypted_backup_opens_with_age_and_zstd_and_holds_no_plaintext(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
    user_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    seed(target_database, rows=3000)
    backup = await _backup(runner, database, settings, source)
    assert backup.encrypted is True
    stored = _stored(settings, backup).read_bytes()
    assert stored.startswith(AGE_MAGIC)
    assert backup.file_size == len(stored)
    assert backup.checksum_sha256 == hashlib.sha256(stored).hexdigest()

    for key in (user_key[0], await _kit_file(database, tmp_path)):
        plain = subprocess.run(
            f"{AGE} -d -i {key} {_stored(settings, backup)} | {ZSTD} -d",
            shell=True,
            capture_output=True,
            check=True,
        ).stdout
        assert b"CREATE TABLE `items`" in plain
        assert plain.rstrip().splitlines()[-1].startswith(b"-- Dump completed")
    # No byte sequence of the dump (nor of its compressed form) is in the stored file.
    compressed = subprocess.run(
        [str(AGE), "-d", "-i", str(user_key[0]), str(_stored(settings, backup))],
        capture_output=True,
        check=True,
    ).stdout
    for needle in (b"CREATE TABLE", b"item-1234", b"xxxxxxxxxxxxxxxx", compressed[:64]):
        assert needle not in stored
    windows = [plain[i : i + 24] for i in range(0, len(plain) - 24, 997)]
    assert not any(window in stored for window in windows)


async def test_an_encrypted_backup_restores_exactly_through_the_restore_path(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    seed(target_database, rows=20_000)
    before = support.table_checksums(target_database)
    backup = await _backup(runner, database, settings, source)
    support.admin_sql(
        "DELETE FROM items WHERE id > 100; UPDATE items SET name='x'", database=target_database
    )
    assert support.table_checksums(target_database) != before

    done = await _restore(database, settings, runner, backup.id)

    assert done.status is RestoreStatus.completed, done.error_message
    assert support.table_checksums(target_database) == before


async def test_a_backup_no_held_identity_opens_is_refused_and_the_target_untouched(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    seed(target_database, rows=2000)
    backup = await _backup(runner, database, settings, source)
    # dbkeep's key is lost (a new metadata store, say): it holds another identity only.
    async with database.sessionmaker() as session:
        await session.execute(delete(EncryptionIdentity))
        await session.commit()
        await EncryptionService(session).current_identity()
    support.admin_sql("DELETE FROM items WHERE id > 1000", database=target_database)
    changed = support.table_checksums(target_database)

    done = await _restore(database, settings, runner, backup.id)

    assert done.status is RestoreStatus.failed
    assert "encrypted to keys dbkeep does not hold" in (done.error_message or "")
    assert support.table_checksums(target_database) == changed


async def test_rotation_encrypts_new_backups_to_the_new_key_and_old_ones_still_restore(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    seed(target_database, rows=500)
    old_backup = await _backup(runner, database, settings, source)
    async with database.sessionmaker() as session:
        old_keys = await EncryptionService(session).decryption_keys()
        await EncryptionService(session).rotate(actor=Actor.system("test"))
        all_keys = await EncryptionService(session).decryption_keys()
    assert len(old_keys) == 1 and len(all_keys) == 2 and all_keys[1] == old_keys[0]
    new_backup = await _backup(runner, database, settings, source)

    async def opens(backup: DatabaseBackup, keys: list[str]) -> bool:
        chunks: AsyncIterator[bytes] = runner.storage.read(backup.path)
        try:
            async with decryptor(keys)(chunks) as plain:
                async for _piece in plain:
                    pass
        except WrongIdentity:
            return False
        return True

    assert await opens(new_backup, [all_keys[0]])
    assert not await opens(new_backup, old_keys)  # the retired key is not a recipient any more
    assert await opens(old_backup, old_keys)
    assert await keys_for_backup(database, encrypted=True) == all_keys

    support.admin_sql("DROP TABLE items", database=target_database)
    done = await _restore(database, settings, runner, old_backup.id)
    assert done.status is RestoreStatus.completed, done.error_message
    assert (
        support.admin_sql("SELECT COUNT(*) FROM items", database=target_database).strip() == "500"
    )


async def test_an_encrypted_download_is_the_stored_age_file(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    seed(target_database, rows=100)
    backup = await _backup(runner, database, settings, source)
    async with database.sessionmaker() as session:
        download = await _service(session, settings).open_download(backup.id)
        body = b"".join([chunk async for chunk in download.chunks])
    assert download.filename == f"{backup.filename}.age"
    assert download.media_type == "application/octet-stream"
    assert body == _stored(settings, backup).read_bytes()


async def test_a_source_without_encryption_still_stores_plain_zstd(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    async with database.sessionmaker() as session:
        row = await session.get(Source, source.id)
        assert row is not None
        row.encryption = {"enabled": False, "recipients": []}
        await session.commit()
    seed(target_database, rows=100)
    backup = await _backup(runner, database, settings, source)
    assert backup.encrypted is False
    assert _stored(settings, backup).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic


async def test_a_new_encryption_key_rewraps_the_identity_and_old_backups_still_open(
    runner: BackupRunner,
    database: Database,
    settings: Settings,
    source: Source,
    target_database: str,
) -> None:
    from app.keys import rotate_encryption_keys
    from app.kit.keyring import generate_key

    seed(target_database, rows=200)
    backup = await _backup(runner, database, settings, source)
    old = settings.encryption_key
    assert old is not None
    rotated = settings.model_copy(
        update={"encryption_key": type(old)(f"{generate_key()},{old.get_secret_value()}")}
    )
    reports = await rotate_encryption_keys(rotated, database.engine)
    assert {r.column: r.rotated for r in reports}["encryption_identities.secret_key"] == 1
    # Only the new Fernet key now: the identity still opens the old backup.
    only_new = rotated.model_copy(
        update={
            "encryption_key": type(old)(
                rotated.encryption_key.get_secret_value().split(",")[0]  # type: ignore[union-attr]
            )
        }
    )
    configure_encryption(only_new)
    try:
        keys = await keys_for_backup(database, encrypted=True)
        assert keys is not None
        async with decryptor(keys)(runner.storage.read(backup.path)) as plain:
            assert b"".join([piece async for piece in plain])[:4] == b"\x28\xb5\x2f\xfd"
    finally:
        configure_encryption(settings)
