"""What the dump options, the database's re-creation and the dump's inventory keep exactly."""

from __future__ import annotations

import pytest

from app.backups.dumping import dump_into
from app.config import Settings
from app.engines import mysql_engine
from app.engines.base import DbObject, EngineError, TargetSpec, missing_objects
from app.engines.mysql import MySQLEngine
from app.engines.mysql.inventory import DumpInventory, classify_statement
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.fingerprint import fingerprint_diff, schema_fingerprint


@pytest.fixture
def parallel_engine(settings: Settings) -> MySQLEngine:
    return mysql_engine(settings.model_copy(update={"restore_parallelism": 2}))


async def dump(engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, key: str) -> None:
    await storage.check_writable()
    writer = await storage.open_writer(key)
    await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()


async def copy_of(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, *, single_stream: bool
) -> TargetSpec:
    """A scratch database made from a dump of ``target`` the way a restore makes it."""
    await dump(engine, storage, target, "copy.sql.zst")
    scratch = target.with_database(support.unique_name("dbkeep_scratch"))
    options = (await engine.inspect(target)).options
    await engine.recreate_database(scratch, options=options)
    await engine.restore(
        scratch,
        storage.read("copy.sql.zst"),
        compression=Compression.zstd,
        single_stream=single_stream,
    )
    return scratch


async def test_recreating_keeps_the_character_set_and_collation(
    engine: MySQLEngine, target: TargetSpec, target_database: str
) -> None:
    support.admin_sql(
        f"ALTER DATABASE `{target_database}` CHARACTER SET latin1 COLLATE latin1_german2_ci;"
    )
    support.admin_sql("CREATE TABLE t (id INT PRIMARY KEY)", database=target_database)
    state = await engine.inspect(target)
    assert state.options is not None and state.options.collation == "latin1_german2_ci"
    assert DbObject("table", "t") in state.objects

    await engine.recreate_database(target, options=state.options)

    again = await engine.inspect(target)
    assert again.options == state.options
    assert again.objects == frozenset()


@pytest.mark.parametrize("single_stream", [True, False], ids=["single", "parallel"])
async def test_history_of_system_versioned_tables_is_kept(
    parallel_engine: MySQLEngine,
    storage: LocalStorage,
    target: TargetSpec,
    target_database: str,
    single_stream: bool,
) -> None:
    support.admin_sql(
        "CREATE TABLE prices (id INT PRIMARY KEY, price INT) WITH SYSTEM VERSIONING;"
        "INSERT INTO prices VALUES (1, 10), (2, 20);"
        "UPDATE prices SET price = price + 1; DELETE FROM prices WHERE id = 2;",
        database=target_database,
    )
    history = "SELECT id, price, row_start, row_end FROM prices FOR SYSTEM_TIME ALL ORDER BY 1, 3"
    rows = support.admin_sql(history, database=target_database)
    assert len(rows.splitlines()) == 4

    scratch = await copy_of(parallel_engine, storage, target, single_stream=single_stream)
    try:
        # Every version, with its own row_start and row_end (not regenerated at the restore).
        assert support.admin_sql(history, database=scratch.database) == rows
        source, copy = schema_fingerprint(target_database), schema_fingerprint(scratch.database)
        assert source == copy, fingerprint_diff(source, copy)
    finally:
        await parallel_engine.drop_database(scratch)


