"""PostgreSQL round trips against the local server: every hard case comes back exactly."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError, missing_objects
from app.engines.postgres import PostgresEngine
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.pg_support import create_database, fingerprint, live_children, pg_sql, target


async def backup(
    engine: PostgresEngine, storage: LocalStorage, database: str, compression: Compression,
    key: str = "one.dump",
) -> tuple[str, int]:  # fmt: skip
    writer = await storage.open_writer(key)
    outcome = await dump_into(engine, target(database), writer, compression=compression)
    await writer.commit()
    assert outcome.server_version and outcome.server_version.split(".")[0].isdigit()
    assert "pg_dump" in outcome.tool_version
    return key, outcome.raw_bytes


@pytest.mark.parametrize(
    ("compression", "single_stream"),
    [(Compression.zstd, False), (Compression.gzip, True), (Compression.none, False)],
)
async def test_every_hard_case_comes_back_exactly(
    pg_engine: PostgresEngine,
    pg_storage: LocalStorage,
    pg_source: str,
    pg_names: list[str],
    compression: Compression,
    single_stream: bool,
) -> None:
    before = fingerprint(pg_source)
    key, raw_bytes = await backup(pg_engine, pg_storage, pg_source, compression)
    copy = support.unique_name("dbkeep_pg_copy")
    pg_names.append(copy)
    await pg_engine.recreate_database(target(copy))
    seen: list[int] = []

    async def progress(done: int) -> None:
        seen.append(done)

    await pg_engine.restore(
        target(copy), pg_storage.read(key), compression=compression,
        on_progress=progress, single_stream=single_stream,
    )  # fmt: skip
    after = fingerprint(copy)
    assert after == before
    # What the comparison covered: the hard cases are really there.
    assert '"Ünïcødé"."Tâble ñame"' in after["tables"]
    assert after["sequences"]["sales.invoice_no"] == before["sequences"]["sales.invoice_no"]
    assert "large object|2" in after["counts"] and "materialized view|1" in after["counts"]
    assert seen and seen[-1] == raw_bytes  # progress reported, ending at the archive's size
    # What the archive declares is what the server has afterwards.
    declared = await pg_engine.declared_objects(pg_storage.read(key), compression=compression)
    kinds = {o.kind for o in declared}
    assert {"table", "view", "materialized view", "sequence", "function", "procedure",
            "trigger", "type", "schema", "extension"} <= kinds  # fmt: skip
    state = await pg_engine.inspect(target(copy))
    assert missing_objects(declared, state.objects) == set()
    assert state.options is not None and state.options.character_set == "UTF8"


async def test_restore_over_an_existing_database_replaces_its_objects(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_source: str
) -> None:
    """--clean --if-exists: restoring into the database itself, changed since, brings back
    the backup's rows and sequence positions (the runner's keep_existing_objects path)."""
    before = fingerprint(pg_source)
    key, _ = await backup(pg_engine, pg_storage, pg_source, Compression.zstd)
    pg_sql(
        "DELETE FROM people WHERE id < 100; SELECT nextval('sales.invoice_no');"
        "UPDATE sales.invoices SET total = NULL; DROP VIEW sales.big_invoices;",
        database=pg_source,
    )
    assert fingerprint(pg_source) != before
    await pg_engine.restore(target(pg_source), pg_storage.read(key), compression=Compression.zstd)
    assert fingerprint(pg_source) == before


async def test_recreate_keeps_the_encoding_and_locale(
    pg_engine: PostgresEngine, pg_names: list[str]
) -> None:
    name = support.unique_name("dbkeep_pg_loc")
    pg_names.append(name)
    pg_sql(
        f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'SQL_ASCII' "
        "LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    options = (await pg_engine.inspect(target(name))).options
    assert options is not None and options.character_set == "SQL_ASCII"
    await pg_engine.recreate_database(target(name), options=options)
    assert (await pg_engine.inspect(target(name))).options == options
    await pg_engine.drop_database(target(name))
    assert (await pg_engine.inspect(target(name))).options is None


async def test_inventory_and_connection_test(pg_engine: PostgresEngine, pg_source: str) -> None:
    databases = await pg_engine.list_databases(target(pg_source))
    assert pg_source in databases
    assert not {"postgres", "template0", "template1"} & set(databases)
    report = await pg_engine.check_connection(target(pg_source))
    assert report.ok, report.message
    assert report.server_version and report.server_version.startswith(
        pg_sql("SHOW server_version").split()[0].split(".")[0]
    )
    assert pg_source in report.databases
    tools = await pg_engine.probe()
    assert tools.ok and tools.dump_version and "PostgreSQL" in tools.dump_version
    size = await pg_engine.estimate_size(target(pg_source))
    assert size is not None and size > 1_000_000


async def test_no_secret_in_argv_environment_files_or_logs(
    pg_storage: LocalStorage,
    pg_source: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A role with a password: while its dump runs, no process dbkeep started carries the
    password in its argv or environment; the passfile is 0600 in a 0700 directory and gone
    afterwards."""
    password = "s3cr:et\\pw-" + os.urandom(6).hex()
    role = support.unique_name("dbkeep_pg_role")
    pg_sql(
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT pg_read_all_data TO {role};",
    )
    try:
        engine = PostgresEngine(spool_dir=tmp_path / "spool")
        spec = target(pg_source, user=role, password=password)
        assert password not in repr(spec)
        writer = await pg_storage.open_writer("secret.dump")
        seen: list[str] = []
        passfiles: list[tuple[int, int]] = []
        paths: list[Path] = []
        async with engine.open_dump(spec) as dump:
            me = psutil.Process()
            for child in me.children(recursive=True):
                with_env = child.environ()
                env_text = " ".join(f"{k}={v}" for k, v in with_env.items())
                seen.append(" ".join(child.cmdline()) + " " + env_text)
                assert "PGPASSWORD" not in with_env
                if "PGPASSFILE" in with_env:
                    path = Path(with_env["PGPASSFILE"])
                    paths.append(path)
                    modes = (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777)
                    passfiles.append(modes)
            async for chunk in dump.source:  # type: ignore[union-attr]
                await writer.write(chunk)
        await writer.abort()
        assert seen, "no child process was seen"
        assert all(password not in line for line in seen)
        assert passfiles and set(passfiles) == {(0o600, 0o700)}
        assert not [p for p in paths if p.parent.exists()]  # removed with their directory
        assert password not in caplog.text
    finally:
        pg_sql(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.slow
async def test_cancel_mid_dump_stops_pg_dump_and_its_server_session(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_names: list[str]
) -> None:
    name = support.unique_name("dbkeep_pg_big")
    pg_names.append(name)
    create_database(name)
    pg_sql(
        "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
        "FROM generate_series(1, 600000) g;",
        database=name,
    )
    progress: list[int] = []
    started = asyncio.Event()

    async def on_progress(done: int) -> None:
        progress.append(done)
        started.set()

    writer = await pg_storage.open_writer("big.dump")
    write = writer.write

    async def slow_write(chunk: bytes) -> None:  # a slow destination: the dump lasts seconds
        await asyncio.sleep(0.05)
        await write(chunk)

    writer.write = slow_write  # type: ignore[method-assign]
    task = asyncio.create_task(
        dump_into(pg_engine, target(name), writer, compression=Compression.none,
                  on_progress=on_progress)
    )  # fmt: skip
    await asyncio.wait_for(started.wait(), 60)
    assert live_children("pg_dump")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert progress and progress[0] > 0
    assert live_children("pg_dump") == []
    for _ in range(50):
        sessions = pg_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' "
            "AND application_name = 'dbkeep'"
        ).strip()
        if sessions == "0":
            break
        await asyncio.sleep(0.2)
    assert sessions == "0"


