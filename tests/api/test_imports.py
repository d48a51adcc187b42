"""Uploading an existing dump (POST /admin/api/sources/{id}/imports, ``backup:import``) against
the real MariaDB: a complete dump, plain or compressed, becomes a completed backup that restores;
anything else is a clear 4xx and leaves nothing behind (no row, no file, no temporary)."""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.audit.service import Actor
from app.auth.models import User
from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup, RestoreStatus
from app.backups.restores import RestoreRunner
from app.backups.runner import BackupRunner
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.main import create_app
from app.pipeline.codecs import decompress_stream
from app.pipeline.compression import Compression
from app.storage import get_storage
from tests import support
from tests.api.conftest import assert_failure, forget_queue, login, make_client
from tests.backups.test_runner import seed
from tests.test_cli import cli_env, dbkeep

ROWS = 30_000  # a dump over the 1 MiB API body limit: the upload route must not be held to it


def mariadb_dump(database: str) -> bytes:
    """A dump as an operator's own mariadb-dump makes it (not through dbkeep)."""
    result = subprocess.run(
        [
            "mariadb-dump",
            "--protocol=socket",
            f"--socket={support.MARIADB_SOCKET}",
            "-uroot",
            "--single-transaction",
            "--routines",
            "--events",
            "--triggers",
            "--",
            database,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@pytest.fixture
def dump(target_database: str) -> bytes:
    seed(target_database, rows=ROWS)
    return mariadb_dump(target_database)


@pytest.fixture
async def source_id(admin_client: httpx.AsyncClient) -> int:
    """The ``default`` source (DBKEEP_TARGET_URL: the test's target database)."""
    sources = (await admin_client.get("/admin/api/sources")).json()["data"]
    return int(next(s["id"] for s in sources if s["name"] == "default"))


def imports(source_id: int) -> str:
    return f"/admin/api/sources/{source_id}/imports"


def without_trailer(sql: bytes) -> bytes:
    lines = sql.rstrip().splitlines(keepends=True)
    assert lines[-1].startswith(b"-- Dump completed")
    return b"".join(lines[:-1])


async def assert_nothing_kept(database: Database, settings: Settings) -> None:
    async with database.sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(DatabaseBackup))
        events = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "backup.import")
        )
    assert rows == 0
    assert events == 0
    root = Path(settings.backup_dir)
    files = [p for p in root.rglob("*") if not p.is_dir()] if root.exists() else []
    assert files == []  # neither a backup file nor a temporary (.tmp-...)


async def restore_in_process(database: Database, settings: Settings, backup_id: int) -> None:
    storage = get_storage(settings)
    engine = get_engine(settings)
    backups = BackupRunner(database=database, settings=settings, engine=engine, storage=storage)
    async with database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=storage, queue=None, actor=Actor.system("test")
        )
        operation = await service.request_restore(backup_id)
    runner = RestoreRunner(
        database=database, settings=settings, engine=engine, storage=storage, backup_runner=backups
    )
    done = await runner.run_restore(operation.id)
    assert done.status is RestoreStatus.completed, done.error_message


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


UPLOADS = {
    "sql": ({"content-type": "application/sql"}, {}, lambda d: d),
    "gzip": ({"content-type": "application/gzip"}, {}, gzip.compress),
    "zstd": ({"content-type": "application/zstd"}, {}, _zstd),
    "octet-stream .sql.gz": (
        {"content-type": "application/octet-stream"},
        {"filename": "shop-2024-01-01.sql.gz"},
        gzip.compress,
    ),
}


