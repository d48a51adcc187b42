"""Kept search totals (app/backups/totals.py): served only while the lists' version they were
counted at is current, so never a different number than counting again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.backups.models import BackupListVersion, BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository, ListFilters, SortKey, View
from app.backups.totals import SearchTotals, keep_totals_for
from app.db import Database, utcnow
from tests.backups.factories import make_backup


@pytest.fixture
def totals(database: Database) -> SearchTotals:
    """The totals ``database``'s sessions keep, as the API process keeps them."""
    return keep_totals_for(database)


async def listed(
    database: Database,
    term: str,
    *,
    view: View = View.active,
    status: BackupStatus | None = None,
    page: int = 1,
) -> tuple[list[str], int]:
    """A page of two, as the API lists it: with the totals ``database`` keeps."""
    async with database.sessionmaker() as session:
        items, total = await BackupRepository(session).list_page(
            page=page,
            per_page=2,
            filters=ListFilters(status=status, search=term),
            sort=SortKey.name_asc,
            view=view,
        )
    return [item["filename"] for item in items], total


async def counted_afresh(
    database: Database, term: str, *, view: View = View.active, status: BackupStatus | None = None
) -> int:
    """The total from a session that keeps nothing (no kept totals, no fast reader)."""
    async with AsyncSession(database.engine) as session:
        _, total = await BackupRepository(session).list_page(
            page=1,
            per_page=2,
            filters=ListFilters(status=status, search=term),
            sort=SortKey.name_asc,
            view=view,
        )
    return total


async def version_of(database: Database) -> int | None:
    async with database.engine.connect() as connection:
        return await connection.scalar(select(BackupListVersion.version))


async def change(database: Database, backup_id: int, **values: object) -> None:
    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup).where(DatabaseBackup.id == backup_id).values(**values)
        )
        await session.commit()


async def test_a_kept_total_is_served_only_while_its_version_is_current(
    database: Database, totals: SearchTotals
) -> None:
    for n in range(3):
        await make_backup(database, filename=f"alpha_{n}.sql")
    assert await listed(database, "alpha") == (["alpha_0.sql", "alpha_1.sql"], 3)
    filters = (View.active, ListFilters(search="alpha"))
    kept = totals.get(filters)
    assert kept is not None and kept.total == 3 and kept.version == await version_of(database)

    # The next request with the same version takes the kept total, whatever it says.
    totals.keep(filters, version=kept.version, total=42)
    assert await listed(database, "alpha", page=2) == (["alpha_2.sql"], 42)
    # One counted at another version is not served: the total is counted again, and kept.
    totals.keep(filters, version=kept.version + 1, total=42)
    assert await listed(database, "alpha") == (["alpha_0.sql", "alpha_1.sql"], 3)
    assert totals.get(filters) == kept
    # Past the last page too.
    totals.keep(filters, version=kept.version + 1, total=42)
    assert await listed(database, "alpha", page=9) == ([], 3)
    again = totals.get(filters)
    assert again is not None and (again.version, again.total) == (kept.version, 3)


async def test_the_version_changes_with_every_change_that_can_move_a_backup(
    database: Database,
) -> None:
    backup = await make_backup(database, filename="Alpha.sql", status=BackupStatus.in_progress)
    seen = [await version_of(database)]
    assert seen[0] is not None

    async def changed(**values: object) -> bool:
        await change(database, backup.id, **values)
        seen.append(await version_of(database))
        return seen[-1] != seen[-2]

    # What a running backup and its completion write, other than its status: no change.
    assert not await changed(bytes_processed=10_000, file_size=2_048, checksum_sha256="ab" * 32)
    assert not await changed(completed_at=utcnow(), error_message=None)
    assert await changed(status=BackupStatus.completed)
    assert await changed(filename="alpha.sql")  # a change of case alone
    assert await changed(unique_identifier="c" * 32)
    assert await changed(
        status=BackupStatus.in_trash,
        status_before_trash=BackupStatus.completed,
        trashed_at=utcnow(),
    )
    assert await changed(status_before_trash=BackupStatus.failed)
    async with database.sessionmaker() as session:
        await session.execute(delete(DatabaseBackup).where(DatabaseBackup.id == backup.id))
        await session.commit()
    assert await version_of(database) != seen[-1]
    assert len(set(seen)) == len(seen) - 2  # the two unchanged ones


