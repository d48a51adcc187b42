"""SQLite backup benchmark: a ~500 MB database backed up while a writer process commits.

Measures, one run each, wall time and CPU (this process and its children):

* ``sqlite3 DB ".backup OUT"`` (the plain tool), with no writer and under the writer (it copies
  100 pages a step and starts again after every write from another connection: under steady
  writes it may never finish; it is given ``--tool-timeout`` seconds);
* the two ways of copying considered for the engine, to a file, under the writer: the one-step
  backup API (``Connection.backup``, pages=-1) and ``VACUUM INTO``;
* dbkeep's whole backup (``dump_into``: copy, integrity check, stream, compress, SHA-256, write
  to local storage), uncompressed and with zstd level 3, with no writer (the like-for-like
  ratio against the plain tool) and under the writer.

Each copy taken under writes is then checked: ``PRAGMA integrity_check`` and the writer's
ledger invariant (one snapshot: sum of the rows == the running total, no missing row).

    .venv/bin/python -m bench.sqlite_backup                  # ~500 MB, in /tmp/dbkeep-bench-sqlite
    .venv/bin/python -m bench.sqlite_backup --size-mb 50     # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.backups.dumping import dump_into
from app.engines.sqlite import SQLiteEngine, sqlite_target
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage

WRITER = """
import os, sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
n = connection.execute("SELECT count(*) FROM ledger").fetchone()[0]
print("writing", flush=True)
while True:
    n += 1
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO ledger (amount, pad) VALUES (?, ?)", (n, os.urandom(200)))
    connection.execute("UPDATE totals SET total = total + ? WHERE id = 1", (n,))
    connection.execute("COMMIT")
    time.sleep(0.001)
