"""PostgreSQL: dbkeep's backup and restore against the plain tools, one run each; prints JSON.

    PYTHONPATH=. python -m bench.pg_backup [--rows 1500000] [--jobs 2] [--keep]

Makes a database ``dbkeep_bench_pg`` on ``DBKEEP_BENCH_PG_URL`` (default
postgresql://postgres@127.0.0.1:5432) unless it exists, then times, each after the other:
* ``pg_dump -Fc`` to a file (its own gzip, the plain tool as a user runs it), and with ``-Z1``;
* ``pg_dump -Fc -Z0 | zstd -3`` to a file (the same work as dbkeep, done by a shell pipe);
* dbkeep's ``dump_into`` with zstd (the engine, the pipeline, SHA-256, the local storage);
* ``pg_restore -j 1`` and ``-j N`` of the plain archive, and dbkeep's restore with N jobs.
Wall seconds, CPU seconds of this process plus its children, and the stored bytes; for dbkeep
also how far this process's peak resident memory rose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from app.backups.dumping import dump_into
from app.engines.base import TargetSpec
from app.engines.postgres import PostgresEngine
from app.pipeline.compression import Compression
from app.storage.local import LocalStorage

BASE = os.environ.get("DBKEEP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
NAME = "dbkeep_bench_pg"
ENV = {**os.environ, "PGHOST": "127.0.0.1", "PGUSER": "postgres"}


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _psql(sql: str, database: str = "postgres") -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database],
        input=sql, capture_output=True, text=True, env=ENV, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def make_dataset(rows: int) -> None:
    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{NAME}'") == "1":
        return
    _psql(f"CREATE DATABASE {NAME}")
    _psql(
        "CREATE TABLE orders (id bigserial PRIMARY KEY, customer int, note text, total numeric,"
        " placed timestamptz, doc jsonb);"
        f"INSERT INTO orders (customer, note, total, placed, doc) SELECT g % 5000,"
        " repeat(md5(g::text), 1 + g % 4), g / 100.0, now() - g * interval '1 s',"
        " jsonb_build_object('g', g, 'tag', 't' || (g % 97)) FROM generate_series(1, "
        f"{rows}) g;"
        "CREATE TABLE events (id bigserial PRIMARY KEY, order_id bigint, kind text,"
        " at timestamptz);"
        f"INSERT INTO events (order_id, kind, at) SELECT g, 'kind' || (g % 13), now()"
        f" FROM generate_series(1, {rows}) g;"
        "CREATE INDEX ON orders (customer); CREATE INDEX ON events (order_id);",
        NAME,
    )


def _timed_shell(command: str) -> tuple[float, float]:
    cpu, start = _cpu(), time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], env=ENV, check=True)
    return time.monotonic() - start, _cpu() - cpu


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def dbkeep_backup(engine: PostgresEngine, root: Path) -> dict[str, float]:
    storage = LocalStorage(root)
    target = TargetSpec.from_url(f"{BASE}/{NAME}")
    before = _peak_kib()
    cpu, start = _cpu(), time.monotonic()
    writer = await storage.open_writer("bench.dump.zst")
    outcome = await dump_into(engine, target, writer, compression=Compression.zstd)
    await writer.commit()
    wall = time.monotonic() - start
    return {
        "wall_s": wall, "cpu_s": _cpu() - cpu, "stored_bytes": outcome.stored_bytes,
        "raw_bytes": outcome.raw_bytes, "peak_rss_rise_kib": _peak_kib() - before,
    }  # fmt: skip


async def dbkeep_restore(engine: PostgresEngine, root: Path, database: str) -> dict[str, float]:
    storage = LocalStorage(root)
    target = TargetSpec.from_url(f"{BASE}/{database}")
    await engine.recreate_database(target)
    cpu, start = _cpu(), time.monotonic()
    await engine.restore(target, storage.read("bench.dump.zst"), compression=Compression.zstd)
    return {"wall_s": time.monotonic() - start, "cpu_s": _cpu() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the data set")
    args = parser.parse_args()
    make_dataset(args.rows)
    work = Path(tempfile.mkdtemp(prefix="dbkeep-bench-pg-"))
    results: dict[str, object] = {
        "cores": os.cpu_count(),
        "db_bytes": int(_psql(f"SELECT pg_database_size('{NAME}')")),
    }
    try:
        plain = work / "plain.dump"
        wall, cpu = _timed_shell(f"pg_dump -Fc -f {plain} {NAME}")
        results["pg_dump_Fc"] = {"wall_s": wall, "cpu_s": cpu, "stored_bytes": plain.stat().st_size}
        low = work / "low.dump"
        wall, cpu = _timed_shell(f"pg_dump -Fc -Z1 -f {low} {NAME}")
        size = low.stat().st_size
        results["pg_dump_Fc_Z1"] = {"wall_s": wall, "cpu_s": cpu, "stored_bytes": size}
        low.unlink()
        piped = work / "piped.dump.zst"
        wall, cpu = _timed_shell(f"pg_dump -Fc -Z0 {NAME} | zstd -q -3 -c > {piped}")
        results["pg_dump_Z0_zstd3"] = {
            "wall_s": wall, "cpu_s": cpu, "stored_bytes": piped.stat().st_size,
        }  # fmt: skip
        engine = PostgresEngine(restore_parallelism=args.jobs, spool_dir=work / "spool")
        results["dbkeep_backup"] = asyncio.run(dbkeep_backup(engine, work / "store"))
        for jobs in sorted({1, args.jobs}):
            scratch = f"{NAME}_r{jobs}"
            _psql(f"DROP DATABASE IF EXISTS {scratch}; CREATE DATABASE {scratch}")
            wall, cpu = _timed_shell(
                f"pg_restore --exit-on-error -j {jobs} -d {scratch} {plain}"
                if jobs > 1
                else f"pg_restore --exit-on-error --single-transaction -d {scratch} {plain}"
            )
            results[f"pg_restore_j{jobs}"] = {"wall_s": wall, "cpu_s": cpu}
            _psql(f"DROP DATABASE {scratch}")
        scratch = f"{NAME}_dbkeep"
        results[f"dbkeep_restore_j{args.jobs}"] = asyncio.run(
            dbkeep_restore(engine, work / "store", scratch)
        )
        _psql(f"DROP DATABASE IF EXISTS {scratch}")
        base = results["pg_dump_Fc"]
        mine = results["dbkeep_backup"]
        assert isinstance(base, dict) and isinstance(mine, dict)
        results["backup_ratio_wall"] = mine["wall_s"] / base["wall_s"]
        results["backup_ratio_cpu"] = mine["cpu_s"] / base["cpu_s"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            _psql(f"DROP DATABASE IF EXISTS {NAME}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
