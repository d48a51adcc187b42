"""What age encryption adds to a backup: the worker's path (``BackupRunner.run_backup``) on one
data set, alternately with the source's encryption off and on, in one process after start-up.

Prints one JSON line per run and the medians with the ratio encrypted / plain (wall, CPU of this
process and its children, how far resident memory rose during the backup). Each stored file is
checked (an age file when encrypted) and deleted after its run.

    .venv/bin/python -m bench.encryption --database dbkeep_bench_1024m --pairs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

import app.models  # noqa: F401  (every mapped table, as the CLI loads them)
from app.audit.service import Actor
from app.backups.models import BackupStatus, BackupTrigger
from app.backups.service import BackupService
from app.bootstrap import open_bootstrap
from app.config import Settings
from app.migrate import upgrade_head
from app.pipeline.crypto import AGE_MAGIC
from app.sources.models import DEFAULT_SOURCE, Source
from bench.common import BenchTarget, check_database_name, ensure_bench_account


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _sample_peak(peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss_kib())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def _set_encryption(rt: Any, enabled: bool) -> None:
    async with rt.database.sessionmaker() as session:
        source = await session.scalar(select(Source).where(Source.name == DEFAULT_SOURCE))
        assert source is not None
        source.encryption = {"enabled": enabled, "recipients": []} if enabled else None
        await session.commit()


async def _one(rt: Any, settings: Settings, *, encrypted: bool, pair: int) -> dict[str, Any]:
    await _set_encryption(rt, encrypted)
    async with rt.database.sessionmaker() as session:
        service = BackupService(
            session, settings=settings, storage=rt.storage, queue=None, actor=Actor.system("bench")
        )
        backup = await service.create(trigger=BackupTrigger.cli, enqueue=False)
    runner = rt.backup_runner()
    rss_before = _rss_kib()
    peak = [rss_before]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_peak(peak, stop))
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = time.process_time()
    started = time.perf_counter()
    done = await runner.run_backup(backup.id)
    wall = time.perf_counter() - started
    cpu_self = time.process_time() - cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    await sampler
    if done.status is not BackupStatus.completed:
        raise SystemExit(f"backup failed: {done.error_message}")
    path = Path(settings.backup_dir) / done.path
    with path.open("rb") as handle:
        is_age = handle.read(len(AGE_MAGIC)) == AGE_MAGIC
    if is_age != encrypted or done.encrypted != encrypted:
        raise SystemExit("the stored file is not what the run asked for")
    path.unlink()
    cpu_children = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    return {
        "pair": pair,
        "encrypted": encrypted,
        "wall": round(wall, 3),
        "cpu": round(cpu_self + cpu_children, 3),
        "cpu_self": round(cpu_self, 3),
        "rss_growth_mib": round((peak[0] - rss_before) / 1024, 1),
        "raw_mib": round((done.raw_size or 0) / 2**20, 1),
        "stored_mib": round(done.file_size / 2**20, 1),
    }


async def run(database: str, pairs: int, work: Path) -> list[dict[str, Any]]:
    password = ensure_bench_account()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="dev",
        database_url=f"sqlite+aiosqlite:///{work}/meta.sqlite3",
        target_url=BenchTarget(database, password).url(),
        backup_dir=work / "backups",
        var_dir=work / "var",
        schedule_enabled=False,
        log_level="WARNING",
    )
    upgrade_head(settings.database_url)
    runs: list[dict[str, Any]] = []
    async with open_bootstrap(settings) as rt:
        await _one(rt, settings, encrypted=True, pair=0)  # warm-up: the identity, caches
        for pair in range(1, pairs + 1):
            # Alternate which side goes first, so a drift of the machine hits both.
            order = (False, True) if pair % 2 else (True, False)
            for encrypted in order:
                result = await _one(rt, settings, encrypted=encrypted, pair=pair)
                print(json.dumps(result), flush=True)
                runs.append(result)
    return runs


def report(runs: list[dict[str, Any]]) -> None:
    def median(encrypted: bool, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["encrypted"] is encrypted)

    print("| | wall | CPU | RSS growth | stored |")
    print("|---|---|---|---|---|")
    for encrypted in (False, True):
        print(
            f"| {'encrypted (age)' if encrypted else 'plain zstd'} | "
            f"{median(encrypted, 'wall'):.2f} s | {median(encrypted, 'cpu'):.2f} s | "
            f"{median(encrypted, 'rss_growth_mib'):.1f} MiB | "
            f"{median(encrypted, 'stored_mib'):.1f} MiB |"
        )
    wall = median(True, "wall") / median(False, "wall")
    cpu = median(True, "cpu") / median(False, "cpu")
    print(f"ratio encrypted/plain: wall {wall:.3f}, CPU {cpu:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="dbkeep_bench_1024m")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    database = check_database_name(args.database)
    with tempfile.TemporaryDirectory(prefix="dbkeep-bench-age-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o700)
        runs = asyncio.run(run(database, args.pairs, work))
    report(runs)


if __name__ == "__main__":
    main()
