"""Exact restores through the parallel splitter: what a real schema declares comes back as it was.

Each case builds a schema in a fresh database, dumps it as dbkeep does (``MySQLEngine.dump``,
the real mariadb-dump), restores the file with the parallel restore into another fresh database
and compares the two with ``schema_fingerprint`` (``SHOW CREATE`` of every object, ``CHECKSUM
TABLE`` of every table, objects counted by kind). Then unit tests of the splitter's lexer.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.backups.dumping import dump_into
from app.engines.base import EngineError, TargetSpec
from app.engines.mysql import MySQLEngine, parallel
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from tests import support
from tests.engines.fingerprint import fingerprint_diff, schema_fingerprint


@pytest.fixture
def scratch(target: TargetSpec) -> Iterator[TargetSpec]:
    name = support.unique_name("dbkeep_exact")
    support.admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield target.with_database(name)
    support.admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


async def dump_of(
    schema: str,
    target: TargetSpec,
    storage: LocalStorage,
    compression: Compression = Compression.zstd,
) -> str:
    """Build ``schema`` in the (fresh) target database and dump it as dbkeep does."""
    support.admin_sql(schema, database=target.database)
    key = f"exact.sql.{compression.value}"
    writer = await storage.open_writer(key)
    await dump_into(MySQLEngine(), target, writer, compression=compression)
    await writer.commit()
    return key


async def parallel_round_trip(
    schema: str, target: TargetSpec, scratch: TargetSpec, storage: LocalStorage, tmp_path: Path
) -> None:
    key = await dump_of(schema, target, storage)
    engine = MySQLEngine(restore_parallelism=3, spool_dir=tmp_path / "spool")
    await engine.restore(scratch, storage.read(key), compression=Compression.zstd)
    source, restored = schema_fingerprint(target.database), schema_fingerprint(scratch.database)
    assert fingerprint_diff(source, restored) == []
    assert restored == source
    assert not list((tmp_path / "spool").rglob("*.sql"))


# ---- round trips ---------------------------------------------------------------------------

# A sequence's lines come before the first table: the dump can't be split, and loads as written.
SEQUENCE_SCHEMA = """
CREATE SEQUENCE invoice_numbers START WITH 1000 INCREMENT BY 7;
CREATE TABLE customers (
  id INT NOT NULL AUTO_INCREMENT,
  email VARCHAR(100) NOT NULL,
  city VARCHAR(40),
  PRIMARY KEY (id),
  UNIQUE KEY uq_email (email),
  KEY ix_city (city)
) ENGINE=InnoDB;
CREATE TABLE invoices (
  id INT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  total DECIMAL(10, 2) NOT NULL,
  KEY ix_total (total),
  CONSTRAINT fk_invoice_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
INSERT INTO customers (email, city)
  SELECT CONCAT('c', seq, '@example.org'), CONCAT('city ', seq % 7) FROM seq_1_to_200;
INSERT INTO invoices SELECT NEXTVAL(invoice_numbers), 1 + seq % 200, seq / 3 FROM seq_1_to_500;
"""


async def test_a_database_with_a_sequence_keeps_its_keys_and_foreign_keys(
    target: TargetSpec, scratch: TargetSpec, storage: LocalStorage, tmp_path: Path
) -> None:
    await parallel_round_trip(SEQUENCE_SCHEMA, target, scratch, storage, tmp_path)
    keys = support.admin_sql(
        "SELECT COUNT(*) FROM information_schema.statistics "
        f"WHERE table_schema='{scratch.database}' AND index_name IN ('uq_email', 'ix_city', "
        "'ix_total', 'fk_invoice_customer')"
    )
    assert keys.strip() == "4"
    with pytest.raises(RuntimeError, match="foreign key constraint fails"):
        support.admin_sql("INSERT INTO invoices VALUES (1, 9999, 1)", database=scratch.database)


# Text that looks like the dump's own lines, inside literals of routines, triggers, views and
# table definitions; quotes of every kind, escapes, comments holding quotes.
LITERAL_SCHEMA = r"""
CREATE TABLE notes (
  id INT NOT NULL PRIMARY KEY,
  body VARCHAR(200) COMMENT 'semi; colon
-- Table structure for table `in_a_comment`',
  tag VARCHAR(20),
  KEY ix_tag (tag),
  CONSTRAINT chk_body CHECK (body <> 'x;
  KEY `fake` (`body`),
')
) ENGINE=InnoDB;
INSERT INTO notes VALUES (1, 'it''s \\ "fine" -- really', 'a'), (2, 'DELIMITER ;;', 'b'),
  (3, '
-- Dumping data for table `notes`
', 'c');
DELIMITER //
CREATE PROCEDURE tricky()
BEGIN
  -- a comment with a quote ' in it
  # and another with a "double" one
  /* a block comment: ' " ` */
  SELECT 'x
DELIMITER ;
-- Table structure for table `evil`
CREATE TABLE evil (id int);
' AS s, "it's \"quoted\" ;; -- not a comment
/* nor this */ # nor this" AS t, 'back\\slash\' -- ' AS u;
END //
CREATE FUNCTION label(n INT) RETURNS VARCHAR(100) DETERMINISTIC
RETURN CONCAT('n=', n, ';
-- Dumping routines for database ''x''
DELIMITER ;')//
CREATE TRIGGER notes_tag BEFORE INSERT ON notes FOR EACH ROW
BEGIN
  SET NEW.tag = CONCAT(IFNULL(NEW.tag, ''), '
DELIMITER ;
-- Table structure for table `evil_too`
CREATE TABLE evil_too (id int);
');
END //
CREATE EVENT sweep ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
DO BEGIN
  DELETE FROM notes WHERE body = ';
-- Table structure for table `evil_event`
';
END //
DELIMITER ;
CREATE VIEW notes_view AS SELECT id, 'a
-- Table structure for table `evil_view`
' AS s FROM notes;
"""


async def test_text_inside_literals_is_never_cut_nor_run(
    target: TargetSpec, scratch: TargetSpec, storage: LocalStorage, tmp_path: Path
) -> None:
    await parallel_round_trip(LITERAL_SCHEMA, target, scratch, storage, tmp_path)
    tables = support.admin_sql("SHOW TABLES", database=scratch.database).split()
    assert not [t for t in tables if t.startswith("evil")]
    assert "evil" in support.admin_sql("CALL tricky()", database=scratch.database)


# Index order: a SPATIAL key and a key led by the AUTO_INCREMENT column stay in the CREATE; the
# keys declared before them must stay too, so SHOW CREATE TABLE lists them in the same order.
ORDER_SCHEMA = """
CREATE TABLE places (
  id INT NOT NULL AUTO_INCREMENT,
  name VARCHAR(40) NOT NULL,
  kind INT,
  spot POINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_name (name),
  SPATIAL KEY sp_spot (spot),
  KEY ix_kind (kind),
  UNIQUE KEY uq_name_kind (name, kind),
  FULLTEXT KEY ft_name (name)
) ENGINE=InnoDB;
CREATE TABLE counters (
  code CHAR(3) NOT NULL,
  seq INT NOT NULL AUTO_INCREMENT,
  label VARCHAR(20),
  PRIMARY KEY (code),
  KEY ix_label (label),
  KEY ix_seq (seq),
  KEY ix_label_seq (label, seq)
) ENGINE=InnoDB;
INSERT INTO places (name, kind, spot) SELECT CONCAT('p', seq), seq % 5, POINT(seq, seq)
  FROM seq_1_to_300;
INSERT INTO counters (code, label) SELECT LPAD(seq, 3, '0'), CONCAT('l', seq % 9)
  FROM seq_1_to_300;
"""


async def test_keys_keep_their_declared_order(
    target: TargetSpec, scratch: TargetSpec, storage: LocalStorage, tmp_path: Path
) -> None:
    await parallel_round_trip(ORDER_SCHEMA, target, scratch, storage, tmp_path)


# SQL modes the lexer won't follow (ANSI_QUOTES in a trigger, NO_BACKSLASH_ESCAPES in a
# routine): the splitter stops there and the rest loads as written, after every table; a view
# placeholder read before that point still runs before the final view.
GIVE_UP_SCHEMA = r"""
CREATE TABLE a_first (id INT PRIMARY KEY, v INT, KEY ix_v (v)) ENGINE=InnoDB;
CREATE TABLE m_middle (id INT PRIMARY KEY, note VARCHAR(40), KEY ix_note (note)) ENGINE=InnoDB;
CREATE TABLE z_last (
  id INT PRIMARY KEY, first_id INT, KEY ix_first (first_id),
  CONSTRAINT fk_first FOREIGN KEY (first_id) REFERENCES a_first (id)
) ENGINE=InnoDB;
CREATE VIEW b_view AS SELECT z.id, a.v FROM z_last z JOIN a_first a ON a.id = z.first_id;
INSERT INTO a_first SELECT seq, seq % 10 FROM seq_1_to_100;
INSERT INTO m_middle SELECT seq, CONCAT('n', seq) FROM seq_1_to_100;
INSERT INTO z_last SELECT seq, 1 + seq % 100 FROM seq_1_to_100;
SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES');
CREATE TRIGGER m_quotes BEFORE INSERT ON m_middle FOR EACH ROW SET NEW."note" = 'x';
SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');
DELIMITER //
CREATE PROCEDURE windows_path() BEGIN SELECT 'C:\dir\' AS p, '
-- Table structure for table `evil`
' AS q; END //
DELIMITER ;
"""


# Only a routine the lexer is unsure of: the rest goes on in the last session, in dump order.
GIVE_UP_IN_ROUTINES_SCHEMA = r"""
CREATE TABLE t (id INT PRIMARY KEY, v INT, KEY ix_v (v)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 3 FROM seq_1_to_50;
CREATE VIEW a_view AS SELECT id FROM t;
SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');
DELIMITER //
CREATE PROCEDURE windows_path() BEGIN SELECT 'C:\dir\' AS p, '
DELIMITER ;
-- Table structure for table `evil`
CREATE TABLE evil (id int);
' AS q; END //
DELIMITER ;
"""


@pytest.mark.parametrize(
    "schema", [GIVE_UP_SCHEMA, GIVE_UP_IN_ROUTINES_SCHEMA], ids=["in-a-table", "in-routines"]
)
async def test_what_the_lexer_is_unsure_of_loads_as_written(
    target: TargetSpec, scratch: TargetSpec, storage: LocalStorage, tmp_path: Path, schema: str
) -> None:
    await parallel_round_trip(schema, target, scratch, storage, tmp_path)
    assert support.admin_sql("CALL windows_path()", database=scratch.database).startswith("C:\\")
    assert "evil" not in support.admin_sql("SHOW TABLES", database=scratch.database).split()


# ---- the fallback replays the dump byte for byte ---------------------------------------------

RECORDING_CLIENT = """
import pathlib, sys, os
out = pathlib.Path(sys.argv[1]) / f"session-{os.getpid()}.sql"
out.write_bytes(sys.stdin.buffer.read())
"""


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def sessions_for(dump: bytes, tmp_path: Path, chunk: int = 4096) -> list[bytes]:
    """What each client session received when ``dump`` was restored in parallel."""
    (tmp_path / "rec.py").write_text(RECORDING_CLIENT)
    (tmp_path / "rec").mkdir()
    await parallel.restore_parallel(
        TargetSpec(scheme="mysql", host="127.0.0.1", port=3306, user="u", database="d"),
        chunks_of(dump, chunk),
        compression=Compression.none,
        client_argv=[sys.executable, str(tmp_path / "rec.py"), str(tmp_path / "rec")],
        parallelism=3,
        tool="mariadb",
        spool_dir=tmp_path / "spool",
    )
    return [p.read_bytes() for p in sorted((tmp_path / "rec").iterdir())]


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
async def test_a_dump_that_cant_be_split_goes_to_one_session_byte_for_byte(
    target: TargetSpec, storage: LocalStorage, tmp_path: Path, chunk: int
) -> None:
    key = await dump_of(SEQUENCE_SCHEMA, target, storage, Compression.none)
    raw = storage.path(key).read_bytes()
    assert b"KEY `ix_city`" in raw and b"CREATE SEQUENCE" in raw
    assert await sessions_for(raw, tmp_path, chunk) == [raw]


# ---- the lexer -------------------------------------------------------------------------------


def lex(*lines: bytes) -> parallel.SqlLexer:
    lexer = parallel.SqlLexer()
    for line in lines:
        lexer.line(line)
    return lexer


@pytest.mark.parametrize(
    "lines",
    [
        [b"SELECT 'it''s';\n"],
        [b"SELECT 'a\\'b;', \"c\\\"d;\", `e``f;`;\n"],
        [b"SELECT 'two\n", b"lines; -- still a string\n", b"';\n"],
        [b"SELECT 1; -- a comment with ' a quote\n"],
        [b'SELECT 1; # a comment with " a quote\n'],
        [b"/* a comment with ' and ; */ SELECT 1;\n"],
        [b"/* a comment\n", b"over ' lines */;\n"],
        [b"/*!40101 SET NAMES utf8mb4 */;\n"],
        [b"/*M!100100 SELECT 'x' */;\n"],
        [b"SELECT 1 --1;\n"],
        [b"SELECT \\N;\n"],
        [b"/*M!999999\\- enable the sandbox mode */ \n"],
        [b"SELECT 'back\\\\';\n"],
    ],
)
def test_lexer_finds_the_statement_end_past_quotes_and_comments(lines: list[bytes]) -> None:
    lexer = lex(*lines)
    assert lexer.uncertain == ""
    assert lexer.boundary


@pytest.mark.parametrize(
    ("lines", "quote", "comment", "pending"),
    [
        ([b"SELECT 'open;\n"], ord("'"), 0, True),
        ([b'SELECT "a\\";\n'], ord('"'), 0, True),
        ([b"SELECT 'a'';\n"], ord("'"), 0, True),  # a doubled quote doesn't close it
        ([b"SELECT 1 /* ; \n"], 0, 1, True),
        ([b"/*!50003 CREATE TRIGGER t BEGIN\n"], 0, 2, True),
        ([b"SELECT 1\n", b"-- Table structure for table `x`\n"], 0, 0, True),
    ],
)
def test_lexer_knows_when_a_statement_goes_on(
    lines: list[bytes], quote: int, comment: int, pending: bool
) -> None:
    lexer = lex(*lines)
    assert (lexer.quote, lexer.comment, lexer.pending, lexer.uncertain) == (
        quote,
        comment,
        pending,
        "",
    )


def test_lexer_follows_delimiter_changes() -> None:
    lexer = lex(b"DELIMITER ;;\n", b"CREATE PROCEDURE p() BEGIN SELECT 1; END\n")
    assert lexer.delimiter == b";;" and lexer.pending
    lexer.line(b";;\n")
    assert lexer.boundary and not lexer.clean
    lexer.line(b"delimiter ;\n")  # the client's commands ignore case
    assert lexer.clean
    # Inside a literal DELIMITER is text.
    lexer = lex(b"DELIMITER ;;\n", b"SELECT 'x\n", b"DELIMITER ;\n")
    assert lexer.delimiter == b";;" and lexer.quote == ord("'")
    lexer.line(b"';;\n")
    assert lexer.boundary and lexer.delimiter == b";;"


@pytest.mark.parametrize(
    "lines",
    [
        [b"SELECT 1 \\G\n"],  # a client command
        [b"source /etc/passwd\n"],
        [b"SELECT 1 delimiter ;\n"],  # the client would change the delimiter there
        [b"SELECT `a\\`b`;\n"],  # backslash in a backtick name
        [b"/*!50003 SET sql_mode = 'NO_BACKSLASH_ESCAPES' */;\n"],
        [b"/*!50003 SELECT 1; */;\n"],  # the delimiter inside a conditional comment
        [b"/*!50003 SELECT /* nested */ 1 */;\n"],
        [b"DELIMITER 'x'\n"],
    ],
)
def test_lexer_says_what_it_cant_be_sure_of(lines: list[bytes]) -> None:
    assert lex(*lines).uncertain


def section_names(dump: bytes, chunk: int) -> list[tuple[str, str]]:
    splitter = parallel.DumpSplitter()
    events = []
    for start in range(0, len(dump), chunk):
        events += splitter.feed(dump[start : start + chunk])
    events += splitter.close()
    return [(e.kind, e.name) for e in events if isinstance(e, parallel.Begin)]


HEADER = (
    b"/*!40101 SET NAMES utf8mb4 */;\n"
    b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
)
TABLE_A = (
    b"--\n-- Table structure for table `a`\n--\n\n"
    b"CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
    b"--\n-- Dumping data for table `a`\n--\n\n"
    b"INSERT INTO `a` VALUES\n(1),\n(2);\n"
)
ROUTINES = b"--\n-- Dumping routines for database 'd'\n--\n"
END = b"-- Dump completed on 2024-01-01\n"


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 16])
def test_splitter_ignores_markers_inside_a_routine_literal(chunk: int) -> None:
    routine = (
        b"DELIMITER ;;\n"
        b"CREATE PROCEDURE `p`()\nbegin select 'x\n"
        b"DELIMITER ;\n"
        b"-- Table structure for table `evil`\n"
        b"CREATE TABLE evil (id int);\n"
        b"'; end\n;;\n"
        b"DELIMITER ;\n"
    )
    dump = HEADER + TABLE_A + ROUTINES + routine + END
    assert section_names(dump, chunk) == [("table", "`a`"), ("other", "'d'")]


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
def test_splitter_gives_up_at_the_last_boundary_and_passes_the_rest_on(chunk: int) -> None:
    trigger = (
        b"/*!50003 SET sql_mode = 'ANSI_QUOTES' */ ;\n"
        b"DELIMITER ;;\n/*!50003 CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET x=1 */;;\n"
        b"DELIMITER ;\n"
    )
    table_b = TABLE_A.replace(b"`a`", b"`b`")
    dump = HEADER + TABLE_A + trigger + table_b + END
    splitter = parallel.DumpSplitter()
    events = []
    for start in range(0, len(dump), chunk):
        events += splitter.feed(dump[start : start + chunk])
    events += splitter.close()
    begins = [e for e in events if isinstance(e, parallel.Begin)]
    assert [(b.kind, b.name) for b in begins] == [("table", "`a`"), ("rest", "")]
    rest_at = events.index(begins[1])
    rest = b"".join(bytes(e.data) for e in events[rest_at:] if isinstance(e, parallel.Data))
    assert rest == trigger + table_b + END  # verbatim, from the statement it was unsure of
    assert begins[1].line == (HEADER + TABLE_A).count(b"\n") + 1


def test_splitter_refuses_to_cut_a_statement_it_can_not_see_the_end_of() -> None:
    rows = b"INSERT INTO `a` VALUES\n(1)\nDELIMITER ;;\n"  # a statement goes on at DELIMITER
    dump = HEADER + TABLE_A.replace(b"INSERT INTO `a` VALUES\n(1),\n(2);\n", rows) + END
    with pytest.raises(EngineError, match="can't be split safely"):
        section_names(dump, 1 << 16)


def test_only_the_last_keys_of_each_kind_are_deferred() -> None:
    create = (
        b"CREATE TABLE `t` (\n"
        b"  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
        b"  `a` int(11) DEFAULT NULL,\n"
        b"  `g` point NOT NULL,\n"
        b"  PRIMARY KEY (`id`),\n"
        b"  UNIQUE KEY `uq_a` (`a`),\n"
        b"  KEY `ka` (`a`),\n"
        b"  SPATIAL KEY `kg` (`g`),\n"
        b"  KEY `kid` (`id`,`a`),\n"
        b"  KEY `kb` (`a`,`id`)\n"
        b") ENGINE=InnoDB;\n"
    )
    deferred = parallel.defer_indexes(create)
    assert deferred is not None
    # `ka` is declared before the SPATIAL key, which stays: it stays too.
    assert (
        deferred.alter == b"ALTER TABLE `t` ADD UNIQUE KEY `uq_a` (`a`), ADD KEY `kb` (`a`,`id`);\n"
    )
    assert (
        b"  PRIMARY KEY (`id`),\n  KEY `ka` (`a`),\n  SPATIAL KEY `kg` (`g`),\n" in deferred.create
    )
    # Nothing left to defer: the CREATE is loaded as it is.
    assert (
        parallel.defer_indexes(
            create.replace(b",\n  KEY `kb` (`a`,`id`)", b"").replace(
                b"  UNIQUE KEY `uq_a` (`a`),\n", b""
            )
        )
        is None
    )


def test_a_create_table_with_a_line_break_inside_a_literal_is_not_rewritten() -> None:
    create = (
        b"CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  `v` varchar(9) DEFAULT NULL,\n"
        b"  PRIMARY KEY (`id`),\n  KEY `ix_v` (`v`),\n"
        b"  CONSTRAINT `c` CHECK (`v` <> 'x\n  KEY `fake` (`v`),\n')\n) ENGINE=InnoDB;\n"
    )
    dump = (
        HEADER
        + TABLE_A.replace(
            TABLE_A[TABLE_A.index(b"CREATE") : TABLE_A.index(b"--\n-- Dumping")], create
        )
        + END
    )
    splitter = parallel.DumpSplitter()
    events = splitter.feed(dump) + splitter.close()
    data = b"".join(bytes(e.data) for e in events if isinstance(e, parallel.Data))
    assert create in data
    assert all(not e.epilogue for e in events if isinstance(e, parallel.End))