@pytest.mark.parametrize("kind", list(UPLOADS))
async def test_a_complete_dump_becomes_a_completed_backup_that_restores(
    kind: str,
    admin_client: httpx.AsyncClient,
    admin_user: User,
    source_id: int,
    dump: bytes,
    database: Database,
    settings: Settings,
    target_database: str,
) -> None:
    headers, params, encode = UPLOADS[kind]
    before = support.table_checksums(target_database)
    body = encode(dump)
    assert len(dump) > settings.max_request_body_bytes

    response = await admin_client.post(
        imports(source_id), content=body, headers=headers, params=params
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["status"] == "completed" and data["trigger"] == "upload"
    assert data["created_by"] == admin_user.id
    assert data["compression"] == settings.compression.value  # stored uniformly, recompressed
    async with database.sessionmaker() as session:
        row = await session.get(DatabaseBackup, data["id"])
        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "backup.import"))
    assert row is not None and row.trigger is BackupTrigger.upload
    assert row.source_id == source_id and row.target_database == target_database
    assert row.status is BackupStatus.completed and row.raw_size == len(dump)
    assert row.server_version and row.dump_tool_version and "dump" in row.dump_tool_version
    assert event is not None and event.target_id == str(row.id)
    # The stored file is the configured compression of exactly the uploaded dump.
    storage = get_storage(settings)
    assert await storage.size(row.path) == row.file_size
    stored = b"".join(
        [c async for c in decompress_stream(storage.read(row.path), Compression(row.compression))]
    )
    assert stored == dump

    support.admin_sql(
        "DELETE FROM items WHERE id > 10; DROP TABLE IF EXISTS extra;", database=target_database
    )
    assert support.table_checksums(target_database) != before
    await restore_in_process(database, settings, row.id)
    assert support.table_checksums(target_database) == before


async def test_a_source_of_several_databases_is_told_which_one(
    admin_client: httpx.AsyncClient,
    source_id: int,
    dump: bytes,
    database: Database,
    settings: Settings,
) -> None:
    response = await admin_client.post(
        imports(source_id),
        content=dump,
        headers={"content-type": "application/sql"},
        params={"database": "not_one_of_its"},
    )
    assert "not_one_of_its" in assert_failure(response, 404)["message"]
    await assert_nothing_kept(database, settings)


def _truncated_gzip(dump: bytes) -> bytes:
    packed = gzip.compress(dump)
    return packed[: len(packed) - 200]


