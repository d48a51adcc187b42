"""How long health per source takes with many sources and backups (issue 15).

    PYTHONPATH=. python -m bench.source_health [--sources 50] [--backups 100000] [--url URL]

Fills a fresh SQLite store (or the given, empty, migrated one) with ``--sources`` sources of two
databases each and ``--backups`` backup rows spread over them (one in twenty failed), then times
``SourceHealthService.evaluate`` (what /health, the sources list and /metrics run) and counts its
statements.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, insert, text

from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.db import Database
from app.kit.encryption import install_key_ring
from app.kit.keyring import KeyRing
from app.kit.secret import Secret
from app.migrate import upgrade_head
from app.sources import health_service
from app.sources.health_service import SourceHealthService
from app.sources.models import Source

# A throwaway Fernet key: the bench's sources' URLs are encrypted like any.
BENCH_KEY = "uXwFqJ6e5m8M3cK0Wn1m3gQ1mWbq3xjE0t8d5mN1c2Y="


async def fill(database: Database, sources: int, backups: int) -> None:
    now = datetime.now(UTC)
    async with database.sessionmaker() as session:
        rows = [
            Source(
                name=f"src{i:03d}",
                engine="mysql",
                url=Secret(f"mysql://u:p@127.0.0.1:3306/db{i}"),
                databases=["a", "b"],
                exclude=[],
                schedule="0 * * * *",
                timezone="UTC",
                retention={},
            )
            for i in range(sources)
        ]
        session.add_all(rows)
        await session.commit()
        ids = [s.id for s in rows]
    rng = random.Random(15)
    batch: list[dict[str, object]] = []
    for n in range(backups):
        source_id = ids[n % sources]
        when = now - timedelta(minutes=backups - n)
        failed = rng.random() < 0.05
        batch.append(
            {
                "filename": f"f{n}.sql.zst",
                "unique_identifier": f"{n:032x}",
                "path": f"x/f{n}.sql.zst",
                "file_size": rng.randint(10_000, 20_000),
                "status": BackupStatus.failed if failed else BackupStatus.completed,
                "error_message": "boom" if failed else None,
                "backup_date": when,
                "completed_at": None if failed else when,
                "created_at": when,
                "updated_at": when,
                "compression": "zstd",
                "trigger": BackupTrigger.scheduled,
                "target_database": "ab"[n // sources % 2],
                "source_id": source_id,
                "duration_ms": 1000,
                "bytes_processed": 0,
                "attempts": 1,
            }
        )
        if len(batch) == 5000:
            async with database.engine.begin() as conn:
                await conn.execute(insert(DatabaseBackup), batch)
            batch = []
    if batch:
        async with database.engine.begin() as conn:
            await conn.execute(insert(DatabaseBackup), batch)


async def measure(url: str, sources: int, backups: int, runs: int, *, fill_first: bool) -> None:
    install_key_ring(KeyRing([BENCH_KEY]))
    database = Database(url)
    try:
        started = time.perf_counter()
        if fill_first:
            await fill(database, sources, backups)
        print(
            f"filled {sources} sources, {backups} backups in {time.perf_counter() - started:.1f} s"
        )
        # Fresh statistics, as autovacuum or a running store would have them.
        analyze = {
            "postgresql": "ANALYZE database_backups",
            "mysql": "ANALYZE TABLE database_backups",
        }.get(database.engine.dialect.name, "ANALYZE")
        async with database.engine.begin() as conn:
            await conn.execute(text(analyze))
        statements: list[str] = []
        event.listen(
            database.engine.sync_engine,
            "before_cursor_execute",
            lambda *args: statements.append(args[2]),
        )
        for kept in (False, True):
            timings = []
            for _ in range(runs):
                if not kept:  # the grouped query runs (a backup ended since the last look)
                    health_service._kept_facts.clear()
                statements.clear()
                started = time.perf_counter()
                async with database.sessionmaker() as session:
                    result = await SourceHealthService(session, backup_dir=Path("/")).evaluate()
                timings.append(time.perf_counter() - started)
            timings.sort()
            statuses: dict[str, int] = {}
            for item in result:
                statuses[item.health.status] = statuses.get(item.health.status, 0) + 1
            print(
                f"evaluate ({'nothing changed since' if kept else 'after a change'}): "
                f"median {timings[len(timings) // 2] * 1000:.0f} ms, "
                f"max {timings[-1] * 1000:.0f} ms over {runs} runs; "
                f"{len(statements)} statements; {statuses}"
            )
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--backups", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--url", help="an empty, migrated metadata store (default: a new SQLite)")
    parser.add_argument(
        "--filled", action="store_true", help="the store at --url was filled by an earlier run"
    )
    args = parser.parse_args()
    url = args.url
    if url is None:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
        upgrade_head(url)
    asyncio.run(measure(url, args.sources, args.backups, args.runs, fill_first=not args.filled))


if __name__ == "__main__":
    main()
