"""SQLite test helpers: a database with the engine's hard cases, an exact picture of one, and
a writer that keeps committing while a backup runs."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from app.engines.base import TargetSpec
from app.engines.sqlite import SQLiteEngine, sqlite_target
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage

HARD_SCHEMA = """
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL COLLATE NOCASE,
  balance REAL NOT NULL DEFAULT 0,
  avatar BLOB,
  first TEXT,
  last TEXT,
  full_name TEXT GENERATED ALWAYS AS (first || ' ' || last) VIRTUAL,
  name_length INTEGER GENERATED ALWAYS AS (length(name)) STORED
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  total NUMERIC NOT NULL
);
CREATE TABLE audit (id INTEGER PRIMARY KEY, message TEXT NOT NULL);
CREATE INDEX orders_by_customer ON orders (customer_id, total DESC);
CREATE UNIQUE INDEX customers_name ON customers (name);
CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN
  INSERT INTO audit (message) VALUES ('order ' || NEW.id || ' for ' || NEW.customer_id);
END;
CREATE VIEW big_spenders AS
  SELECT c.id, c.name, SUM(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id
  GROUP BY c.id, c.name HAVING SUM(o.total) > 100;
CREATE TABLE "ünïcödé tâble" ("naïve col" TEXT, "漢字" INTEGER);
"""


def make_hard_database(path: Path, *, rows: int = 500, wal: bool = True) -> Path:
    """A database with WITHOUT ROWID, triggers, views, generated columns, BLOBs, an
    AUTOINCREMENT sequence, non-ASCII names and ``PRAGMA user_version``/``application_id``."""
    connection = sqlite3.connect(path)
    try:
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(HARD_SCHEMA)
        connection.execute("PRAGMA user_version = 42")
        connection.execute("PRAGMA application_id = 1234567")
        connection.executemany(
            "INSERT INTO customers (name, balance, avatar, first, last) VALUES (?, ?, ?, ?, ?)",
            [
                ("Zoë 🐘", 1234.5678, bytes(range(256)), "Zoë", "Ünïcödé"),
                ("Bob", -0.0001, None, "Bob", None),
                ("nul\x00inside", 0.0, b"\x00\xff\x10", "a'b", 'c"d'),
            ]
            + [(f"user-{n}", n / 7, os.urandom(n % 64), f"f{n}", f"l{n}") for n in range(rows)],
        )
        connection.executemany(
            "INSERT INTO orders (customer_id, total) VALUES (?, ?)",
            [(1 + n % 50, n * 3.25) for n in range(rows)],
        )
        connection.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?)",
            [("theme", b"dark"), ("empty", b""), ("null", None), ("ключ", os.urandom(300))],
        )
        connection.execute('INSERT INTO "ünïcödé tâble" VALUES (?, ?)', ("été", 7))
        connection.commit()
    finally:
        connection.close()
    return path


def snapshot(path: Path) -> dict[str, Any]:
    """Everything that makes the database what it is: the schema SQL, every table's rows in
    order (hidden generated columns included), the pragmas a file keeps."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall():
            columns = [
                row[1] for row in connection.execute(f'PRAGMA table_xinfo("{name}")').fetchall()
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            order = ", ".join(str(n + 1) for n in range(len(columns)))
            tables[name] = connection.execute(
                f'SELECT {listed} FROM "{name}" ORDER BY {order}'
            ).fetchall()
        pragmas = {
            name: connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("user_version", "application_id", "journal_mode", "page_size", "encoding")
        }
    finally:
        connection.close()
    return {"schema": schema, "tables": tables, "pragmas": pragmas}


def integrity(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def target_of(path: Path) -> TargetSpec:
    return sqlite_target(f"sqlite://{path}")


async def backup_to(
    engine: SQLiteEngine,
    target: TargetSpec,
    storage: LocalStorage,
    key: str,
    compression: Compression = Compression.zstd,
) -> Any:
    from app.backups.dumping import dump_into

    await storage.check_writable()
    writer = await storage.open_writer(key)
    try:
        outcome = await dump_into(engine, target, writer, compression=compression)
    except BaseException:
        await writer.abort()
        raise
    await writer.commit()
    return outcome


class Writer(threading.Thread):
    """Commits transactions into ``path`` until stopped: each one inserts a row into ``ledger``
    and moves the same amount in ``totals``, so a consistent copy has sum(ledger) == total."""

    def __init__(self, path: Path, *, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.pause = pause
        self.stop = threading.Event()
        self.commits = 0
        self.error: BaseException | None = None

    @staticmethod
    def prepare(path: Path, *, wal: bool = True, filler_mib: int = 0) -> None:
        connection = sqlite3.connect(path)
        try:
            if wal:
                connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(
                "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, pad BLOB);"
                "CREATE TABLE totals (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);"
                "INSERT INTO totals VALUES (1, 0);"
                "CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB);"
            )
            for _ in range(filler_mib):
                connection.executemany(
                    "INSERT INTO filler (data) VALUES (?)", [(os.urandom(4000),)] * 256
                )
            connection.commit()
        finally:
            connection.close()

    def run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 30000")
            n = 0
            while not self.stop.is_set():
                n += 1
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO ledger (amount, pad) VALUES (?, ?)", (n, os.urandom(200))
                )
                connection.execute("UPDATE totals SET total = total + ? WHERE id = 1", (n,))
                connection.execute("COMMIT")
                self.commits += 1
                if self.pause:
                    time.sleep(self.pause)
            connection.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


def ledger_consistent(path: Path) -> tuple[bool, int]:
    """Whether the ledger and its total agree in ``path``, and how many rows it has."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows, summed, last = connection.execute(
            "SELECT count(*), coalesce(sum(amount), 0), coalesce(max(id), 0) FROM ledger"
        ).fetchone()
        (total,) = connection.execute("SELECT total FROM totals WHERE id = 1").fetchone()
    finally:
        connection.close()
    # Every committed row up to the newest one, and the total that goes with them.
    return summed == total and last == rows and summed == rows * (rows + 1) // 2, int(rows)
