"""Migration 0008 on a store that has rows: what ended by a cancel before it reads as cancelled,
and the trigger-kept counters are counted again with the new key (every store)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, select, text

from app.backups.models import BackupCounter, DatabaseBackup, RestoreOperation
from app.backups.repository import BackupRepository
from app.db import Database, make_engine, utcnow
from app.migrate import alembic_config


async def test_rows_from_before_are_counted_and_read_with_their_outcome(
    metadata_url: str, database: Database
) -> None:
    config = alembic_config(metadata_url)
    command.downgrade(config, "0007")
    try:
        engine = make_engine(metadata_url)
        quote = engine.dialect.identifier_preparer.quote
        now = utcnow().replace(tzinfo=None)  # stored as naive UTC (app.db.UTCDateTime)
        async with engine.begin() as conn:
            for i, (status, cancel_asked) in enumerate(
                [("failed", True), ("failed", False), ("completed", False)]
            ):
                await conn.execute(
                    text(
                        "INSERT INTO database_backups (filename, unique_identifier, path, "
                        f"file_size, status, backup_date, created_at, updated_at, compression, "
                        f"{quote('trigger')}, bytes_processed, attempts, cancel_requested_at, "
                        "completed_at) VALUES (:name, :uid, :name, :size, :status, :now, :now, "
                        ":now, 'none', 'manual', 0, 0, :asked, :now)"
                    ),
                    {
                        "name": f"old{i}.sql",
                        "uid": str(i) * 32,
                        "size": 10 * (i + 1),
                        "status": status,
                        "now": now,
                        "asked": now if cancel_asked else None,
                    },
                )
            backup_id = (
                await conn.execute(
                    text("SELECT id FROM database_backups WHERE filename = 'old2.sql'")
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO backup_restores (backup_id, status, use_safety_backup, "
                    "bytes_processed, attempts, created_at, updated_at, cancel_requested_at, "
                    "completed_at) VALUES (:id, 'rolled_back', :yes, 0, 1, :now, :now, :now, :now)"
                ),
                {"id": backup_id, "now": now, "yes": True},
            )
        await engine.dispose()
    finally:
        command.upgrade(config, "head")

    async with database.sessionmaker() as session:
        stats = await BackupRepository(session).statistics()
        rows = {b.filename: b for b in await session.scalars(select(DatabaseBackup))}
        restore = await session.scalar(select(RestoreOperation))
        counters = {
            (c.status, c.cancelled): (c.row_count, c.size_sum)
            for c in await session.scalars(select(BackupCounter))
            if c.row_count
        }
        actual = {
            (status, int(cancelled)): (n, size)
            for status, cancelled, n, size in (
                await session.execute(
                    select(
                        DatabaseBackup.status,
                        DatabaseBackup.cancelled_at.is_not(None),
                        func.count(),
                        func.sum(DatabaseBackup.file_size),
                    ).group_by(DatabaseBackup.status, DatabaseBackup.cancelled_at.is_not(None))
                )
            ).all()
        }
    assert rows["old0.sql"].cancelled and not rows["old1.sql"].cancelled
    assert (stats.failed_backups, stats.cancelled_backups, stats.completed_backups) == (1, 1, 1)
    assert counters == {(k[0].value, k[1]): v for k, v in actual.items()}
    assert restore is not None and restore.cancelled
    assert restore.phase.value == "finished" and restore.keep_existing_objects is False
