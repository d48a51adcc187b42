"""Migration 0012 on a store with backups: each completed backup (in the trash or not) gets a
stored copy on the bootstrap ``local`` destination with its size and checksum; a failed one
gets none; sources get an empty ``destination_ids`` (the bootstrap ``local``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from app.db import make_engine, utcnow
from app.migrate import alembic_config
from tests.test_migrations import empty_store_url  # noqa: F401 (the fixture)


async def test_0012_gives_every_written_backup_a_copy_on_local(empty_store_url: str) -> None:  # noqa: F811
    config = alembic_config(empty_store_url)
    command.upgrade(config, "0011")
    engine = make_engine(empty_store_url)
    quote = engine.dialect.identifier_preparer.quote
    now = utcnow().replace(tzinfo=None)
    rows = [
        ("done.sql", "completed", None),
        ("failed.sql", "failed", None),
        ("trashed.sql", "in_trash", "completed"),
        ("trashed-failed.sql", "in_trash", "failed"),
    ]
    try:
        async with engine.begin() as conn:
            for i, (name, status, before) in enumerate(rows):
                await conn.execute(
                    sa.text(
                        "INSERT INTO database_backups (filename, unique_identifier, path, "
                        f"file_size, status, status_before_trash, backup_date, created_at, "
                        f"updated_at, compression, {quote('trigger')}, bytes_processed, attempts,"
                        " checksum_sha256) VALUES (:name, :uid, :path, :size, :status, :before,"
                        " :now, :now, :now, 'none', 'manual', 0, 0, :sha)"
                    ),
                    {
                        "name": name,
                        "uid": str(i) * 32,
                        "path": f"2026/01/{name}",
                        "size": 100 + i,
                        "status": status,
                        "before": before,
                        "now": now,
                        "sha": str(i) * 64,
                    },
                )
        command.upgrade(config, "head")
        async with engine.connect() as conn:
            copies = (
                await conn.execute(
                    sa.text(
                        "SELECT b.filename, d.name, c.status, c.size, c.checksum_sha256, "
                        "c.storage_key FROM backup_copies c JOIN database_backups b ON "
                        "b.id = c.backup_id JOIN destinations d ON d.id = c.destination_id "
                        "ORDER BY b.filename"
                    )
                )
            ).all()
            destinations = (
                await conn.execute(sa.text("SELECT name, kind FROM destinations"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(d) for d in destinations] == [("local", "local")]
    assert [tuple(c) for c in copies] == [
        ("done.sql", "local", "stored", 100, "0" * 64, "2026/01/done.sql"),
        ("trashed.sql", "local", "stored", 102, "2" * 64, "2026/01/trashed.sql"),
    ]
