"""Parallel restore: same result as one client, the server's reason when a section fails."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError, FailureKind, TargetSpec
from app.engines.mysql.credentials import defaults_file
from app.engines.mysql.engine import MySQLEngine, build_client_argv
from app.engines.mysql.parallel import (
    Begin,
    Data,
    DumpSplitter,
    End,
    Event,
    Header,
    defer_indexes,
    restore_parallel,
)
from app.engines.mysql.parallel import loader as parallel_loader
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.conftest import checksums_by_table, definitions, fill_big_table

# Beside the shared fixture's tables: secondary, unique, prefix and full-text indexes, foreign
# keys both ways, a CHECK constraint, an AUTO_INCREMENT column that is not the primary key, a
# table without a primary key, a multi-statement trigger and a view built on another view that
# sorts before it (so it is created while its dependency is still a placeholder).
EXTRA_SCHEMA = """
SET NAMES utf8mb4;
CREATE TABLE products (
  sku CHAR(8) NOT NULL,
  id INT NOT NULL AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  description TEXT,
  price DECIMAL(8, 2) NOT NULL CHECK (price >= 0),
  PRIMARY KEY (sku),
  KEY ix_products_id (id),
  UNIQUE KEY uq_products_name (name),
  KEY ix_products_name_price (name(10), price),
  FULLTEXT KEY ft_products_description (description)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_lines (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT NOT NULL,
  sku CHAR(8) NOT NULL,
  quantity INT NOT NULL,
  KEY ix_lines_sku (sku),
  CONSTRAINT fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT fk_lines_product FOREIGN KEY (sku) REFERENCES products (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE tags (name VARCHAR(20) NOT NULL, UNIQUE KEY (name)) ENGINE=InnoDB;
INSERT INTO products (sku, name, description, price)
  SELECT CONCAT('P', LPAD(seq, 7, '0')), CONCAT('product ', seq),
         CONCAT('a fine thing number ', seq), seq / 3 FROM seq_1_to_2000;
INSERT INTO order_lines (order_id, sku, quantity)
  SELECT 1 + seq % 3, CONCAT('P', LPAD(1 + seq % 2000, 7, '0')), 1 + seq % 4
  FROM seq_1_to_5000;
INSERT INTO tags VALUES ('red'), ('green');
CREATE VIEW a_top_customers AS SELECT id, name FROM big_spenders WHERE spent > 120;
DELIMITER //
CREATE TRIGGER lines_check BEFORE INSERT ON order_lines FOR EACH ROW
BEGIN
  -- Table structure for table `not_a_marker`: a comment inside a DELIMITER block
  IF NEW.quantity <= 0 THEN
    SET NEW.quantity = 1;
  END IF;
END //
DELIMITER ;
"""


@pytest.fixture
def rich(populated: str) -> str:
    support.admin_sql(EXTRA_SCHEMA, database=populated)
    return populated


@pytest.fixture
def scratch(target: TargetSpec) -> Iterator[TargetSpec]:
    name = support.unique_name("dbkeep_scratch")
    support.admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield target.with_database(name)
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


def portable_definitions(database: str) -> dict[str, list[str]]:
    """``definitions`` with this database's name taken out (views qualify their tables)."""
    return {
        kind: [row.replace(f"`{database}`.", "") for row in rows]
        for kind, rows in definitions(database).items()
    }


def show_create_tables(database: str) -> dict[str, str]:
    tables = support.admin_sql(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema='{database}' AND table_type='BASE TABLE'"
    ).split()
    return {t: support.admin_sql(f"SHOW CREATE TABLE `{database}`.`{t}`") for t in tables}


async def dump_to(engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, key: str) -> None:
    writer = await storage.open_writer(key)
    await dump_into(engine, target, writer, compression=Compression(key.rsplit(".", 1)[-1]))
    await writer.commit()


async def chunks_of(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def run_parallel(
    target: TargetSpec,
    source: AsyncIterator[bytes],
    *,
    compression: Compression = Compression.none,
    spool: Path,
    parallelism: int = 3,
) -> None:
    tools = await MySQLEngine().tools()
    assert tools.client is not None
    with defaults_file(target) as defaults:
        argv = build_client_argv(
            tools.client, defaults, database=target.database, sandbox=tools.sandbox
        )
        await restore_parallel(
            target,
            source,
            compression=compression,
            client_argv=argv,
            parallelism=parallelism,
            tool="mariadb",
            spool_dir=spool,
        )


def client_children() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() in {"mariadb", "mysql"} and proc.status() != "zombie":
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def spooled_files(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []


# ---- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [Compression.zstd, Compression.gzip])
async def test_engine_restores_in_parallel_with_the_same_result(
    storage: LocalStorage,
    target: TargetSpec,
    rich: str,
    scratch: TargetSpec,
    tmp_path: Path,
    compression: Compression,
) -> None:
    engine = MySQLEngine(restore_parallelism=3, spool_dir=tmp_path / "spool")
    key = f"rich.sql.{compression.value}"
    await dump_to(engine, storage, target, key)
    seen: list[int] = []

    async def on_progress(done: int) -> None:
        seen.append(done)

    await engine.restore(
        scratch, storage.read(key), compression=compression, on_progress=on_progress
    )

    assert checksums_by_table(scratch.database) == checksums_by_table(rich)
    assert portable_definitions(scratch.database) == portable_definitions(rich)
    # Deferred indexes and foreign keys come back exactly as they were declared.
    assert show_create_tables(scratch.database) == show_create_tables(rich)
    assert spooled_files(tmp_path / "spool") == []
    assert client_children() == []
    # The trigger, the procedure and the foreign keys work after the restore.
    support.admin_sql(
        "CALL add_order(2, 5.00); INSERT INTO order_lines (order_id, sku, quantity) "
        "VALUES (1, 'P0000001', 0);",
        database=scratch.database,
    )
    assert (
        support.admin_sql(
            "SELECT quantity FROM order_lines ORDER BY id DESC LIMIT 1", database=scratch.database
        ).strip()
        == "1"
    )
    with pytest.raises(RuntimeError, match="foreign key constraint fails"):
        support.admin_sql(
            "INSERT INTO order_lines (order_id, sku, quantity) VALUES (1, 'NOPE', 1)",
            database=scratch.database,
        )


async def test_restore_over_existing_tables_replaces_them(
    storage: LocalStorage, target: TargetSpec, rich: str, tmp_path: Path
) -> None:
    engine = MySQLEngine(restore_parallelism=2, spool_dir=tmp_path / "spool")
    await dump_to(engine, storage, target, "again.sql.zstd")
    expected = checksums_by_table(rich)
    support.admin_sql(
        "SET foreign_key_checks=0; UPDATE products SET price = 0; DELETE FROM orders; "
        "DROP VIEW a_top_customers;",
        database=rich,
    )

    await engine.restore(target, storage.read("again.sql.zstd"), compression=Compression.zstd)

    assert checksums_by_table(rich) == expected
    assert "a_top_customers" in support.admin_sql("SHOW FULL TABLES", database=rich)


async def test_restoring_over_tables_linked_by_foreign_keys_never_fails_on_a_lock(
    storage: LocalStorage, scratch: TargetSpec, tmp_path: Path
) -> None:
    # MariaDB's DROP TABLE of a parent takes its children's locks without waiting, so two
    # sessions replacing a parent and its child used to fail about one restore in five with
    # "Lock wait timeout exceeded" at once; the section that meets the lock now runs again.
    support.admin_sql(
        "CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100)) "
        "ENGINE=InnoDB; "
        "CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, "
        "FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB; "
        "INSERT INTO customers (name) VALUES ('Ada'), ('Alan'); "
        "INSERT INTO orders (customer_id) VALUES (1), (2), (1);",
        database=scratch.database,
    )
    engine = MySQLEngine(restore_parallelism=2, spool_dir=tmp_path / "spool")
    await dump_to(engine, storage, scratch, "linked.sql.none")
    expected = checksums_by_table(scratch.database)

    for _ in range(25):
        support.admin_sql(
            "INSERT INTO customers (name) VALUES ('Added Later')", database=scratch.database
        )
        await engine.restore(scratch, storage.read("linked.sql.none"), compression=Compression.none)
        assert checksums_by_table(scratch.database) == expected
    assert spooled_files(tmp_path / "spool") == []


FAKE_CLIENT = """
import pathlib, sys
state = pathlib.Path(sys.argv[1])
script = sys.stdin.buffer.read()
if b"Table structure for table `parent`" in script:
    tries = state / "parent-tries"
    tries.write_text(str(int(tries.read_text()) + 1 if tries.exists() else 1))
    if sys.argv[2] == "always" or not (state / "parent-failed").exists():
        (state / "parent-failed").touch()
        sys.stderr.write("ERROR 1205 (HY000) at line 4: Lock wait timeout exceeded; "
                         "try restarting transaction\\n")
        sys.exit(1)
with (state / "loaded").open("ab") as log:
    log.write(script)
"""
LINKED_DUMP = (
    b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
    b"--\n-- Table structure for table `parent`\n--\n\n"
    b"DROP TABLE IF EXISTS `parent`;\nINSERT INTO `parent` VALUES (1);\n"
    b"--\n-- Table structure for table `child`\n--\n\n"
    b"DROP TABLE IF EXISTS `child`;\nINSERT INTO `child` VALUES (1);\n"
    b"-- Dump completed on 2024-01-01\n"
)


async def restore_with_fake_client(tmp_path: Path, mode: str) -> None:
    """Runs LINKED_DUMP through FAKE_CLIENT sessions."""
    (tmp_path / "fake.py").write_text(FAKE_CLIENT)
    await restore_parallel(
        TargetSpec(scheme="mysql", host="127.0.0.1", port=3306, user="u", database="d"),
        chunks_of(LINKED_DUMP, 16),
        compression=Compression.none,
        client_argv=[sys.executable, str(tmp_path / "fake.py"), str(tmp_path), mode],
        parallelism=2,
        tool="mariadb",
        spool_dir=tmp_path / "spool",
    )


async def test_a_section_that_meets_a_lock_conflict_runs_again_from_its_start(
    tmp_path: Path,
) -> None:
    await restore_with_fake_client(tmp_path, "once")

    assert (tmp_path / "parent-tries").read_text() == "2"
    loaded = (tmp_path / "loaded").read_bytes()
    assert loaded.count(b"DROP TABLE IF EXISTS `parent`;") == 1
    assert loaded.count(b"DROP TABLE IF EXISTS `child`;") == 1
    assert spooled_files(tmp_path / "spool") == []


async def test_a_lock_held_by_someone_else_fails_the_restore_after_a_few_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_loader, "_LONE_RETRY_DELAYS", (0.01, 0.02))

    with pytest.raises(EngineError, match="Lock wait timeout exceeded") as caught:
        await restore_with_fake_client(tmp_path, "always")

    assert caught.value.kind is FailureKind.transient
    # The first try, then one per delay once the other section had finished.
    tries = int((tmp_path / "parent-tries").read_text())
    assert 3 <= tries <= 4
    assert spooled_files(tmp_path / "spool") == []


async def test_dump_without_sections_is_replayed_as_it_is(
    scratch: TargetSpec, tmp_path: Path
) -> None:
    script = (
        b"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));\n"
        b"INSERT INTO t VALUES (1, 'a'), (2, 'b');\n"
        b"-- Dump completed on 2024-01-01\n"
    )
    await run_parallel(scratch, chunks_of(script, 7), spool=tmp_path / "spool")
    assert support.admin_sql("SELECT COUNT(*) FROM t", database=scratch.database).strip() == "2"


async def test_header_with_other_statements_falls_back_to_one_session(
    storage: LocalStorage, target: TargetSpec, rich: str, scratch: TargetSpec, tmp_path: Path
) -> None:
    await dump_to(MySQLEngine(), storage, target, "plain.sql.none")
    dump = storage.path("plain.sql.none").read_bytes()
    # A statement in the header that must run once, not once per session.
    first_marker = dump.index(b"\n--\n-- ")
    dump = dump[:first_marker] + b"\nCREATE TABLE run_once (id INT);\n" + dump[first_marker:]

    await run_parallel(scratch, chunks_of(dump, 65536), spool=tmp_path / "spool")

    restored = checksums_by_table(scratch.database)
    assert restored.pop("run_once")
    assert restored == checksums_by_table(rich)
    assert show_create_tables(scratch.database).keys() - {"run_once"} == set(
        show_create_tables(rich)
    )
    for kind in ("routines", "views", "triggers", "events"):
        assert portable_definitions(scratch.database)[kind] == portable_definitions(rich)[kind]


# ---- failures ------------------------------------------------------------------------------


async def test_bad_statement_in_one_table_fails_with_the_server_reason(
    storage: LocalStorage, target: TargetSpec, rich: str, scratch: TargetSpec, tmp_path: Path
) -> None:
    await dump_to(MySQLEngine(), storage, target, "bad.sql.none")
    dump = storage.path("bad.sql.none").read_bytes()
    anchor = b"/*!40000 ALTER TABLE `order_lines` DISABLE KEYS */;\n"
    at = dump.index(anchor) + len(anchor)
    bad_line = dump[:at].count(b"\n") + 1
    dump = dump[:at] + b"INSERT INTO `order_lines` VALUES (1, 'P1') garbage here;\n" + dump[at:]

    with pytest.raises(EngineError) as caught:
        await run_parallel(scratch, chunks_of(dump, 65536), spool=tmp_path / "spool")

    message = caught.value.message
    assert caught.value.kind is FailureKind.permanent
    assert f"error 1064 at line {bad_line}:" in message, message
    assert "garbage" not in message  # the server's quote of the SQL is dropped
    assert target.password not in message and "\n" not in message
    assert client_children() == []
    assert spooled_files(tmp_path / "spool") == []


async def test_failure_while_other_sessions_load_stops_them_all(
    target: TargetSpec, scratch: TargetSpec, tmp_path: Path
) -> None:
    header = (
        b"/*!40101 SET NAMES utf8mb4 */;\n"
        b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
    )
    sleepy = (
        b"--\n-- Table structure for table `slow`\n--\n\n"
        b"CREATE TABLE `slow` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n"
        b") ENGINE=InnoDB;\nSELECT SLEEP(60);\n"
    )
    broken = b"--\n-- Table structure for table `broken`\n--\n\nCREATE TABLE `broken` (oops);\n"
    dump = header + sleepy + broken + b"-- Dump completed on 2024-01-01\n"

    started = asyncio.get_running_loop().time()
    with pytest.raises(EngineError, match="error 1064 at line 16"):
        await run_parallel(scratch, chunks_of(dump), spool=tmp_path / "spool")
    assert asyncio.get_running_loop().time() - started < 30  # the sleeping session was killed
    assert client_children() == []


@pytest.mark.parametrize("compression", [Compression.none, Compression.zstd])
async def test_truncated_dump_is_refused(
    storage: LocalStorage,
    target: TargetSpec,
    rich: str,
    scratch: TargetSpec,
    tmp_path: Path,
    compression: Compression,
) -> None:
    key = f"cut.sql.{compression.value}"
    await dump_to(MySQLEngine(), storage, target, key)
    data = storage.path(key).read_bytes()
    cut = data[: len(data) * 2 // 3]

    with pytest.raises(EngineError) as caught:
        await run_parallel(
            scratch, chunks_of(cut, 65536), compression=compression, spool=tmp_path / "spool"
        )
    assert "incomplete dump" in caught.value.message or "damaged" in caught.value.message
    assert client_children() == []


async def test_cancelling_kills_every_client_and_removes_the_spool(
    storage: LocalStorage, target: TargetSpec, rich: str, scratch: TargetSpec, tmp_path: Path
) -> None:
    await dump_to(MySQLEngine(), storage, target, "stall.sql.none")
    dump = storage.path("stall.sql.none").read_bytes()
    held = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield dump[: len(dump) // 2]
        held.set()
        await asyncio.Event().wait()  # never more bytes

    spool = tmp_path / "spool"
    task = asyncio.create_task(run_parallel(scratch, stalls(), spool=spool))
    await asyncio.wait_for(held.wait(), 30)
    for _ in range(300):  # the sessions following the unfinished sections are running
        if client_children():
            break
        await asyncio.sleep(0.05)
    assert client_children()
    assert stat.S_IMODE(next(spool.iterdir()).stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in spooled_files(spool))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client_children() == []
    assert list(spool.iterdir()) == []


async def test_spool_disk_full_is_reported(
    storage: LocalStorage,
    target: TargetSpec,
    rich: str,
    scratch: TargetSpec,
    tmpfs: Callable[..., Path],
) -> None:
    await dump_to(MySQLEngine(), storage, target, "full.sql.none")
    dump = storage.path("full.sql.none").read_bytes()
    small = tmpfs("64k")
    with pytest.raises(EngineError, match="not enough disk space"):
        await run_parallel(scratch, chunks_of(dump, 65536), spool=small)
    assert client_children() == []


async def test_spool_left_by_a_killed_worker_is_removed(
    scratch: TargetSpec, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    host = socket.gethostname()
    abandoned = spool / f"dbkeep-restore-{dead.pid}@{host}@x1"
    elsewhere = spool / f"dbkeep-restore-{dead.pid}@another-host@x2"
    for directory in (abandoned, elsewhere):
        directory.mkdir()
        (directory / "00001.sql").write_bytes(b"SELECT 1;\n")

    script = b"SELECT 1;\n-- Dump completed on 2024-01-01\n"
    await run_parallel(scratch, chunks_of(script), spool=spool)

    assert not abandoned.exists()
    assert elsewhere.exists()  # another container's pid: not ours to judge


# ---- splitting -----------------------------------------------------------------------------

SAMPLE = b"""/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19
--
/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;

--
-- Table structure for table `a`
--

DROP TABLE IF EXISTS `a`;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `a` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `b_id` int(11) NOT NULL,
  `name` varchar(10) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_name` (`name`),
  CONSTRAINT `fk_b` FOREIGN KEY (`b_id`) REFERENCES `b` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

--
-- Dumping data for table `a`
--

LOCK TABLES `a` WRITE;
INSERT INTO `a` VALUES
(1,1,'-- x'),
(2,1,'y');
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN
-- Table structure for table `fake`
SET NEW.name = 'z'; END */;;
DELIMITER ;

--
-- Temporary table structure for view `v`
--

/*!50001 CREATE VIEW `v` AS SELECT 1 AS `id` */;

--
-- Table structure for table `b`
--

CREATE TABLE `b` (
  `id` int(11) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;

--
-- Dumping routines for database 'd'
--

-- Dump completed on 2024-01-01
"""


def sections(events: list[Event]) -> list[tuple[str, str, bytes, bytes, bytes]]:
    """(kind, name, data, epilogue, foreign keys) per section; the header as kind "header"."""
    out: list[tuple[str, str, bytes, bytes, bytes]] = [("header", "", b"", b"", b"")]
    for event in events:
        kind, name, data, epilogue, fks = out[-1]
        if isinstance(event, Header):
            assert kind == "header"
            out[-1] = (kind, name, data + event.data, epilogue, fks)
        elif isinstance(event, Begin):
            out.append((event.kind, event.name, b"", b"", b""))
        elif isinstance(event, Data):
            out[-1] = (kind, name, data + event.data, epilogue, fks)
        elif isinstance(event, End):
            out[-1] = (kind, name, data, event.epilogue, event.foreign_keys)
    return out


def split(data: bytes, sizes: list[int]) -> list[Event]:
    splitter = DumpSplitter()
    events: list[Event] = []
    start = 0
    for size in sizes:
        events += splitter.feed(data[start : start + size])
        start += size
    events += splitter.feed(data[start:])
    return events + splitter.close()


def test_splitter_cuts_at_markers_only_outside_delimiter_blocks() -> None:
    found = sections(split(SAMPLE, []))
    assert [(kind, name) for kind, name, *_ in found] == [
        ("header", ""),
        ("table", "`a`"),
        ("other", "`v`"),
        ("table", "`b`"),
        ("other", "'d'"),
    ]
    _, _, a_data, a_epilogue, a_fks = found[1]
    assert b"-- Table structure for table `fake`" in a_data  # inside the trigger's block
    assert b"KEY `ix_name`" not in a_data and b"FOREIGN KEY" not in a_data
    assert b"  `name` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n)" in a_data
    assert b"ALTER TABLE `a` ADD KEY `ix_name` (`name`);\n" in a_epilogue
    assert a_epilogue.startswith(b"/*!40101 SET @saved_cs_client")
    assert a_fks == (
        b"ALTER TABLE `a` ADD CONSTRAINT `fk_b` FOREIGN KEY (`b_id`) REFERENCES `b` (`id`);\n"
    )
    assert found[3][3] == b""  # `b` has no secondary index to defer
    assert found[4][2].endswith(b"-- Dump completed on 2024-01-01\n")


def test_splitter_gives_the_same_sections_whatever_the_chunking() -> None:
    whole = sections(split(SAMPLE, []))
    rng = random.Random(7)
    for _ in range(50):
        sizes = [rng.randint(1, 40) for _ in range(rng.randint(1, 80))]
        assert sections(split(SAMPLE, sizes)) == whole
    assert sections(split(SAMPLE, [1] * len(SAMPLE))) == whole


def test_splitter_numbers_lines_like_the_dump() -> None:
    cursor = 0
    for event in split(SAMPLE, [13] * 200):
        if not isinstance(event, (Data, Header)):
            continue
        assert event.line == SAMPLE[:cursor].count(b"\n") + 1
        if SAMPLE.startswith(event.data, cursor):
            cursor += len(event.data)
        else:  # the CREATE TABLE without its deferred indexes: stands for the original
            assert event.data.startswith(b"CREATE TABLE `a`")
            cursor = SAMPLE.index(b";\n", cursor) + 2
    assert cursor == len(SAMPLE)


CREATE = (
    b"CREATE TABLE `t` (\n"
    b"  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
    b"  `code` char(3) NOT NULL,\n"
    b"  `doc` text DEFAULT NULL,\n"
    b"  PRIMARY KEY (`code`),\n"
    b"  UNIQUE KEY `uq_doc` (`doc`) USING HASH,\n"
    b"  KEY `ix_id` (`id`),\n"
    b"  KEY `ix_code_doc` (`code`,`doc`(10)),\n"
    b"  FULLTEXT KEY `ft_doc` (`doc`),\n"
    b"  CONSTRAINT `chk` CHECK (`code` <> '')\n"
    b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
)


def test_defer_indexes_keeps_what_the_load_needs() -> None:
    deferred = defer_indexes(CREATE)
    assert deferred is not None
    assert deferred.alter == b"ALTER TABLE `t` ADD KEY `ix_code_doc` (`code`,`doc`(10));\n"
    assert deferred.foreign_keys == b""
    for kept in (b"KEY `ix_id`", b"USING HASH", b"FULLTEXT KEY", b"CONSTRAINT `chk`"):
        assert kept in deferred.create
    assert b"  CONSTRAINT `chk` CHECK (`code` <> '')\n) ENGINE" in deferred.create


@pytest.mark.parametrize(
    "create",
    [
        CREATE.replace(b"  PRIMARY KEY (`code`),\n", b""),  # InnoDB would cluster on a key
        CREATE.replace(b"ENGINE=InnoDB", b"ENGINE=MyISAM"),
        CREATE.replace(b"utf8mb4;\n", b"utf8mb4\n PARTITION BY KEY (`code`) PARTITIONS 2;\n"),
        CREATE.replace(b"  `doc` text", b"  PERIOD FOR p (`a`, `b`),\n  `doc` text"),
    ],
    ids=["no-primary-key", "myisam", "partitioned", "unknown-line"],
)
def test_defer_indexes_leaves_unusual_tables_alone(create: bytes) -> None:
    assert defer_indexes(create) is None


# ---- memory ----------------------------------------------------------------------------------

# A fresh interpreter, so its peak (VmHWM) shows only this work; parameters (with the password)
# arrive on stdin, never in argv or the environment.
MEMORY_CHILD = r"""
import asyncio, json, sys
from pathlib import Path

from app.backups.dumping import dump_into
from app.pipeline.compression import Compression
from app.engines.base import TargetSpec
from app.engines.mysql import MySQLEngine
from app.storage.local import LocalStorage

params = json.loads(sys.stdin.read())


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


async def main():
    engine = MySQLEngine(restore_parallelism=2, spool_dir=Path(params["spool"]))
    storage = LocalStorage(Path(params["dir"]))
    target = TargetSpec.from_url(params["url"])
    writer = await storage.open_writer("big.sql.zstd")
    await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()
    scratch = target.with_database(params["restore_into"])
    await engine.recreate_database(scratch)
    base = status("VmRSS")
    await engine.restore(scratch, storage.read("big.sql.zstd"), compression=Compression.zstd)
    print(json.dumps({"base": base, "peak": status("VmHWM")}))


asyncio.run(main())
"""


@pytest.mark.slow
def test_parallel_restore_of_a_big_database_keeps_memory_flat(
    target: TargetSpec, populated: str, mariadb_password: str, tmp_path: Path
) -> None:
    fill_big_table(populated, 1_000_000)  # about 160 MB of dump, most of it in one table
    scratch = support.unique_name("dbkeep_scratch")
    params = {
        "url": support.target_url(populated, password=mariadb_password),
        "dir": str(tmp_path / "backups"),
        "spool": str(tmp_path / "spool"),
        "restore_into": scratch,
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD],
            input=json.dumps(params),
            capture_output=True,
            text=True,
            timeout=900,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert checksums_by_table(scratch) == checksums_by_table(populated)
    finally:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{scratch}`")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    growth = report["peak"] - report["base"]
    assert growth < 64 * 1024 * 1024, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    assert spooled_files(tmp_path / "spool") == []
