"""Encrypted columns on the real metadata store (SQLite, or DBKEEP_TEST_METADATA=mysql|postgres),
and key rotation over them. No real table is encrypted yet: each test makes a throwaway one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database
from app.kit.encryption import (
    EncryptedSecret,
    EncryptedString,
    EncryptionNotConfigured,
    encrypted_columns,
    install_key_ring,
)
from app.kit.key_rotation import rotate_encrypted_columns
from app.kit.keyring import DecryptionError, KeyRing, generate_key
from app.kit.secret import Secret
from tests import support

OLD_KEY = generate_key()
NEW_KEY = generate_key()
URLS = [f"mysql://backup:pw-{n}-hunter2@db{n}.example.com:3306/shop" for n in range(7)]


@pytest.fixture
def use_keys() -> Iterator[object]:
    """Installs a ring made of the given keys as the process's ring; none again afterwards."""

    def install(*keys: str) -> KeyRing:
        ring = KeyRing(keys)
        install_key_ring(ring)
        return ring

    yield install
    install_key_ring(None)


@pytest.fixture
async def vault(database: Database) -> AsyncIterator[Table]:
    """A throwaway table with an encrypted ``str`` column and an encrypted ``Secret`` column."""
    metadata = MetaData()
    table = Table(
        support.unique_name("kit_vault").replace(":", "_"),
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(40), nullable=False),
        Column("url", EncryptedString(), nullable=False),
        Column("password", EncryptedSecret(), nullable=True),
    )
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield table
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


async def fill(engine: AsyncEngine, table: Table, count: int = len(URLS)) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(table),
            [
                {
                    "id": n + 1,
                    "name": f"db{n}",
                    "url": URLS[n],
                    "password": Secret(f"pw-{n}") if n % 2 else None,
                }
                for n in range(count)
            ],
        )


async def raw_values(engine: AsyncEngine, table: Table, column: str) -> list[str | None]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT {column} FROM {table.name} ORDER BY id"))
        return [row[0] for row in result]


