"""PostgreSQL failures, each one said clearly and without a secret: wrong password (a private
server that checks passwords), unknown database, missing privilege, missing or too old tools,
server stopped mid-dump, damaged or foreign archives on restore."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError, FailureKind, TargetSpec
from app.engines.postgres import PostgresEngine
from app.pipeline.compression import Compression
from app.pipeline.streams import RawStats
from app.storage.local import LocalStorage
from tests import support
from tests.engines.pg_support import (
    PrivateServer,
    create_database,
    pg_sql,
    private_server,
    target,
)

PASSWORD = "pw:" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def scram() -> Iterator[PrivateServer]:
    with private_server() as server:
        server.sql(
            f"CREATE ROLE keeper LOGIN PASSWORD '{PASSWORD}';CREATE DATABASE shop OWNER keeper;"
        )
        server.sql(
            "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g;GRANT SELECT ON t TO keeper;",
            database="shop",
        )
        yield server


def scram_target(server: PrivateServer, password: str, database: str = "shop") -> TargetSpec:
    return TargetSpec.from_url(f"postgresql://keeper:{password}@127.0.0.1:{server.port}/{database}")


async def _dump(engine: PostgresEngine, storage: LocalStorage, spec: TargetSpec) -> None:
    writer = await storage.open_writer(support.unique_name("f") + ".dump")
    try:
        await dump_into(engine, spec, writer, compression=Compression.zstd)
    finally:
        await writer.abort()


async def test_the_right_password_works_through_the_passfile(
    scram: PrivateServer, pg_engine: PostgresEngine, pg_storage: LocalStorage
) -> None:
    spec = scram_target(scram, PASSWORD)
    report = await pg_engine.check_connection(spec)
    assert report.ok, report.message
    writer = await pg_storage.open_writer("right.dump")
    outcome = await dump_into(pg_engine, spec, writer, compression=Compression.zstd)
    await writer.commit()
    assert outcome.raw_bytes > 0


async def test_a_wrong_password_is_refused_without_saying_it(
    scram: PrivateServer, pg_engine: PostgresEngine, pg_storage: LocalStorage
) -> None:
    wrong = "wrong:" + os.urandom(6).hex()
    spec = scram_target(scram, wrong)
    with pytest.raises(EngineError) as caught:
        await _dump(pg_engine, pg_storage, spec)
    assert caught.value.kind is FailureKind.permanent
    assert "access denied" in caught.value.message and "keeper" in caught.value.message
    assert wrong not in caught.value.message and PASSWORD not in caught.value.message
    report = await pg_engine.check_connection(spec)
    assert not report.ok and "password" in report.message and wrong not in report.message


@pytest.mark.slow
async def test_a_server_stopped_mid_dump_is_a_transient_failure(tmp_path: Path) -> None:
    # Its own server: stopping it must not disturb the module's other tests.
    with private_server() as server:
        server.sql(
            "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
            "FROM generate_series(1, 400000) g;"
        )
        engine = PostgresEngine(spool_dir=tmp_path / "spool")
        spec = TargetSpec.from_url(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
        spec = TargetSpec(**{**spec.__dict__, "socket": server.socket_dir})
        with pytest.raises(EngineError) as caught:
            async with engine.open_dump(spec) as dump:
                raw = RawStats()
                chunks = dump.source.__aiter__()  # type: ignore[union-attr]
                raw.feed(await chunks.__anext__())  # under way; pg_dump waits on the pipe
                await asyncio.to_thread(server.stop)
                async for chunk in chunks:
                    raw.feed(chunk)
                await dump.finish(raw)
    # Either pg_dump's own report of the lost connection, or the TOC check of a cut archive.
    assert caught.value.kind in (FailureKind.transient, FailureKind.permanent)
    assert "pg_dump" in caught.value.message or "incomplete dump" in caught.value.message


async def test_an_unknown_database_is_named(
    pg_engine: PostgresEngine, pg_storage: LocalStorage
) -> None:
    name = support.unique_name("dbkeep_pg_none")
    with pytest.raises(EngineError) as caught:
        await _dump(pg_engine, pg_storage, target(name))
    assert caught.value.message == f"unknown database {name!r}"
    assert caught.value.kind is FailureKind.permanent


async def test_a_missing_privilege_is_said_by_the_test_and_the_dump(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_names: list[str]
) -> None:
    name = support.unique_name("dbkeep_pg_priv")
    pg_names.append(name)
    create_database(name)
    role = support.unique_name("dbkeep_pg_noread")
    pg_sql(f"CREATE ROLE {role} LOGIN")
    try:
        pg_sql("CREATE TABLE secret_rows (v text); INSERT INTO secret_rows VALUES ('x');",
               database=name)  # fmt: skip
        spec = target(name, user=role)
        report = await pg_engine.check_connection(spec)
        assert not report.ok
        assert any("SELECT on tables" in m for m in report.missing_privileges)
        with pytest.raises(EngineError) as caught:
            await _dump(pg_engine, pg_storage, spec)
        assert "lacks a privilege" in caught.value.message and role in caught.value.message
        assert "secret_rows" in caught.value.message
        assert caught.value.kind is FailureKind.permanent
    finally:
        pg_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE); DROP ROLE IF EXISTS {role}")


async def test_missing_tools_are_named_with_the_package(
    tmp_path: Path, pg_source: str, pg_storage: LocalStorage
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    engine = PostgresEngine(bin_dirs=[str(empty)])
    status = await engine.probe()
    assert not status.ok and "pg_dump" in status.message and "postgresql-client" in status.message
    with pytest.raises(EngineError) as caught:
        await _dump(engine, pg_storage, target(pg_source))
    assert "not found" in caught.value.message and "apt-get install" in caught.value.message
    with pytest.raises(EngineError):
        await engine.restore(target(pg_source), _chunks(b"PGDMP"), compression=Compression.none)
    report = await engine.check_connection(target(pg_source))
    assert not report.ok and "not found" in report.message


def _wrappers(directory: Path, major: int, marker: Path) -> None:
    """Real tools that say they are ``major`` (and note any run beyond ``--version``)."""
    directory.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        path = directory / tool
        path.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "{tool} (PostgreSQL) {major}.1"; exit 0; fi\n'
            f'[ "{tool}" = psql ] || echo "{tool} $*" >> {marker}\n'
            f'exec /usr/bin/{tool} "$@"\n'
        )
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


async def test_a_server_newer_than_the_tools_is_refused_before_any_work(
    tmp_path: Path, pg_source: str, pg_storage: LocalStorage
) -> None:
    marker = tmp_path / "ran"
    _wrappers(tmp_path / "old", 12, marker)
    engine = PostgresEngine(bin_dirs=[str(tmp_path / "old")])
    server = pg_sql("SHOW server_version_num").strip()
    with pytest.raises(EngineError) as caught:
        await _dump(engine, pg_storage, target(pg_source))
    message = caught.value.message
    assert f"the server is PostgreSQL {int(server) // 10000}" in message
    assert "pg_dump here is 12" in message and "postgresql-client-" in message
    assert caught.value.kind is FailureKind.permanent
    assert not marker.exists()  # neither pg_dump nor pg_restore ran
    report = await engine.check_connection(target(pg_source))
    assert not report.ok and "older than the server" in report.message


async def test_the_client_of_the_servers_major_is_chosen(tmp_path: Path, pg_source: str) -> None:
    """Several majors installed: the server's own is used, a newer one only without it."""
    marker = tmp_path / "ran"
    major = int(pg_sql("SHOW server_version_num").strip()) // 10000
    _wrappers(tmp_path / "newer", major + 2, marker)
    _wrappers(tmp_path / "same", major, marker)
    engine = PostgresEngine(bin_dirs=[str(tmp_path / "newer"), str(tmp_path / "same")])
    tools, server = await engine._tools_for(target(pg_source))
    assert tools.major == major == server.major
    assert tools.pg_dump == str(tmp_path / "same" / "pg_dump")
    engine = PostgresEngine(bin_dirs=[str(tmp_path / "newer")])
    tools, _ = await engine._tools_for(target(pg_source))
    assert tools.major == major + 2