def _truncated_zstd(dump: bytes) -> bytes:
    packed = _zstd(dump)
    return packed[: len(packed) // 2]


REFUSED: dict[str, tuple[str, dict[str, str], Any, int, str]] = {
    "truncated gzip": ("application/gzip", {}, _truncated_gzip, 422, "truncated"),
    "truncated zstd": ("application/zstd", {}, _truncated_zstd, 422, "truncated"),
    "damaged gzip": (
        "application/gzip",
        {},
        lambda d: gzip.compress(d)[:20] + os.urandom(5000),
        422,
        "damaged",
    ),
    "random bytes": ("application/sql", {}, lambda d: os.urandom(64 * 1024), 422, "not an SQL"),
    "random bytes as .sql": (
        "application/octet-stream",
        {"filename": "x.sql"},
        lambda d: os.urandom(4096),
        422,
        "not an SQL",
    ),
    "no completion line": ("application/sql", {}, without_trailer, 422, "completion line"),
    "gzip without completion line": (
        "application/gzip",
        {},
        lambda d: gzip.compress(without_trailer(d)),
        422,
        "completion line",
    ),
    "completion line not last": (
        "application/sql",
        {},
        lambda d: d + b"DROP TABLE items;\n",
        422,
        "completion line",
    ),
    "empty": ("application/sql", {}, lambda d: b"", 422, "empty"),
    "pg_dump archive": (
        "application/octet-stream",
        {"filename": "x.sql"},
        lambda d: b"PGDMP\x01\x0e\x00" + os.urandom(100),
        422,
        "pg_dump",
    ),
    "text/plain": ("text/plain", {}, lambda d: d, 415, "Content-Type"),
    "json": ("application/json", {}, lambda d: b'{"a": 1}', 415, "Content-Type"),
    "gzip sent as sql": ("application/sql", {}, gzip.compress, 415, "gzip-compressed"),
    "sql sent as zstd": ("application/zstd", {}, lambda d: d, 415, "not compressed"),
    "octet-stream without filename": ("application/octet-stream", {}, lambda d: d, 422, "filename"),
    "unknown suffix": (
        "application/octet-stream",
        {"filename": "x.tar"},
        lambda d: d,
        422,
        ".sql.zst",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_anything_else_is_refused_and_nothing_is_kept(
    case: str,
    admin_client: httpx.AsyncClient,
    source_id: int,
    dump: bytes,
    database: Database,
    settings: Settings,
) -> None:
    media_type, params, make, status, said = REFUSED[case]
    response = await admin_client.post(
        imports(source_id),
        content=make(dump),
        headers={"content-type": media_type},
        params=params,
    )
    body = assert_failure(response, status)
    assert said in body["message"]
    await assert_nothing_kept(database, settings)


@pytest.fixture
async def small_limit_client(
    database: Database, settings: Settings, admin_user: User
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app whose upload limit is 64 KiB."""
    limited = settings.model_copy(update={"max_upload_bytes": 64 * 1024})
    application: FastAPI = create_app(limited)
    async with application.router.lifespan_context(application), make_client(application) as c:
        assert (await login(c, admin_user.email)).status_code == 200
        yield c
    await forget_queue(limited)


async def test_an_upload_over_the_limit_is_a_413_whether_declared_or_counted(
    small_limit_client: httpx.AsyncClient, dump: bytes, database: Database, settings: Settings
) -> None:
    sources = (await small_limit_client.get("/admin/api/sources")).json()["data"]
    url = imports(sources[0]["id"])
    headers = {"content-type": "application/sql"}

    declared = await small_limit_client.post(url, content=dump, headers=headers)
    assert "DBKEEP_MAX_UPLOAD_BYTES" in assert_failure(declared, 413)["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(dump), 16 * 1024):
            yield dump[start : start + 16 * 1024]

    counted = await small_limit_client.post(url, content=chunked(), headers=headers)
    assert_failure(counted, 413)
    await assert_nothing_kept(database, settings)


async def test_only_admins_with_the_csrf_header_may_upload(
    app: FastAPI,
    admin_client: httpx.AsyncClient,
    viewer_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    source_id: int,
    dump: bytes,
    database: Database,
    settings: Settings,
) -> None:
    headers = {"content-type": "application/sql"}
    assert_failure(await client.post(imports(source_id), content=dump, headers=headers), 401)
    assert_failure(await viewer_client.post(imports(source_id), content=dump, headers=headers), 403)
    csrf = admin_client.headers.pop("X-CSRF-Token")
    assert_failure(await admin_client.post(imports(source_id), content=dump, headers=headers), 403)
    admin_client.headers["X-CSRF-Token"] = csrf
    assert_failure(await admin_client.post(imports(999_999), content=dump, headers=headers), 404)
    await assert_nothing_kept(database, settings)


async def test_the_cli_imports_a_file_and_refuses_a_cut_one(
    dump: bytes, database: Database, settings: Settings, tmp_path: Path, target_database: str
) -> None:
    env = cli_env(settings)
    cut = tmp_path / "cut.sql.zst"
    cut.write_bytes(_truncated_zstd(dump))
    refused = dbkeep("backup:import", "default", str(cut), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("dbkeep: error: The upload is not")
    await assert_nothing_kept(database, settings)

    whole = tmp_path / "shop.sql.gz"
    whole.write_bytes(gzip.compress(dump))
    done = dbkeep("backup:import", "default", str(whole), "--database", target_database, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Backup ") and "imported" in done.stdout
    async with database.sessionmaker() as session:
        row = await session.scalar(select(DatabaseBackup))
    assert row is not None and row.status is BackupStatus.completed
    assert row.trigger is BackupTrigger.upload and row.created_by is None
    assert row.raw_size == len(dump)
