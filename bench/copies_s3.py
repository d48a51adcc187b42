"""A real backup of a real MariaDB database through ``BackupRunner`` to ``local`` alone vs to
``local`` + an S3 bucket (SeaweedFS ``weed mini`` on loopback, tests/s3server.py), and a restore
read from the local copy vs from the S3 copy (the local one deleted). Issue 14's budgets:
local + S3 <= 1.10x local only (wall), dbkeep under 150 MiB; restore from S3 <= 1.10x from local.

    PYTHONPATH=. .venv/bin/python bench/copies_s3.py [--rows 1500000]

Each measurement runs in a fresh child process; its peak RSS (VmHWM, reset just before) is that
of the measured phase alone (a restore's child first takes the backup it restores, unmeasured).
Wall time is ``run_backup`` / ``load`` alone, after start-up. ``backup-local+s3-warm`` talks to
the bucket once before it is measured (a worker that has loaded the S3 client already). Needs the
test MariaDB (tests/support.py); Redis is not used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _peak_mib() -> float:
    """Peak RSS since ``_reset_peak`` (VmHWM), else since start (ru_maxrss)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0), so the peak is the phase's."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


async def _child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    import app.models  # noqa: F401
    from app.audit.service import Actor
    from app.backups.runner import BackupRunner
    from app.backups.service import BackupService
    from app.config import Settings
    from app.db import Database
    from app.destinations.models import Destination
    from app.destinations.service import sync_local_destination
    from app.engines import get_engine
    from app.engines.base import TargetSpec
    from app.keys import configure_encryption
    from app.migrate import upgrade_head
    from app.sources.service import sync_default_source
    from app.storage import get_storage

    work = Path(tempfile.mkdtemp(prefix="dbkeep-bench-"))
    url = f"sqlite+aiosqlite:///{work}/meta.sqlite3"
    upgrade_head(url)
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=url,
        target_url=spec["target_url"],
        backup_dir=work / "backups",
        var_dir=work / "var",
        secret_key="bench-secret-key-" + "x" * 32,
        encryption_key=spec["encryption_key"],
        schedule_enabled=False,
    )
    configure_encryption(settings)
    database = Database(url)
    async with database.sessionmaker() as session:
        local = await sync_local_destination(session, settings)
        source = await sync_default_source(session, settings)
        assert source is not None
        ids = [local.id]
        if mode != "backup-local":
            s3 = Destination(
                name="offsite",
                kind="s3",
                config=spec["s3_config"],
                secrets=json.dumps(spec["s3_secrets"]),
            )
            session.add(s3)
            await session.flush()
            ids.append(s3.id)
        source.destination_ids = ids
        await session.commit()
    runner = BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )
    async with database.sessionmaker() as session:
        pending = await BackupService(
            session,
            settings=settings,
            storage=get_storage(settings),
            queue=None,
            actor=Actor.system("bench"),
        ).create(enqueue=False)
    if mode == "backup-local+s3-warm":
        # A worker that has talked to S3 before: the client and its service model are loaded.
        from app.destinations.service import storage_of

        async with database.sessionmaker() as session:
            row = await session.get(Destination, ids[1])
            assert row is not None
            await storage_of(row).check_writable()
    if mode.startswith("backup"):
        before = _rss_mib()
        _reset_peak()
    started = time.perf_counter()
    backup = await runner.run_backup(pending.id)
    wall = time.perf_counter() - started
    assert backup.status.value == "completed", backup.error_message
    result: dict[str, Any] = {"mode": mode, "size_mib": (backup.file_size or 0) / 2**20}
    if mode.startswith("backup"):
        result.update(wall_s=wall, rss_before_mib=before, peak_rss_mib=_peak_mib())
    else:
        if mode == "restore-s3":
            (settings.backup_dir / backup.path).unlink()
        target = TargetSpec.from_url(spec["target_url"]).with_database(spec["scratch"])
        before = _rss_mib()
        _reset_peak()
        started = time.perf_counter()
        await runner.load(backup.id, target=target)
        wall = time.perf_counter() - started
        result.update(wall_s=wall, rss_before_mib=before, peak_rss_mib=_peak_mib())
    await database.dispose()
    return result


def _seed(database: str, rows: int) -> None:
    from tests import support

    support.admin_sql(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`")
    support.admin_sql(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), note TEXT, n DOUBLE);"
        "INSERT INTO items SELECT seq, CONCAT('item-', seq), "
        "CONCAT(SHA2(seq, 256), ' ', MD5(seq), ' ', REPEAT('x', seq % 200)), RAND() "
        f"FROM seq_1_to_{rows};",
        database=database,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, spec = json.loads(args.child)
        print(json.dumps(asyncio.run(_child(mode, spec))))
        return

    from tests import support
    from tests.conftest import TEST_ENCRYPTION_KEY
    from tests.s3server import running_server

    password = support.ensure_test_account()
    source_db = support.unique_name("dbkeep_bench")
    scratch = support.unique_name("dbkeep_bench_restore")
    _seed(source_db, args.rows)
    results = []
    try:
        with running_server() as server:
            bucket = asyncio.run(server.create_bucket())
            config = server.config(bucket)
            secrets = {key: config.pop(key) for key in ("access_key_id", "secret_access_key")}
            spec = {
                "target_url": support.target_url(source_db, password=password),
                "encryption_key": TEST_ENCRYPTION_KEY,
                "s3_config": config,
                "s3_secrets": secrets,
                "scratch": scratch,
            }
            modes = (
                "backup-local",
                "backup-local+s3",
                "backup-local+s3-warm",
                "restore-local",
                "restore-s3",
            )
            for mode in modes:
                if mode.startswith("restore"):
                    support.admin_sql(
                        f"DROP DATABASE IF EXISTS `{scratch}`; CREATE DATABASE `{scratch}`"
                    )
                out = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps([mode, spec])],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "DBKEEP_LOG_LEVEL": "WARNING"},
                    check=False,
                )
                if out.returncode != 0:
                    raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    finally:
        support.admin_sql(f"DROP DATABASE IF EXISTS `{source_db}`")
        support.admin_sql(f"DROP DATABASE IF EXISTS `{scratch}`")
    by = {r["mode"]: r for r in results}
    print(f"{args.rows} rows; load average after: {os.getloadavg()}")
    for mode in ("backup-local+s3", "backup-local+s3-warm"):
        ratio = by[mode]["wall_s"] / by["backup-local"]["wall_s"]
        print(f"{mode} / backup-local: {ratio:.2f}x")
    ratio = by["restore-s3"]["wall_s"] / by["restore-local"]["wall_s"]
    print(f"restore from s3 / from local: {ratio:.2f}x")


if __name__ == "__main__":
    main()