async def decrypted(engine: AsyncEngine, table: Table) -> list[tuple[str, Secret | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(table.c.url, table.c.password).order_by(table.c.id))
        return [(row.url, row.password) for row in rows]


async def test_round_trip_gives_the_plaintext_back(
    database: Database, vault: Table, use_keys: object
) -> None:
    use_keys(NEW_KEY)  # type: ignore[operator]
    await fill(database.engine, vault)
    rows = await decrypted(database.engine, vault)
    assert [url for url, _ in rows] == URLS
    assert [password for _, password in rows] == [
        Secret(f"pw-{n}") if n % 2 else None for n in range(len(URLS))
    ]
    assert all(isinstance(p, Secret) for _, p in rows if p is not None)
    assert "pw-1" not in repr([password for _, password in rows])


async def test_stored_text_is_ciphertext_not_the_plaintext(
    database: Database, vault: Table, use_keys: object
) -> None:
    use_keys(NEW_KEY)  # type: ignore[operator]
    await fill(database.engine, vault)
    stored = await raw_values(database.engine, vault, "url")
    assert len(set(stored)) == len(URLS)
    for value, url in zip(stored, URLS, strict=True):
        assert value is not None
        assert "hunter2" not in value and "example.com" not in value and url not in value
        assert Fernet(NEW_KEY).decrypt(value.encode()).decode() == url
    passwords = await raw_values(database.engine, vault, "password")
    assert passwords[0] is None  # NULL stays NULL
    assert passwords[1] is not None and "pw-1" not in passwords[1]


async def test_the_same_value_is_stored_differently_each_time(
    database: Database, vault: Table, use_keys: object
) -> None:
    use_keys(NEW_KEY)  # type: ignore[operator]
    async with database.engine.begin() as conn:
        await conn.execute(
            insert(vault), [{"id": i, "name": "same", "url": "same-url"} for i in (1, 2)]
        )
    first, second = await raw_values(database.engine, vault, "url")
    assert first != second


async def test_a_wrong_key_is_a_clear_error_without_secrets(
    database: Database, vault: Table, use_keys: object
) -> None:
    use_keys(OLD_KEY)  # type: ignore[operator]
    await fill(database.engine, vault, 2)
    stored = await raw_values(database.engine, vault, "url")
    use_keys(NEW_KEY)  # type: ignore[operator]
    with pytest.raises(DecryptionError) as caught:
        await decrypted(database.engine, vault)
    message = str(caught.value)
    assert "could not be decrypted with any of the 1 configured encryption key(s)" in message
    assert "DBKEEP_ENCRYPTION_KEY" in message
    for leaked in (*URLS[:2], "hunter2", OLD_KEY, NEW_KEY, *stored):
        assert leaked not in message  # type: ignore[operator]


async def test_no_ring_installed_is_a_clear_error_that_leaks_nothing(
    database: Database, vault: Table
) -> None:
    install_key_ring(None)
    with pytest.raises(StatementError) as caught:
        async with database.engine.begin() as conn:
            await conn.execute(insert(vault), [{"id": 1, "name": "x", "url": URLS[0]}])
    assert isinstance(caught.value.orig, EncryptionNotConfigured)
    assert "configure_encryption(settings)" in str(caught.value)
    assert "hunter2" not in str(caught.value)  # the engine hides bound parameters


async def test_a_key_provider_can_be_given_per_column(database: Database) -> None:
    rings = {"ring": KeyRing([OLD_KEY])}
    metadata = MetaData()
    table = Table(
        support.unique_name("kit_own_ring").replace(":", "_"),
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("secret", EncryptedString(key_provider=lambda: rings["ring"])),
    )
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(insert(table).values(id=1, secret="s3"))
            stored = (await conn.execute(text(f"SELECT secret FROM {table.name}"))).scalar_one()
            assert Fernet(OLD_KEY).decrypt(stored.encode()) == b"s3"
            assert (await conn.execute(select(table.c.secret))).scalar_one() == "s3"
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


def test_the_registry_lists_every_encrypted_column(vault: Table) -> None:
    assert [c.name for c in encrypted_columns(vault.metadata)] == [
        f"{vault.name}.url",
        f"{vault.name}.password",
    ]


async def test_rotation_moves_every_value_to_the_first_key_in_batches(
    database: Database, vault: Table, use_keys: object
) -> None:
    use_keys(OLD_KEY)  # type: ignore[operator]
    await fill(database.engine, vault)
    before = await raw_values(database.engine, vault, "url")

    # The new key first, the old one kept: everything still reads.
    ring = use_keys(NEW_KEY, OLD_KEY)  # type: ignore[operator]
    assert [url for url, _ in await decrypted(database.engine, vault)] == URLS
    # A value written now is under the new key already.
    async with database.engine.begin() as conn:
        await conn.execute(insert(vault).values(id=100, name="new", url="mysql://n:new@h/db"))

    reports = await rotate_encrypted_columns(database.engine, vault.metadata, ring, batch_size=2)
    assert [(r.column, r.rotated, r.already_current) for r in reports] == [
        (f"{vault.name}.url", len(URLS), 1),
        (f"{vault.name}.password", 3, 0),  # rows 2, 4 and 6 have one; NULLs are skipped
    ]
    after = await raw_values(database.engine, vault, "url")
    assert all(a != b for a, b in zip(after, before, strict=False))

    # The new key alone now opens every value; the old one opens none.
    use_keys(NEW_KEY)  # type: ignore[operator]
    rows = await decrypted(database.engine, vault)
    assert [url for url, _ in rows] == [*URLS, "mysql://n:new@h/db"]
    assert [p.reveal() for _, p in rows if p is not None] == ["pw-1", "pw-3", "pw-5"]
    for value in after:
        assert value is not None
        Fernet(NEW_KEY).decrypt(value.encode())

    # Idempotent: a second run writes nothing.
    again = await rotate_encrypted_columns(database.engine, vault.metadata, ring, batch_size=2)
    assert [(r.rotated, r.already_current) for r in again] == [(0, len(URLS) + 1), (0, 3)]
    assert await raw_values(database.engine, vault, "url") == after


async def test_rotation_pages_through_a_composite_primary_key(database: Database) -> None:
    old_ring, ring = KeyRing([OLD_KEY]), KeyRing([NEW_KEY, OLD_KEY])
    metadata = MetaData()
    table = Table(
        support.unique_name("kit_pairs").replace(":", "_"),
        metadata,
        Column("a", Integer, primary_key=True, autoincrement=False),
        Column("b", String(10), primary_key=True),
        Column("secret", EncryptedString(key_provider=lambda: ring)),
    )
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        pairs = [(a, b) for a in (1, 2, 3) for b in ("x", "y", "z")]
        raw = type_free_insert(table, [(a, b, old_ring.encrypt(f"{a}{b}")) for a, b in pairs])
        await conn.execute(raw[0], raw[1])
    try:
        reports = await rotate_encrypted_columns(database.engine, metadata, ring, batch_size=2)
        assert [(r.rotated, r.already_current) for r in reports] == [(9, 0)]
        async with database.engine.connect() as conn:
            stored = (await conn.execute(text(f"SELECT a, b, secret FROM {table.name}"))).all()
        assert sorted(
            (a, b, Fernet(NEW_KEY).decrypt(s.encode()).decode()) for a, b, s in stored
        ) == [(a, b, f"{a}{b}") for a, b in pairs]
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


def type_free_insert(table: Table, rows: list[tuple[int, str, str]]) -> tuple[object, object]:
    """An INSERT of already-encrypted text, bypassing the column type."""
    statement = text(f"INSERT INTO {table.name} (a, b, secret) VALUES (:a, :b, :s)")
    return statement, [{"a": a, "b": b, "s": s} for a, b, s in rows]


async def test_rotation_stops_at_a_value_no_key_opens_and_names_only_the_row(
    database: Database, vault: Table, use_keys: object
) -> None:
    lost_key = generate_key()
    use_keys(OLD_KEY)  # type: ignore[operator]
    await fill(database.engine, vault, 3)
    use_keys(lost_key)  # type: ignore[operator]
    async with database.engine.begin() as conn:
        await conn.execute(insert(vault).values(id=50, name="lost", url="mysql://u:lost-pw@h/d"))
    stored = await raw_values(database.engine, vault, "url")

    ring = KeyRing([NEW_KEY, OLD_KEY])  # the key that wrote row 50 is gone
    with pytest.raises(DecryptionError) as caught:
        await rotate_encrypted_columns(database.engine, vault.metadata, ring, batch_size=2)
    message = str(caught.value)
    assert f"{vault.name}.url of the row id=50 could not be decrypted" in message
    assert "run key:rotate again" in message
    for leaked in ("lost-pw", lost_key, OLD_KEY, NEW_KEY, *stored):
        assert leaked not in message  # type: ignore[operator]
    # The batch before it was committed (rows 1 and 2); the failing one (rows 3 and 50) was
    # rolled back whole.
    after = await raw_values(database.engine, vault, "url")
    assert [ring.is_current(value) for value in after if value is not None] == [
        True,
        True,
        False,
        False,
    ]
    assert after[2:] == stored[2:]