async def test_a_truncated_archive_is_refused_at_restore(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_source: str, pg_names: list[str]
) -> None:
    key, _ = await backup(pg_engine, pg_storage, pg_source, Compression.none)
    path = pg_storage.root / key
    assert path.exists()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    copy = support.unique_name("dbkeep_pg_trunc")
    pg_names.append(copy)
    await pg_engine.recreate_database(target(copy))
    with pytest.raises(EngineError) as caught:
        await pg_engine.restore(target(copy), pg_storage.read(key), compression=Compression.none)
    assert "pg_restore" in caught.value.message
    assert str(path.parent) not in caught.value.message


@pytest.mark.slow
async def test_cancel_mid_restore_stops_pg_restore_and_removes_the_spool(
    pg_engine: PostgresEngine, pg_storage: LocalStorage, pg_names: list[str], tmp_path: Path
) -> None:
    name = support.unique_name("dbkeep_pg_bigr")
    pg_names.append(name)
    create_database(name)
    pg_sql(
        "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
        "FROM generate_series(1, 600000) g; CREATE INDEX ON big (pad);",
        database=name,
    )
    key, _ = await backup(pg_engine, pg_storage, name, Compression.zstd)
    copy = support.unique_name("dbkeep_pg_bigc")
    pg_names.append(copy)
    await pg_engine.recreate_database(target(copy))
    task = asyncio.create_task(
        pg_engine.restore(target(copy), pg_storage.read(key), compression=Compression.zstd)
    )

    def restoring() -> list[int]:
        return live_children("pg_restore")

    for _ in range(300):
        if restoring() or task.done():
            break
        await asyncio.sleep(0.05)
    assert restoring(), "pg_restore never started"
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert restoring() == []
    spool = tmp_path / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []
    for _ in range(50):
        sessions = pg_sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{copy}'").strip()
        if sessions == "0":
            break
        await asyncio.sleep(0.2)
    assert sessions == "0"
