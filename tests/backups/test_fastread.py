"""The fast reader (app/fastread.py) on each metadata store: the same values as SQLAlchemy,
never a stale snapshot, and a pooled connection that died is replaced."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, timedelta

import pytest
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository, ListFilters, SortKey, View
from app.db import Database, utcnow
from app.fastread import READER_KEY, FastReader, HotQuery, hot_rows
from tests.backups.factories import make_backup

ALL_COLUMNS = HotQuery(
    select(*DatabaseBackup.__table__.c)
    .where(DatabaseBackup.id == bindparam("id"))
    .order_by(DatabaseBackup.id)
)


STORE = os.environ.get("DBKEEP_TEST_METADATA", "sqlite")
# How to find a connection on the server, and end it from another one.
SERVER_SESSIONS = {
    "mysql": (HotQuery(select(func.connection_id())), "KILL {}"),
    "postgres": (HotQuery(select(func.pg_backend_pid())), "SELECT pg_terminate_backend({})"),
}
SLEEP = {"mysql": func.sleep, "postgres": func.pg_sleep}


def as_dict(row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip([c.key for c in DatabaseBackup.__table__.c], row, strict=True))


def reader_of(database: Database) -> FastReader:
    reader = database.sessionmaker.kw["info"][READER_KEY]
    assert isinstance(reader, FastReader)
    return reader


async def test_the_fast_reader_gives_the_values_sqlalchemy_gives(database: Database) -> None:
    backup = await make_backup(
        database,
        status=BackupStatus.in_trash,
        status_before_trash=BackupStatus.failed,
        backup_date=utcnow() - timedelta(days=3),
        trashed_at=utcnow(),
        filename="it's 100% ünïcode_.sql",
    )
    fast = await reader_of(database).rows(ALL_COLUMNS, {"id": backup.id})
    async with AsyncSession(database.engine) as plain:  # no reader: SQLAlchemy executes it
        orm = await hot_rows(plain, ALL_COLUMNS, id=backup.id)

    assert fast == orm and len(fast) == 1
    values = as_dict(fast[0])
    assert values["status"] is BackupStatus.in_trash
    assert values["status_before_trash"] is BackupStatus.failed
    assert values["filename"] == "it's 100% ünïcode_.sql"
    assert values["backup_date"].tzinfo is UTC
    assert values["trashed_at"].tzinfo is UTC and values["completed_at"].tzinfo is UTC


async def test_a_page_read_fast_matches_the_orm_rows(database: Database) -> None:
    made = [
        await make_backup(database, size=size, backup_date=utcnow() - timedelta(minutes=size))
        for size in (5, 50, 500)
    ]
    async with database.sessionmaker() as session:
        items, total = await BackupRepository(session).list_page(
            page=1, per_page=2, filters=ListFilters(), sort=SortKey.size_desc, view=View.active
        )
        orm = await BackupRepository(session).get_many([m.id for m in made])

    assert total == 3
    assert [item["file_size"] for item in items] == [500, 50]
    for item in items:
        expected = orm[item["id"]]
        for column in DatabaseBackup.__table__.c:
            assert item[column.key] == getattr(expected, column.key), column.key


async def test_a_read_after_a_commit_elsewhere_sees_it(database: Database) -> None:
    # The reader runs in autocommit: a pooled connection never keeps an old snapshot (with
    # MariaDB's REPEATABLE READ it would, and the list would show old statuses forever).
    backup = await make_backup(database, status=BackupStatus.pending)
    reader = reader_of(database)
    for status in (BackupStatus.in_progress, BackupStatus.completed, BackupStatus.failed):
        async with database.sessionmaker() as session:
            await session.execute(
                update(DatabaseBackup).where(DatabaseBackup.id == backup.id).values(status=status)
            )
            await session.commit()
        [row] = await reader.rows(ALL_COLUMNS, {"id": backup.id})
        assert as_dict(row)["status"] is status


@pytest.mark.skipif(STORE not in SERVER_SESSIONS, reason="kills a connection on the server")
async def test_a_kept_connection_killed_by_the_server_is_replaced(database: Database) -> None:
    backup = await make_backup(database)
    reader = reader_of(database)
    assert reader.engine is not database.engine
    find, kill = SERVER_SESSIONS[STORE]
    # The driver learns of the kill either before the next query or during it, and reports it
    # differently (asyncpg, when the server's notice arrived just before: "another operation is
    # in progress"). Several rounds, with and without a pause, meet both (the second failed
    # in about 2 rounds out of 5 before any failure on a kept connection was retried).
    for pause in (0.0, 0.3) * 5:
        [(connection_id,)] = await reader.rows(find, {})  # the connection now kept idle
        async with database.engine.connect() as admin:
            await admin.execute(text(kill.format(int(connection_id))))
            await admin.commit()
        await asyncio.sleep(pause)

        [row] = await reader.rows(ALL_COLUMNS, {"id": backup.id})

        assert row[0] == backup.id
        [(replacement,)] = await reader.rows(find, {})
        assert replacement != connection_id


async def test_connections_are_kept_between_reads_and_given_back_on_close(
    database: Database,
) -> None:
    backup = await make_backup(database)
    reader = reader_of(database)
    for _ in range(3):
        assert len(await reader.rows(ALL_COLUMNS, {"id": backup.id})) == 1
    kept = 1 if reader.engine is not database.engine else 0  # SQLite shares the main pool
    assert reader.engine.pool.checkedout() == kept  # type: ignore[attr-defined]

    await reader.close()

    assert reader.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.skipif(STORE not in SLEEP, reason="needs a server-side sleep")
async def test_a_read_cancelled_mid_query_never_hands_out_its_connection_again(
    database: Database,
) -> None:
    backup = await make_backup(database)
    reader = reader_of(database)
    slow = asyncio.create_task(reader.rows(HotQuery(select(SLEEP[STORE](3))), {}))
    await asyncio.sleep(0.1)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow

    for _ in range(3):  # a reused half-read connection would answer with the sleep's row
        [row] = await reader.rows(ALL_COLUMNS, {"id": backup.id})
        assert row[0] == backup.id
    assert reader.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
