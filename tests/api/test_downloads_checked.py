"""A download serves only the file dbkeep wrote, checked while it streams.

A symlink planted under a backup's key is never followed (409, nothing of its target sent); a
file whose size changed is refused before streaming; a file with the recorded size but other
bytes fails the download while it streams: over real HTTP the client sees a broken response, not
a complete one, for the stored file (``?raw=1``), the decompressed one, and an uncompressed one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import zstandard
from fastapi import FastAPI
from sqlalchemy import update

from app.backups.models import BackupStatus, DatabaseBackup, IntegrityStatus
from app.config import Settings
from app.db import Database
from tests.api.conftest import BackupFactory, TokenClient, assert_failure

# ~3 MB that zstd can't shrink much: the stored file is more than one read chunk too.
SQL = b"".join(
    b"INSERT INTO t VALUES ('%s');\n" % os.urandom(32).hex().encode() for _ in range(40_000)
)


async def _completed(
    make_backup: BackupFactory, settings: Settings, database: Database, *, compression: str
) -> DatabaseBackup:
    stored = SQL if compression == "none" else zstandard.ZstdCompressor().compress(SQL)
    backup = await make_backup(
        compression=compression,
        filename=f"shop_{compression}.sql" + ("" if compression == "none" else ".zst"),
    )
    path = settings.backup_dir / backup.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stored)
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.id == backup.id)
            .values(
                file_size=len(stored),
                checksum_sha256=hashlib.sha256(stored).hexdigest(),
                raw_size=len(SQL),
            )
        )
        await session.commit()
        row = await session.get(DatabaseBackup, backup.id)
        assert row is not None
        return row


def _url(backup: DatabaseBackup) -> str:
    return f"/admin/database-backups/{backup.id}/download"


async def _integrity(database: Database, backup_id: int) -> IntegrityStatus | None:
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, backup_id, populate_existing=True)
        assert row is not None
        return row.integrity_status


@pytest.mark.parametrize("compression", ["none", "zstd"])
async def test_a_symlink_under_the_key_is_never_served(
    admin_client: httpx.AsyncClient,
    make_backup: BackupFactory,
    settings: Settings,
    database: Database,
    tmp_path: Path,
    compression: str,
) -> None:
    backup = await _completed(make_backup, settings, database, compression=compression)
    path = settings.backup_dir / backup.path
    # Another file of the host with exactly the recorded size: only refusing the link helps.
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"S" * backup.file_size)
    path.unlink()
    path.symlink_to(secret)

    for raw in ("0", "1"):
        response = await admin_client.get(_url(backup), params={"raw": raw})
        body = assert_failure(response, 409)
        assert "damaged" in body["message"] and b"SSSS" not in response.content
    assert await _integrity(database, backup.id) is IntegrityStatus.corrupt
    # A restore refuses it as well.
    assert_failure(await admin_client.post(f"/admin/api/database-backups/{backup.id}/restore"), 409)


async def test_a_file_whose_size_changed_is_refused_before_streaming(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, settings: Settings,
    database: Database,
) -> None:  # fmt: skip
    backup = await _completed(make_backup, settings, database, compression="none")
    path = settings.backup_dir / backup.path
    path.write_bytes(path.read_bytes() + b"-- and one more line\n")
    for raw in ("0", "1"):
        assert_failure(await admin_client.get(_url(backup), params={"raw": raw}), 409)
    assert await _integrity(database, backup.id) is IntegrityStatus.corrupt


def _tamper(settings: Settings, backup: DatabaseBackup) -> None:
    """Change bytes near the end of the file, keeping its size."""
    path = settings.backup_dir / backup.path
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))


# ---- over real HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan already entered) behind a real uvicorn on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("raw", ["0", "1"])
async def test_same_size_other_bytes_break_the_http_response(
    served: str, admin_token: TokenClient, make_backup: BackupFactory, settings: Settings,
    database: Database, compression: str, raw: str,
) -> None:  # fmt: skip
    backup = await _completed(make_backup, settings, database, compression=compression)
    headers = {"Authorization": f"Bearer {admin_token.token}"}
    async with httpx.AsyncClient(base_url=served, headers=headers, timeout=30) as client:
        # Untouched, the same download completes.
        intact = await client.get(_url(backup), params={"raw": raw})
        assert intact.status_code == 200
        assert hashlib.sha256(intact.content).hexdigest() == (
            backup.checksum_sha256 if raw == "1" or compression == "none"
            else hashlib.sha256(SQL).hexdigest()
        )  # fmt: skip

        _tamper(settings, backup)
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("GET", _url(backup), params={"raw": raw}) as response:
                assert response.status_code == 200  # the headers went out before the end
                async for chunk in response.aiter_bytes():
                    received += chunk
    assert len(received) < (backup.file_size if raw == "1" else len(SQL))


async def test_a_completed_backup_that_is_still_fine_reads_after_a_failed_one(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, settings: Settings,
    database: Database,
) -> None:  # fmt: skip
    backup = await _completed(make_backup, settings, database, compression="zstd")
    response = await admin_client.get(_url(backup))
    assert response.status_code == 200 and response.content == SQL
    assert backup.status is BackupStatus.completed
