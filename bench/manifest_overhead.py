"""What the manifest stage (rows per table counted from the dump stream) costs a backup.

Usage: .venv/bin/python bench/manifest_overhead.py [--size-mib 256] [--runs 3] [--database DB]
Generates ``dbkeep_bench_<size>m`` with bench/generate.py when it does not exist, then times
``dump_into`` (mariadb-dump -> zstd -3 -> local file) without and with the MySQL manifest
observer, interleaved, and the counter alone over the raw dump in memory. Connects as root over
the Unix socket. Prints medians and the overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from app.backups.dumping import dump_into
from app.engines.base import TargetSpec
from app.engines.mysql.engine import DUMP_OPTIONS, MySQLEngine
from app.engines.mysql.manifest import MySQLManifestObserver
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage
from bench.common import admin_sql
from bench.generate import generate


async def timed_dump(target: TargetSpec, root: Path, *, observe: bool) -> tuple[float, int]:
    storage = LocalStorage(root)
    engine = MySQLEngine()
    started = time.perf_counter()
    writer = await storage.open_writer("bench.sql.zst")
    outcome = await dump_into(
        engine,
        target,
        writer,
        compression=Compression.zstd,
        level=3,
        observer=engine.manifest_observer() if observe else None,
    )
    await writer.commit()
    return time.perf_counter() - started, outcome.raw_bytes


def counter_alone(database: str, socket: str) -> tuple[float, int, int]:
    raw = subprocess.run(
        ["mariadb-dump", "-uroot", f"--socket={socket}", *DUMP_OPTIONS, "--", database],
        capture_output=True,
        check=True,
    ).stdout
    observer = MySQLManifestObserver()
    started = time.perf_counter()
    for pos in range(0, len(raw), 1024 * 1024):
        observer.feed(raw[pos : pos + 1024 * 1024])
    manifest = observer.result(server_version=None)
    elapsed = time.perf_counter() - started
    return elapsed, len(raw), sum(t["rows"] for t in manifest["tables"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=float, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database")
    parser.add_argument("--socket", default="/run/mysqld/mysqld.sock")
    args = parser.parse_args()
    database = args.database or f"dbkeep_bench_{int(args.size_mib)}m"
    if not admin_sql(f"SHOW DATABASES LIKE '{database}'").strip():
        generate(database, args.size_mib)
    target = TargetSpec(
        scheme="mysql", host="localhost", port=3306, user="root", database=database,
        socket=args.socket,
    )  # fmt: skip
    times: dict[str, list[float]] = {"without manifest": [], "with manifest": []}
    raw_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):  # interleaved: drift on a shared machine hits both alike
            order = [False, True] if run % 2 == 0 else [True, False]
            for observe in order:
                seconds, raw_bytes = asyncio.run(
                    timed_dump(target, Path(tmp) / f"{run}-{observe}", observe=observe)
                )
                times["with manifest" if observe else "without manifest"].append(seconds)
    alone, size, rows = counter_alone(database, args.socket)
    base = statistics.median(times["without manifest"])
    print(f"dump of {database}: {raw_bytes / 2**20:.0f} MiB raw, {args.runs} runs each")
    for name, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<17} median {median:6.2f} s  ({runs})  x{median / base:.3f}")
    print(
        f"  counter alone: {size / 2**20:.0f} MiB in {alone:.2f} s "
        f"({size / 2**20 / alone:.0f} MiB/s), {rows:,} rows"
    )


if __name__ == "__main__":
    main()
