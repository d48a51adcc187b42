"""Each failure injected for real ends as the right EngineError, with no file and no password."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError, FailureKind, TargetSpec
from app.engines.mysql import MySQLEngine
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.conftest import GatedWriter, dump_processes, fill_big_table, leftover_files


async def _failed_dump(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    compression: Compression = Compression.zstd,
) -> EngineError:
    """Dump as the runner would: abort the writer on failure; return the error."""
    writer = await storage.open_writer("failed.sql.zst")
    with pytest.raises(EngineError) as caught:
        await dump_into(engine, target, writer, compression=compression)
    await writer.abort()
    assert leftover_files(storage.root) == []
    error = caught.value
    assert "\n" not in error.message
    if target.password:
        assert target.password not in error.message
    assert not re.search(r"(?<![\w.])/[\w.-]+/", error.message)  # no absolute paths
    return error


async def test_wrong_password(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec
) -> None:
    wrong = TargetSpec.from_url(
        support.target_url(target.database, password="wrong-" + support.unique_name("pw"))
    )
    error = await _failed_dump(engine, storage, wrong)
    assert error.kind is FailureKind.permanent
    assert error.message.startswith("access denied for user 'dbkeep_test'")


async def test_unknown_database(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec
) -> None:
    missing = target.with_database(support.unique_name("dbkeep_missing"))
    error = await _failed_dump(engine, storage, missing)
    assert error.kind is FailureKind.permanent
    assert error.message == f"unknown database '{missing.database}'"


async def test_missing_privilege(
    engine: MySQLEngine, storage: LocalStorage, populated: str
) -> None:
    user = support.unique_name("dbkeep_np")[:32]
    password = "np-" + support.unique_name("pw")
    hosts = ("localhost", "127.0.0.1", "%")
    support.admin_sql(
        "".join(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';" for host in hosts)
    )
    try:
        target = TargetSpec.from_url(support.target_url(populated, user=user, password=password))
        error = await _failed_dump(engine, storage, target)
    finally:
        support.admin_sql("".join(f"DROP USER IF EXISTS '{user}'@'{host}';" for host in hosts))
    assert error.kind is FailureKind.permanent
    assert error.message.startswith("missing privilege: Access denied for user")


async def test_broken_view(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, populated: str
) -> None:
    support.admin_sql(
        "CREATE TABLE doomed (id INT); CREATE VIEW doomed_view AS SELECT id FROM doomed;"
        "DROP TABLE doomed;",
        database=populated,
    )
    error = await _failed_dump(engine, storage, target)
    assert error.kind is FailureKind.permanent
    assert error.message.startswith("broken view: View")


async def test_server_unreachable_is_transient(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec
) -> None:
    nowhere = TargetSpec(
        scheme="mysql",
        host="127.0.0.1",
        port=1,
        user=target.user,
        password=target.password,
        database=target.database,
    )
    error = await _failed_dump(engine, storage, nowhere)
    assert error.kind is FailureKind.transient
    assert error.message.startswith("can't connect to the database server")


async def test_missing_dump_binary(
    storage: LocalStorage, target: TargetSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = MySQLEngine(dump_binary="/nonexistent/bin/mariadb-dump")
    error = await _failed_dump(configured, storage, target)
    assert error.kind is FailureKind.permanent
    assert error.message == (
        "mariadb-dump was not found: install it with: apt-get install mariadb-client"
    )
    status = await configured.probe()
    assert not status.ok and status.dump_tool is None
    assert "mariadb-dump" in status.message and "apt-get install mariadb-client" in status.message

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    error = await _failed_dump(MySQLEngine(), storage, target)
    assert error.message.startswith("mariadb-dump (or mysqldump) was not found")
    with pytest.raises(EngineError, match="mariadb \\(or mysql\\) was not found"):
        await MySQLEngine().recreate_database(target)


async def test_dump_that_exits_zero_without_its_trailer_is_incomplete(
    storage: LocalStorage, target: TargetSpec, tmp_path: Path
) -> None:
    # mariadb-dump can't be made to stop early with status 0 on demand: a stand-in does.
    fake = tmp_path / "fake-dump"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import sys\n"
        "if '--version' in sys.argv:\n"
        "    print('fake-dump  Ver 1 Distrib 10.11.19-MariaDB')\n"
        "else:\n"
        "    print('-- MariaDB dump\\nCREATE TABLE t (id INT);\\nINSERT INTO t VALUES (1')\n"
    )
    fake.chmod(0o755)
    error = await _failed_dump(MySQLEngine(dump_binary=str(fake)), storage, target)
    assert error.message.startswith("incomplete dump")
    assert error.kind is FailureKind.permanent


@pytest.mark.parametrize("compression", list(Compression))
async def test_disk_full(
    engine: MySQLEngine,
    target: TargetSpec,
    target_database: str,
    tmpfs: Callable[..., Path],
    compression: Compression,
) -> None:
    fill_big_table(target_database, 40_000)  # ~6 MB of dump (~3 MB compressed) for 1 MB of disk
    storage = LocalStorage(tmpfs("1m"))
    await storage.check_writable()
    error = await _failed_dump(engine, storage, target, compression)
    assert error.message == "disk full"
    assert error.kind is FailureKind.permanent
    assert dump_processes() == []


@pytest.mark.slow
async def test_lost_connection_mid_dump(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    fill_big_table(target_database, 300_000)  # ~45 MB: far more than pipes and sockets buffer
    writer = GatedWriter(await storage.open_writer("lost.sql"), after=4 * 1024 * 1024)
    task = asyncio.create_task(dump_into(engine, target, writer, compression=Compression.none))
    await asyncio.wait_for(writer.reached.wait(), 60)

    # While it runs: the password is not in the dump's argv or environment.
    [proc] = dump_processes()
    cmdline = proc.cmdline()
    assert cmdline[1].startswith("--defaults-extra-file=")
    assert not any(target.password in arg for arg in cmdline)
    assert not any(target.password in value for value in proc.environ().values())
    defaults = cmdline[1].split("=", 1)[1]
    assert stat.S_IMODE(os.stat(defaults).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(defaults)).st_mode) == 0o700

    [connection] = support.admin_sql(
        "SELECT id FROM information_schema.processlist "
        f"WHERE user = '{support.TEST_USER}' AND db = '{target_database}' AND command = 'Query'"
    ).split()
    support.admin_sql(f"KILL {connection}")
    writer.gate.set()

    with pytest.raises(EngineError) as caught:
        await asyncio.wait_for(task, 60)
    await writer.abort()
    assert caught.value.kind is FailureKind.transient
    assert "lost connection" in caught.value.message
    assert target.password not in caught.value.message
    assert leftover_files(storage.root) == []
    assert not os.path.exists(defaults)
    assert dump_processes() == []


@pytest.mark.slow
@pytest.mark.parametrize("compression", [Compression.zstd, Compression.none])
async def test_cancelling_the_dump_kills_its_process_group(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    target_database: str,
    compression: Compression,
) -> None:
    fill_big_table(target_database, 300_000)
    writer = GatedWriter(await storage.open_writer("cancelled.sql"), after=1024 * 1024)
    task = asyncio.create_task(dump_into(engine, target, writer, compression=compression))
    await asyncio.wait_for(writer.reached.wait(), 60)
    [proc] = dump_processes()
    compressors = [p for p in proc.parent().children() if p.name() == "zstd"]
    assert len(compressors) == (1 if compression is Compression.zstd else 0)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert not proc.is_running() or proc.status() == "zombie"
    assert dump_processes() == []
    assert all(not p.is_running() for p in compressors)
    assert leftover_files(storage.root) == []
    # The server side ends too: the dump's connection goes away once the client is killed.
    async with asyncio.timeout(10):
        while (
            support.admin_sql(
                "SELECT COUNT(*) FROM information_schema.processlist "
                f"WHERE user = '{support.TEST_USER}' AND db = '{target_database}'"
            ).strip()
            != "0"
        ):
            await asyncio.sleep(0.1)
