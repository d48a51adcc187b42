"""A database over 200 MB streams through the pipeline with flat memory, both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engines.base import TargetSpec
from tests import support
from tests.engines.conftest import checksums_by_table

pytestmark = pytest.mark.slow

MAX_GROWTH_BYTES = 100 * 1024 * 1024
# A backup spliced into the zstd binary: the dump never enters the process and the compressed
# side is hashed and written from one reused buffer, so the process barely grows (~2 MiB
# measured; 12 MiB when each chunk was new bytes).
MAX_SPLICED_BACKUP_GROWTH_BYTES = 6 * 1024 * 1024

# Runs in a fresh interpreter so its peak (VmHWM) reflects only this work. Parameters (with the
# password) arrive on stdin, never in argv or the environment.
CHILD = r"""
import asyncio, json, sys
from pathlib import Path

from app.pipeline.compression import Compression
from app.engines.base import TargetSpec
from app.engines.mysql import MySQLEngine
from app.pipeline import codecs
from app.storage.local import LocalStorage
from app.backups.dumping import dump_into

params = json.loads(sys.stdin.read())
if not params["external"]:
    codecs.zstd_binary = lambda: None


def rss_bytes(field="VmRSS"):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


async def main():
    engine = MySQLEngine()
    storage = LocalStorage(Path(params["dir"]))
    target = TargetSpec.from_url(params["url"])
    compression = Compression(params["compression"])
    await engine.probe()  # imports and tool detection happen before the baseline
    base = rss_bytes()
    writer = await storage.open_writer("big.sql")
    outcome = await dump_into(engine, target, writer, compression=compression)
    await writer.commit()
    result = {"base": base, "raw": outcome.raw_bytes, "stored": outcome.stored_bytes}
    result["backup_peak"] = rss_bytes("VmHWM")
    if params["restore_into"]:
        scratch = target.with_database(params["restore_into"])
        await engine.recreate_database(scratch)
        await engine.restore(scratch, storage.read("big.sql"), compression=compression)
    # Not ru_maxrss: Linux carries the parent's (pytest's) peak into it across fork and exec.
    result["peak"] = rss_bytes("VmHWM")
    print(json.dumps(result))


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def big_database(mariadb_password: str) -> Iterator[str]:
    name = support.unique_name("dbkeep_big")
    support.admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    support.admin_sql(
        "CREATE TABLE big (id INT PRIMARY KEY, a CHAR(64), b VARCHAR(200), c DOUBLE)"
        " ENGINE=InnoDB;"
        "INSERT INTO big SELECT seq, SHA2(seq, 256), REPEAT(MD5(seq), 4), RAND(seq)"
        " FROM seq_1_to_1000000;"
        "ANALYZE TABLE big;",
        database=name,
    )
    yield name
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.mark.parametrize(
    ("compression", "external", "restore"),
    [("zstd", True, True), ("zstd", False, True), ("none", True, False)],
    ids=["zstd-binary+restore", "zstd-library+restore", "none"],
)
def test_big_database_streams_with_flat_memory(
    big_database: str,
    mariadb_password: str,
    tmp_path: Path,
    compression: str,
    external: bool,
    restore: bool,
) -> None:
    size = int(
        support.admin_sql(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables "
            f"WHERE table_schema = '{big_database}'"
        )
    )
    assert size >= 200 * 1000 * 1000
    scratch = support.unique_name("dbkeep_scratch") if restore else None
    params = {
        "url": support.target_url(big_database, password=mariadb_password),
        "dir": str(tmp_path / "backups"),
        "compression": compression,
        "external": external,
        "restore_into": scratch,
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD],
            input=json.dumps(params),
            capture_output=True,
            text=True,
            timeout=900,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads(result.stdout)
        if scratch:
            assert checksums_by_table(scratch) == checksums_by_table(big_database)
    finally:
        if scratch:
            support.admin_sql(f"DROP DATABASE IF EXISTS `{scratch}`")
    assert report["raw"] >= 200 * 1000 * 1000
    growth = report["peak"] - report["base"]
    assert growth < MAX_GROWTH_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    if external and compression == "zstd":
        backup_growth = report["backup_peak"] - report["base"]
        assert backup_growth < MAX_SPLICED_BACKUP_GROWTH_BYTES, (
            f"the backup grew the process by {backup_growth / 2**20:.1f} MiB"
        )
    assert mariadb_password not in result.stdout + result.stderr
    assert TargetSpec.from_url(params["url"]).database == big_database