"""


@dataclass
class Result:
    name: str
    wall: float | None  # None: did not finish
    cpu: float
    note: str = ""


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def generate(path: Path, size_mb: int) -> None:
    """A WAL-mode database of about ``size_mb`` MiB: text rows (compressible like real data),
    an index, and the writer's ledger."""
    if path.exists() and path.stat().st_size >= size_mb * 1024 * 1024 * 0.95:
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, at TEXT, body TEXT, raw BLOB);"
        "CREATE INDEX events_kind ON events (kind, at);"
        "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, pad BLOB);"
        "CREATE TABLE totals (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);"
        "INSERT INTO totals VALUES (1, 0);"
    )
    batch = 20_000  # ~1 KiB a row
    while path.stat().st_size < size_mb * 1024 * 1024:
        connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO events (kind, at, body, raw) SELECT "
            "'kind-' || (abs(random()) % 20), datetime('now', '-' || (abs(random()) % 999) || "
            "' minutes'), printf('%s event %d for user %d: %s', 'order', i, abs(random()) % "
            "100000, hex(randomblob(300))), randomblob(100) FROM n",
            (batch,),
        )
        connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def start_writer(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    return child


def check(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows, summed, last = connection.execute(
            "SELECT count(*), coalesce(sum(amount), 0), coalesce(max(id), 0) FROM ledger"
        ).fetchone()
        (total,) = connection.execute("SELECT total FROM totals").fetchone()
    finally:
        connection.close()
    ok = verdict == "ok" and summed == total and last == rows
    return f"{'consistent' if ok else 'INCONSISTENT'} ({verdict}, {rows} ledger rows)"


def timed(name: str, run: Callable[[], str]) -> Result:
    cpu, start = cpu_now(), time.monotonic()
    note = run()
    return Result(name, time.monotonic() - start, cpu_now() - cpu, note)


def tool_backup(db: Path, out: Path, timeout: float) -> Result:
    out.unlink(missing_ok=True)
    cpu, start = cpu_now(), time.monotonic()
    try:
        subprocess.run(["sqlite3", str(db), f".backup '{out}'"], check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result("sqlite3 .backup", None, cpu_now() - cpu, f"not done after {timeout:.0f} s")
    return Result("sqlite3 .backup", time.monotonic() - start, cpu_now() - cpu, check(out))


def api_backup(db: Path, out: Path) -> str:
    out.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(out)
    src.backup(dst)
    dst.close()
    src.close()
    return check(out)


def vacuum_into(db: Path, out: Path) -> str:
    out.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    src.execute("VACUUM INTO ?", (str(out),))
    src.close()
    return check(out)


class DbkeepBackup:
    """dbkeep's backup (timed by ``run``), then a restore of it, checked (``verify``, untimed)."""

    def __init__(self, db: Path, work: Path, compression: Compression) -> None:
        self.db, self.work, self.compression = db, work, compression
        self.engine = SQLiteEngine(spool_dir=work / "spool")
        self.storage = LocalStorage(work / "storage")
        self.key = f"bench.sqlite.{compression.value}"
        self.sizes = (0, 0)

    def run(self) -> str:
        async def run() -> tuple[int, int]:
            await self.storage.check_writable()
            writer = await self.storage.open_writer(self.key)
            outcome = await dump_into(
                self.engine,
                sqlite_target(f"sqlite://{self.db}"),
                writer,
                compression=self.compression,
                level=3,
            )
            await writer.commit()
            return outcome.raw_bytes, outcome.stored_bytes

        self.sizes = asyncio.run(run())
        return ""

    def verify(self) -> str:
        restored = self.work / "restored.db"
        restored.unlink(missing_ok=True)
        asyncio.run(
            self.engine.restore(
                sqlite_target(f"sqlite://{restored}"),
                self.storage.read(self.key),
                compression=self.compression,
            )
        )
        raw, stored = self.sizes
        note = f"{check(restored)}, {raw / 2**20:.0f} MiB -> {stored / 2**20:.0f} MiB stored"
        restored.unlink()
        (self.work / "storage" / self.key).unlink()
        return note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/dbkeep-bench-sqlite"))
    parser.add_argument("--tool-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        sys.exit("the sqlite3 CLI is needed: apt-get install -y sqlite3")
    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / "bench.db"
    print(f"generating {args.size_mb} MiB ...", flush=True)
    generate(db, args.size_mb)
    size = db.stat().st_size
    print(
        f"database: {size / 2**20:.0f} MiB, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    out = args.dir / "copy.db"
    results = [tool_backup(db, out, args.tool_timeout)]
    results[-1].name += " (no writer)"
    print(results[-1], flush=True)
    # The same work with no writer: the like-for-like ratio against the plain tool.
    results.append(timed("backup API, one step (no writer)", lambda: api_backup(db, out)))
    print(results[-1], flush=True)
    for compression in (Compression.none, Compression.zstd):
        run = DbkeepBackup(db, args.dir, compression)
        results.append(timed(f"dbkeep backup, {compression.value} (no writer)", run.run))
        results[-1].note = run.verify()
        print(results[-1], flush=True)
    writer = start_writer(db)
    try:
        results.append(tool_backup(db, out, args.tool_timeout))
        results[-1].name += " (writer)"
        print(results[-1], flush=True)
        results.append(timed("backup API, one step (writer)", lambda: api_backup(db, out)))
        print(results[-1], flush=True)
        results.append(timed("VACUUM INTO (writer)", lambda: vacuum_into(db, out)))
        print(results[-1], flush=True)
        for compression in (Compression.none, Compression.zstd):
            run = DbkeepBackup(db, args.dir, compression)
            results.append(timed(f"dbkeep backup, {compression.value} (writer)", run.run))
            results[-1].note = run.verify()
            print(results[-1], flush=True)
    finally:
        writer.kill()
        writer.wait()
    out.unlink(missing_ok=True)
    reference = results[0]
    print()
    print(f"{'':44} {'wall s':>8} {'cpu s':>8} {'x wall':>7} {'x cpu':>7}  note")
    for result in results:
        wall = f"{result.wall:8.2f}" if result.wall is not None else "     n/a"
        ratio = (
            f"{result.wall / reference.wall:7.2f}"
            if result.wall is not None and reference.wall
            else "    n/a"
        )
        cpu_ratio = f"{result.cpu / reference.cpu:7.2f}" if reference.cpu else "    n/a"
        print(f"{result.name:44} {wall} {result.cpu:8.2f} {ratio} {cpu_ratio}  {result.note}")
    print("(ratios against sqlite3 .backup with no writer: under writes it does not finish)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