async def test_transaction_precise_history_does_not_break_the_backup(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    # mariadb-dump --dump-history refuses such tables (exit 6): they are dumped without it.
    support.admin_sql(
        "CREATE TABLE tv (id INT PRIMARY KEY, x INT, "
        "s BIGINT UNSIGNED AS ROW START INVISIBLE, e BIGINT UNSIGNED AS ROW END INVISIBLE, "
        "PERIOD FOR SYSTEM_TIME(s, e)) ENGINE=InnoDB WITH SYSTEM VERSIONING;"
        "INSERT INTO tv VALUES (1, 1); UPDATE tv SET x = 2;",
        database=target_database,
    )
    scratch = await copy_of(engine, storage, target, single_stream=True)
    try:
        assert support.admin_sql("SELECT id, x FROM tv", database=scratch.database) == "1\t2\n"
    finally:
        await engine.drop_database(scratch)


async def test_a_sequence_as_a_column_default_restores(
    parallel_engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    # With LOCK TABLES around the rows (--add-locks) this fails: 1100, `seq` was not locked.
    support.admin_sql(
        "CREATE SEQUENCE seq START WITH 10;"
        "CREATE TABLE t (id INT PRIMARY KEY DEFAULT NEXTVAL(seq), v INT, KEY by_v (v));"
        "INSERT INTO t (v) VALUES (1), (2), (3);",
        database=target_database,
    )
    scratch = await copy_of(parallel_engine, storage, target, single_stream=False)
    try:
        assert support.admin_sql("SELECT id, v FROM t ORDER BY id", database=scratch.database) == (
            "10\t1\n11\t2\n12\t3\n"
        )
        existing = (await parallel_engine.inspect(scratch)).objects
        declared = await parallel_engine.declared_objects(
            storage.read("copy.sql.zst"), compression=Compression.zstd
        )
        assert DbObject("index", "t.by_v") in declared
        assert missing_objects(declared, existing) == set()
    finally:
        await parallel_engine.drop_database(scratch)


async def test_binary_values_survive_a_text_dump_byte_exact(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    awkward = b"\x00\\'\"\r\n\x1a\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\xff\xfe" + bytes(range(256))
    data = awkward * 50 + bytes(reversed(range(256))) * 50
    support.admin_sql(
        "CREATE TABLE b (id INT PRIMARY KEY, v LONGBLOB, vb VARBINARY(400), bn BINARY(16));"
        f"INSERT INTO b VALUES (1, 0x{data.hex()}, 0x{awkward[:400].hex()}, "
        f"0x{awkward[:16].hex()});",
        database=target_database,
    )
    digests = "SELECT SHA2(v, 256), SHA2(vb, 256), SHA2(bn, 256) FROM b"
    expected = support.admin_sql(digests, database=target_database)
    scratch = await copy_of(engine, storage, target, single_stream=True)
    try:
        assert support.admin_sql(digests, database=scratch.database) == expected
    finally:
        await engine.drop_database(scratch)


@pytest.mark.slow
async def test_a_row_too_big_to_restore_is_said_when_the_backup_is_taken(
    engine: MySQLEngine, storage: LocalStorage, target: TargetSpec, target_database: str
) -> None:
    limit = int(support.admin_sql("SELECT @@max_allowed_packet").strip())
    # The server took it (12 MiB), but every NUL byte is written as two in the dump.
    size = limit * 3 // 4
    support.admin_sql(
        "CREATE TABLE sparse (id INT PRIMARY KEY, data LONGBLOB);"
        "CREATE TABLE small (id INT PRIMARY KEY, data LONGBLOB);"
        f"INSERT INTO sparse VALUES (1, REPEAT(0x00, {size}));"
        "INSERT INTO small VALUES (1, REPEAT(0x00, 1000));",
        database=target_database,
    )
    await storage.check_writable()
    writer = await storage.open_writer("sparse.sql.zst")
    outcome = await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()

    assert outcome.warning is not None
    assert outcome.warning.startswith("Table `sparse` has a row of 24.0 MiB as dumped"), outcome
    assert "max_allowed_packet of at least 26 MiB" in outcome.warning
    # And it is true: this server refuses the row back.
    scratch = target.with_database(support.unique_name("dbkeep_scratch"))
    try:
        await engine.recreate_database(scratch)
        with pytest.raises(EngineError):
            await engine.restore(
                scratch, storage.read("sparse.sql.zst"), compression=Compression.zstd
            )
    finally:
        await engine.drop_database(scratch)

    support.admin_sql("DELETE FROM sparse", database=target_database)
    writer = await storage.open_writer("fits.sql.zst")
    assert (await dump_into(engine, target, writer, compression=Compression.zstd)).warning is None
    await writer.abort()


# ---- reading what a dump creates ---------------------------------------------------------


ROUTINE_WITH_TRAPS = b"""/*!40101 SET NAMES utf8mb4 */;
--
-- Table structure for table `real`
--

DROP TABLE IF EXISTS `real`;
CREATE TABLE `real` (
  `id` int(11) NOT NULL,
  `parent` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u` (`parent`),
  CONSTRAINT `to_parent` FOREIGN KEY (`parent`) REFERENCES `real` (`id`)
) ENGINE=InnoDB;
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` PROCEDURE `tricky`()
BEGIN
  SELECT '
CREATE TABLE `fake` (
DELIMITER ;
-- Table structure for table `fake2`
CREATE VIEW `fake_view` AS SELECT 1;
';
END ;;
DELIMITER ;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 trigger db.`Trg`
  before insert on `real` for each row set @x = 1 */;;
"""


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_the_inventory_follows_statements_not_text_inside_them(chunk: int) -> None:
    inventory = DumpInventory()
    for start in range(0, len(ROUTINE_WITH_TRAPS), chunk):
        inventory.feed(ROUTINE_WITH_TRAPS[start : start + chunk])
    inventory.close()

    assert inventory.objects() == {
        DbObject("table", "real"),
        DbObject("index", "real.PRIMARY"),
        DbObject("index", "real.u"),
        DbObject("foreign key", "real.to_parent"),
        DbObject("procedure", "tricky"),
        DbObject("trigger", "Trg"),
    }


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (b"CREATE SEQUENCE `s` start with 1", DbObject("sequence", "s")),
        (
            b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`a b`@`%` SQL SECURITY "
            b"DEFINER */\n/*!50001 VIEW `v``x` AS select 1",
            DbObject("view", "v`x"),
        ),
        (
            b"CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS int",
            DbObject("function", "f"),
        ),
        (
            b"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e` ON",
            DbObject("event", "e"),
        ),
        (b"INSERT INTO `t` VALUES ('CREATE TABLE x')", None),
        (b"/*!40101 SET NAMES utf8mb4 */", None),
    ],
)
def test_statements_are_classified(statement: bytes, found: DbObject | None) -> None:
    assert classify_statement(statement) == found