async def test_totals_stay_exact_through_every_kind_of_change(
    database: Database, totals: SearchTotals
) -> None:
    first, second, third = [
        await make_backup(database, filename=f"shop_{n}.sql", status=status)
        for n, status in enumerate(
            [BackupStatus.completed, BackupStatus.completed, BackupStatus.failed]
        )
    ]
    other = await make_backup(database, filename="crm_1.sql")
    searches = [
        ("shop", View.active, None),
        ("shop", View.active, BackupStatus.completed),
        ("shop", View.trash, None),
        ("shop", View.trash, BackupStatus.failed),
        ("_1", View.active, None),
        ("crm", View.trash, None),
    ]
    changes = [
        lambda: make_backup(database, filename="shop_3.sql"),
        lambda: change(database, third.id, status=BackupStatus.completed),
        lambda: change(
            database,
            first.id,
            status=BackupStatus.in_trash,
            status_before_trash=BackupStatus.completed,
            trashed_at=utcnow(),
        ),
        lambda: change(database, other.id, filename="shop_crm.sql"),
        lambda: change(database, first.id, status_before_trash=BackupStatus.failed),
        lambda: change(database, second.id, file_size=1),
        lambda: change(database, first.id, status=BackupStatus.failed, status_before_trash=None),
    ]
    for step in [None, *changes]:
        if step is not None:
            await step()
        for term, view, status in searches:
            truth = await counted_afresh(database, term, view=view, status=status)
            for _ in range(2):  # counted, then kept
                _, total = await listed(database, term, view=view, status=status)
                assert total == truth, (term, view, status, step)
    assert len(totals) == len(searches)


async def test_another_process_changing_the_backups_is_seen_at_once(
    database: Database, totals: SearchTotals, metadata_url: str
) -> None:
    await make_backup(database, filename="shop_1.sql")
    assert (await listed(database, "shop"))[1] == 1
    other_process = Database(metadata_url)
    try:
        await make_backup(other_process, filename="shop_2.sql")
    finally:
        await other_process.dispose()
    assert (await listed(database, "shop"))[1] == 2


async def test_without_a_version_row_nothing_is_kept_until_the_next_change(
    database: Database, totals: SearchTotals
) -> None:
    await make_backup(database, filename="shop_1.sql")
    async with database.sessionmaker() as session:
        await session.execute(delete(BackupListVersion))
        await session.commit()
    assert (await listed(database, "shop"))[1] == 1
    assert len(totals) == 0
    await make_backup(database, filename="shop_2.sql")  # the trigger puts the row back
    assert await version_of(database) is not None
    assert (await listed(database, "shop"))[1] == 2
    assert len(totals) == 1


def test_the_least_recently_used_total_goes_first() -> None:
    totals = SearchTotals(capacity=2)
    totals.keep("a", version=1, total=1)
    totals.keep("b", version=1, total=2)
    assert totals.get("a") is not None
    totals.keep("c", version=1, total=3)
    assert totals.get("b") is None
    assert totals.get("a") is not None and totals.get("c") is not None
    totals.keep("d", version=None, total=4)  # no version: nothing kept
    assert totals.get("d") is None and len(totals) == 2


async def test_the_prefilter_is_chosen_again_only_when_the_lists_change(
    database: Database, totals: SearchTotals, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_backup(database, filename="shop_1.sql")
    chosen: list[str] = []
    original = BackupRepository._useful_grams

    async def spy(self: BackupRepository, search: str) -> dict[str, Any] | None:
        chosen.append(search)
        return await original(self, search)

    monkeypatch.setattr(BackupRepository, "_useful_grams", spy)
    assert (await listed(database, "shop"))[1] == 1
    assert (await listed(database, "shop", page=2))[1] == 1  # past the last page: still kept
    assert (await listed(database, "shop"))[1] == 1
    assert chosen == ["shop"]
    await make_backup(database, filename="shop_2.sql")
    assert (await listed(database, "shop"))[1] == 2
    assert chosen == ["shop", "shop"]
