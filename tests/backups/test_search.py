"""The search's trigram prefilter (MySQL/MariaDB): never a different result than reading every
row, kept up to date by triggers, built for rows that existed before its migration."""

from __future__ import annotations

import os

import pytest
from alembic import command
from sqlalchemy import text, update

from app.backups import search as search_module
from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository, ListFilters, SortKey, View
from app.db import Database, make_engine
from app.migrate import alembic_config
from tests import support
from tests.backups.factories import make_backup

pytestmark = pytest.mark.skipif(
    os.environ.get("DBKEEP_TEST_METADATA", "sqlite") != "mysql",
    reason="the gram index exists on MySQL/MariaDB only",
)

NAMES = [
    "backup_shop_2026-01-01_000000_aa.sql.zst",
    "backup_SHOP_2026-01-02_000000_bb.sql.gz",
    "Café_Crème_2026.sql",
    "straße_2026.sql",
    "strasse_2026.sql",
    "100%_done_x.sql",
    "under_score.sql",
    "mixedCase_Shop.sql",
]
TERMS = [
    "shop", "SHOP", "2026", "sql", "_2026", "cafe", "café", "strasse", "ss", "100%", "%_d",
    "e_s", "der_sc", "xyz", "aa.sql", "sql.zst", ".s", "zst",
]  # fmt: skip


async def search(database: Database, term: str, *, view: View = View.active) -> list[str]:
    async with database.sessionmaker() as session:
        items, total = await BackupRepository(session).list_page(
            page=1, per_page=100, filters=ListFilters(search=term), sort=SortKey.name_asc, view=view
        )
    assert total == len(items)
    return [item["filename"] for item in items]


@pytest.mark.parametrize("common_gram", [5_000, 1], ids=["rare grams", "common grams"])
async def test_the_prefilter_finds_exactly_what_reading_every_row_finds(
    database: Database, monkeypatch: pytest.MonkeyPatch, common_gram: int
) -> None:
    # With common_gram=1 most grams count as common: one gram alone, or a scan, is used.
    monkeypatch.setattr(search_module, "COMMON_GRAM", common_gram)
    for name in NAMES:
        await make_backup(database, filename=name)

    with_grams = {term: await search(database, term) for term in TERMS}
    monkeypatch.setattr("app.backups.repository.search_grams", lambda _term: None)
    scanned = {term: await search(database, term) for term in TERMS}

    assert with_grams == scanned
    assert with_grams["shop"] == [NAMES[0], NAMES[1], NAMES[7]]
    assert with_grams["100%"] == ["100%_done_x.sql"]  # % is literal
    assert "Café_Crème_2026.sql" in with_grams["cafe"]  # the collation's é = e still holds


def test_only_ascii_terms_of_three_characters_or_more_use_grams() -> None:
    assert search_module.search_grams("ab") is None
    assert search_module.search_grams("café") is None
    assert search_module.search_grams("SHOP") == {
        "gram_first": "sho",
        "gram_last": "hop",
        "grams_needed": 2,
    }
    assert search_module.search_grams("aaa")["grams_needed"] == 1  # type: ignore[index]


def test_grams_most_backups_hold_are_left_out() -> None:
    grams = search_module.search_grams("backup_4242")
    assert grams is not None
    common, rare = search_module.COMMON_GRAM + 1, 7
    assert search_module.narrowed(grams, (rare, rare)) == grams
    assert search_module.narrowed(grams, (common, rare)) == {
        "gram_first": "242",
        "gram_last": "242",
        "grams_needed": 1,
    }
    assert search_module.narrowed(grams, (common, common)) is None


async def test_a_term_in_every_name_is_searched_by_scanning(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "COMMON_GRAM", 2)
    for n in range(4):
        await make_backup(database, filename=f"backup_{n}.sql")
    chosen: list[object] = []
    original = BackupRepository._useful_grams

    async def spy(self: BackupRepository, search: str) -> object:
        chosen.append(await original(self, search))
        return chosen[-1]

    monkeypatch.setattr(BackupRepository, "_useful_grams", spy)
    assert len(await search(database, "backup")) == 4
    assert chosen == [None]  # 'bac' and 'kup' are in all four names: scan


async def grams_of(database: Database, backup_id: int) -> set[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT gram FROM backup_search_grams WHERE backup_id = :id"), {"id": backup_id}
        )
        return {row[0] for row in rows}


async def test_triggers_index_new_renamed_and_deleted_backups(database: Database) -> None:
    backup = await make_backup(database, filename="Alpha.sql")
    assert {"alp", "lph", "pha", "ha.", "a.s", ".sq", "sql"} <= await grams_of(database, backup.id)
    assert await search(database, "alpha") == ["Alpha.sql"]

    async with database.sessionmaker() as session:
        await session.execute(
            update(DatabaseBackup)
            .where(DatabaseBackup.id == backup.id)
            .values(filename="Omega.sql", status=BackupStatus.failed)
        )
        await session.commit()
    assert "alp" not in await grams_of(database, backup.id)
    assert await search(database, "alpha") == []
    assert await search(database, "omega") == ["Omega.sql"]

    unicode_name = await make_backup(database, filename="Ünïcode.sql")
    assert await grams_of(database, unicode_name.id) == {""}  # always checked by LIKE

    async with database.sessionmaker() as session:
        await BackupRepository(session).delete_row(backup.id, from_statuses=[BackupStatus.failed])
        await session.commit()
    assert await grams_of(database, backup.id) == set()


async def test_the_migration_indexes_backups_that_existed_before_it(
    metadata_url: str, database: Database
) -> None:
    config = alembic_config(metadata_url)
    command.downgrade(config, "0002")
    try:
        name = support.unique_name("older")
        engine = make_engine(metadata_url)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO database_backups (filename, unique_identifier, path, file_size,"
                    " status, backup_date, created_at, updated_at, compression, `trigger`,"
                    " bytes_processed, attempts) VALUES (:name, :uid, :name, 1, 'completed',"
                    " NOW(6), NOW(6), NOW(6), 'none', 'manual', 0, 0)"
                ),
                {"name": f"{name}.sql", "uid": "f" * 32},
            )
        await engine.dispose()
    finally:
        command.upgrade(config, "head")

    assert await search(database, name) == [f"{name}.sql"]
    assert await search(database, "f" * 32) == [f"{name}.sql"]
