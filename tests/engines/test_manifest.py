"""The manifest counts a dump's rows from its stream: equal to the tables' real row counts."""

from __future__ import annotations

import random
import subprocess

import pytest

from app.backups.dumping import dump_into
from app.engines.base import TargetSpec
from app.engines.mysql import MySQLEngine
from app.engines.mysql.manifest import MySQLManifestObserver, RowCounter
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.conftest import SCHEMA

TRICKY = r"""
CREATE TABLE tricky (id INT PRIMARY KEY, s VARCHAR(200), b BLOB, j TEXT);
INSERT INTO tricky VALUES
  (1, 'a,b),(c', NULL, '(('),
  (2, 'it''s "quoted" \\ back\\slash \\'')', x'00010a0d1a27225c28292c', ')),(('),
  (3, '', '', ''),
  (4, 'new\nline\r\n and tab\t', x'5c5c5c27', 'end\\'),
  (5, '),(),(),(', x'2728292c27', NULL),
  (6, '\\\\\\\\', x'5c', '''');
CREATE TABLE empty_one (id INT PRIMARY KEY, note VARCHAR(10));
CREATE TABLE `odd ``name`` (x)` (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO `odd ``name`` (x)` VALUES (1, '(x)'), (2, 'y,(');
CREATE TABLE many (id INT PRIMARY KEY AUTO_INCREMENT, s VARCHAR(255), b VARBINARY(64));
INSERT INTO many (s, b)
  SELECT CONCAT(seq, ',(''x''),', REPEAT(')', seq % 7)), UNHEX(SHA2(seq, 256)) FROM seq_1_to_30000;
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
"""


def _feed_in_pieces(data: bytes, sizes: list[int]) -> dict[str, int]:
    counter = RowCounter()
    pos = 0
    for size in sizes:
        counter.feed(data[pos : pos + size])
        pos += size
    counter.feed(data[pos:])
    return counter.rows


def test_rows_are_counted_whatever_the_chunk_boundaries() -> None:
    dump = (
        b"-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n"
        b"INSERT INTO `t` VALUES (1,'a,(b)'),(2,'it\\'s (x)'),(3,'\\\\'),(4,'\\\\\\''),(5,NULL);\n"
        b"INSERT INTO `t` VALUES (6,'),(');\n"
        b"-- a comment with INSERT INTO `t` VALUES (1)\n"
        b"INSERT INTO `u``v` (`a`, `row_end`) VALUES (1,'x'),(2,'y');\n"
        b"CREATE TABLE `w` (\n  `id` int(11) NOT NULL\n);\n"
        b"INSERT INTO `t` VALUES (7,'\\0\\n\\r\\Z\\\"'),(8,'''(''');\n"
        # MariaDB >= 10.11 writes one row per line.
        b"INSERT INTO `t` VALUES\n(9,'a;'),\n(10,'b\\n;'),\n(11,';(');\n"
        b"INSERT INTO `x` VALUES\n(1);\n-- INSERT INTO `x` VALUES (2)\n"
        b"/*!40000 ALTER TABLE `x` ENABLE KEYS */;\n"
    )
    expected = {"t": 11, "u`v": 2, "x": 1}
    assert _feed_in_pieces(dump, []) == expected
    for step in (1, 2, 3, 5, 7, 64):
        assert _feed_in_pieces(dump, [step] * (len(dump) // step)) == expected, step
    rng = random.Random(7)
    for _ in range(50):
        sizes = [rng.randint(1, 40) for _ in range(len(dump) // 10)]
        assert _feed_in_pieces(dump, sizes) == expected


async def test_manifest_matches_the_real_counts(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    support.admin_sql(SCHEMA + TRICKY, database=target_database)
    await storage.check_writable()
    writer = await storage.open_writer("manifest.sql.zst")
    outcome = await dump_into(
        engine,
        target,
        writer,
        compression=Compression.zstd,
        observer=engine.manifest_observer(),
    )
    await writer.commit()
    assert outcome.manifest is not None
    counts = await engine.count_rows(target)
    assert counts["many"] == 30000 and counts["tricky"] == 6 and counts["empty_one"] == 0
    manifest_rows = {t["name"]: t["rows"] for t in outcome.manifest["tables"]}
    assert manifest_rows == counts
    # 30,000 rows of ~300 bytes are several extended INSERT statements.
    raw = support.admin_sql("SELECT 1")  # the server still answers after the dump
    assert raw.strip() == "1"
    objects = outcome.manifest["objects"]
    assert objects["view"] == 1
    assert objects["trigger"] == 1
    assert objects["procedure"] == 1
    assert objects["function"] == 1
    assert objects["event"] == 1
    assert outcome.manifest["server_version"] == outcome.server_version
    assert outcome.manifest["server_version"]


@pytest.mark.parametrize("compression", [Compression.none, Compression.gzip])
async def test_manifest_is_the_same_whatever_the_compression(
    engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    target_database: str,
    compression: Compression,
) -> None:
    support.admin_sql(TRICKY, database=target_database)
    await storage.check_writable()
    writer = await storage.open_writer(f"m.sql.{compression.value}")
    outcome = await dump_into(
        engine, target, writer, compression=compression, observer=engine.manifest_observer()
    )
    await writer.commit()
    assert outcome.manifest is not None
    assert {t["name"]: t["rows"] for t in outcome.manifest["tables"]} == await engine.count_rows(
        target
    )


def test_one_line_statements_are_counted_string_aware(target_database: str) -> None:
    """Older dump tools write a whole INSERT on one line, rows ``),(``-separated: the counter
    then skips strings (``--skip-extended-insert``: one statement per row, from the real tool)."""
    support.admin_sql(TRICKY, database=target_database)
    dump = subprocess.run(
        [
            "mariadb-dump", "--protocol=socket", f"--socket={support.MARIADB_SOCKET}", "-uroot",
            "--skip-extended-insert", "--routines", "--default-character-set=utf8mb4", "--",
            target_database,
        ],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    assert b"INSERT INTO `tricky` VALUES (2," in dump
    expected = {"tricky": 6, "odd `name` (x)": 2, "many": 30000}
    rng = random.Random(3)
    for size in (1, 7, 4096, 1024 * 1024):
        observer = MySQLManifestObserver()
        pos = 0
        while pos < len(dump):
            step = size if size > 1 else rng.randint(1, 300)
            observer.feed(dump[pos : pos + step])
            pos += step
        manifest = observer.result(server_version=None)
        rows = {t["name"]: t["rows"] for t in manifest["tables"]}
        assert rows == {**expected, "empty_one": 0}, size
        assert manifest["objects"]["function"] == 1


async def test_a_versioned_tables_history_rows_are_counted_on_both_sides(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    support.admin_sql(
        "CREATE TABLE v (id INT PRIMARY KEY, x INT) WITH SYSTEM VERSIONING;"
        "INSERT INTO v VALUES (1, 1), (2, 2); UPDATE v SET x = 3 WHERE id = 1;"
        "DELETE FROM v WHERE id = 2;",
        database=target_database,
    )
    await storage.check_writable()
    writer = await storage.open_writer("versioned.sql.zst")
    outcome = await dump_into(
        engine, target, writer, compression=Compression.zstd, observer=engine.manifest_observer()
    )
    await writer.commit()
    assert outcome.manifest is not None
    counts = await engine.count_rows(target)
    assert counts["v"] == 3  # one current row, two history rows
    assert {t["name"]: t["rows"] for t in outcome.manifest["tables"]} == counts
