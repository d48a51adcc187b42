"""Compare dbkeep's dump pipeline with the plain tools: ``mariadb-dump | zstd -3 > file``.

Usage: .venv/bin/python bench/dump_throughput.py DATABASE [--runs 3] [--socket PATH]
Connects as root over the Unix socket (no password). Prints wall times and the ratios
dbkeep/plain for the external ``zstd`` stage and the in-process ``zstandard`` fallback.
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
from app.pipeline import codecs
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage


def plain(database: str, socket: str, out: Path, level: int) -> float:
    started = time.perf_counter()
    with out.open("wb") as sink:
        dump = subprocess.Popen(
            ["mariadb-dump", "-uroot", f"--socket={socket}", *DUMP_OPTIONS, "--", database],
            stdout=subprocess.PIPE,
        )
        zstd = subprocess.run(["zstd", f"-{level}", "-q", "-c"], stdin=dump.stdout, stdout=sink)
        assert dump.stdout is not None
        dump.stdout.close()
        assert dump.wait() == 0 and zstd.returncode == 0
    return time.perf_counter() - started


async def dbkeep(target: TargetSpec, root: Path, level: int, external: bool) -> float:
    original = codecs.zstd_binary
    if not external:
        codecs.zstd_binary = lambda: None
    try:
        storage = LocalStorage(root)
        started = time.perf_counter()
        writer = await storage.open_writer("bench.sql.zst")
        await dump_into(MySQLEngine(), target, writer, compression=Compression.zstd, level=level)
        await writer.commit()
        return time.perf_counter() - started
    finally:
        codecs.zstd_binary = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--socket", default="/run/mysqld/mysqld.sock")
    args = parser.parse_args()
    target = TargetSpec(
        scheme="mysql",
        host="localhost",
        port=3306,
        user="root",
        database=args.database,
        socket=args.socket,
    )
    times: dict[str, list[float]] = {"plain": [], "external": [], "in-process": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits all alike
            times["plain"].append(plain(args.database, args.socket, root / "plain.zst", args.level))
            times["external"].append(asyncio.run(dbkeep(target, root / "a", args.level, True)))
            times["in-process"].append(asyncio.run(dbkeep(target, root / "b", args.level, False)))
    base = statistics.median(times["plain"])
    for name, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:>10}: median {median:.2f} s  ratio {median / base:.3f}  runs {runs}")


if __name__ == "__main__":
    main()