def _chunks(data: bytes) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        yield data

    return gen()


async def test_a_damaged_or_foreign_file_is_refused_on_restore(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_source: str, pg_names: list[str]
) -> None:
    writer = await pg_storage.open_writer("good.dump.zst")
    await dump_into(pg_engine, target(pg_source), writer, compression=Compression.zstd)
    await writer.commit()
    stored = (pg_storage.root / "good.dump.zst").read_bytes()
    damaged = bytearray(stored)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 64):
        damaged[i] ^= 0xFF
    copy = support.unique_name("dbkeep_pg_bad")
    pg_names.append(copy)
    await pg_engine.recreate_database(target(copy))
    with pytest.raises(EngineError) as caught:
        await pg_engine.restore(target(copy), _chunks(bytes(damaged)), compression=Compression.zstd)
    assert "damaged" in caught.value.message or "pg_restore" in caught.value.message
    with pytest.raises(EngineError) as caught:
        await pg_engine.restore(
            target(copy), _chunks(b"-- MariaDB dump 10.19\nCREATE TABLE t (a int);\n"),
            compression=Compression.none,
        )  # fmt: skip
    assert "not a PostgreSQL custom-format archive" in caught.value.message
    with pytest.raises(EngineError) as caught:
        await pg_engine.declared_objects(_chunks(b"not an archive"), compression=Compression.none)
    assert "not a readable PostgreSQL archive" in caught.value.message
    # Nothing was loaded: the copy is still empty.
    assert "sales" not in pg_sql("SELECT nspname FROM pg_namespace", database=copy)
