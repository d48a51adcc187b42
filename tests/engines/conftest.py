"""Engine test fixtures: the engine, local storage, a target holding every kind of object."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from app.config import Settings
from app.engines import mysql_engine
from app.engines.base import TargetSpec
from app.engines.mysql import MySQLEngine
from app.storage.base import StorageWriter
from app.storage.local import LocalStorage
from tests import support
from tests.engines.pg_support import pg_engine, pg_names, pg_source, pg_storage  # noqa: F401
from tests.storage.conftest import tmpfs  # noqa: F401  (shared fixture)

SCHEMA = """
SET NAMES utf8mb4;
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  note TEXT CHARACTER SET utf8mb4,
  balance DECIMAL(12, 4) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  profile JSON,
  avatar BLOB
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  total DECIMAL(10, 2) NOT NULL,
  placed_at DATETIME NOT NULL,
  KEY (customer_id),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE audit (
  id INT AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT NOT NULL,
  message VARCHAR(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO customers (name, note, balance, created_at, profile, avatar) VALUES
  ('Zoë 🐘', 'emoji 😀 and CJK 漢字, quotes '' " and a backslash \\\\', 1234.5678,
   '2024-02-29 23:59:59.123456', '{"tags": ["a", "b"], "vip": true}', UNHEX('00FF10E2808B0A0D00')),
  ('Bob', NULL, -0.0001, '1999-12-31 00:00:00', NULL, NULL),
  ('Ünïcödé', 'line1\\nline2\\ttab', 0, '2038-01-19 03:14:08', '[]', RANDOM_BYTES(64));

INSERT INTO customers (name, note, balance, created_at, profile, avatar)
  SELECT CONCAT('user-', seq), REPEAT('x', seq % 50), seq / 7, NOW(6), JSON_OBJECT('n', seq),
         RANDOM_BYTES(16)
  FROM seq_1_to_300;

CREATE VIEW big_spenders AS
  SELECT c.id, c.name, SUM(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id
  GROUP BY c.id, c.name HAVING SUM(o.total) > 100;

CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
  INSERT INTO audit (order_id, message) VALUES (NEW.id, CONCAT('order of ', NEW.total));

DELIMITER //
CREATE PROCEDURE add_order(IN cid INT, IN amount DECIMAL(10, 2))
BEGIN
  INSERT INTO orders (customer_id, total, placed_at) VALUES (cid, amount, NOW());
END //
DELIMITER ;

CALL add_order(1, 150.00);
CALL add_order(1, 20.50);
CALL add_order(2, 99.99);

CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
  DO DELETE FROM audit WHERE id < 0;
"""


def definitions(database: str) -> dict[str, list[str]]:
    """Every routine, view, trigger and event definition of ``database``."""
    queries = {
        "routines": "SELECT routine_name, routine_type, routine_definition FROM "
        "information_schema.routines WHERE routine_schema='{db}' ORDER BY routine_name",
        "views": "SELECT table_name, view_definition FROM information_schema.views "
        "WHERE table_schema='{db}' ORDER BY table_name",
        "triggers": "SELECT trigger_name, event_manipulation, event_object_table, "
        "action_timing, action_statement FROM information_schema.triggers "
        "WHERE trigger_schema='{db}' ORDER BY trigger_name",
        "events": "SELECT event_name, event_definition, interval_value, interval_field, status "
        "FROM information_schema.events WHERE event_schema='{db}' ORDER BY event_name",
        "tables": "SELECT table_name, engine, table_collation FROM information_schema.tables "
        "WHERE table_schema='{db}' ORDER BY table_name",
    }
    return {
        kind: support.admin_sql(sql.format(db=database)).splitlines()
        for kind, sql in queries.items()
    }


@pytest.fixture
def engine(settings: Settings) -> MySQLEngine:
    return mysql_engine(settings)


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.backup_dir)


@pytest.fixture
def target(settings: Settings) -> TargetSpec:
    assert settings.target_url is not None
    return TargetSpec.from_url(settings.target_url.get_secret_value())


@pytest.fixture
def populated(target_database: str) -> str:
    """The target database with tables, a view, a trigger, a procedure and an event."""
    support.admin_sql(SCHEMA, database=target_database)
    return target_database


def leftover_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def checksums_by_table(database: str) -> dict[str, str]:
    """``support.table_checksums`` keyed by bare table name, to compare two databases."""
    checksums = support.table_checksums(database)
    return {name.rsplit(".", 1)[-1]: value for name, value in checksums.items()}


class GatedWriter:
    """Wraps a writer and stops accepting bytes after ``after`` of them until ``gate`` is set.

    Back-pressure then holds the dump (and the server's query) mid-stream, so a test can act on
    a dump that is still running without racing it.
    """

    def __init__(self, inner: StorageWriter, *, after: int) -> None:
        self.key = inner.key
        self.inner = inner
        self.after = after
        self.written = 0
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    def thread_writer(self) -> None:
        return None

    async def write(self, chunk: bytes | memoryview) -> None:
        self.written += len(chunk)
        if self.written >= self.after:
            self.reached.set()
            await self.gate.wait()
        await self.inner.write(chunk)

    async def commit(self) -> int:
        return await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


def fill_big_table(database: str, rows: int) -> None:
    """About 160 bytes of dump per row, generated server-side in a second or two."""
    support.admin_sql(
        "CREATE TABLE big (id INT PRIMARY KEY, a CHAR(64), b VARCHAR(100)) ENGINE=InnoDB;"
        f"INSERT INTO big SELECT seq, SHA2(seq, 256), MD5(seq) FROM seq_1_to_{rows};",
        database=database,
    )


def dump_processes() -> list[psutil.Process]:
    """Our mariadb-dump/mysqldump children, at any depth."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() in {"mariadb-dump", "mysqldump"} and proc.status() != "zombie":
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found
