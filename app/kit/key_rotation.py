"""Re-encrypt every stored credential with the first key of the ring (``dbkeep key:rotate``).

Each encrypted column is walked in primary-key order, one batch per transaction, so a large
table never holds a long lock and an interrupted run keeps what it did. A value already under
the first key is left alone: a second run writes nothing. A row is updated only if it still
holds the ciphertext that was read, so a credential changed meanwhile (written with the first
key anyway) is never overwritten with an older one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Select, Text, and_, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.kit.encryption import EncryptedColumn, encrypted_columns
from app.kit.keyring import DecryptionError, KeyRing

DEFAULT_BATCH_SIZE = 500


@dataclass
class ColumnRotation:
    """What a rotation did to one column."""

    column: str
    rotated: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0


async def rotate_encrypted_columns(
    engine: AsyncEngine,
    metadata: MetaData,
    ring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ColumnRotation]:
    """Re-encrypt every encrypted column of ``metadata`` with ``ring``'s first key.

    Raises ``DecryptionError`` naming the column and row (never the value) when no key opens a
    value; the batches before it stay committed and a rerun continues where it stopped.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [
        await _rotate_column(engine, encrypted, ring, batch_size)
        for encrypted in encrypted_columns(metadata)
    ]


async def _rotate_column(
    engine: AsyncEngine, encrypted: EncryptedColumn, ring: KeyRing, batch_size: int
) -> ColumnRotation:
    report = ColumnRotation(encrypted.name)
    key_columns = list(encrypted.table.primary_key.columns)
    if not key_columns:
        raise ValueError(f"{encrypted.name}: a table without a primary key can't be rotated")
    after: tuple[Any, ...] | None = None
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(_batch(encrypted, after, batch_size))).all()
            for row in rows:
                key, token = tuple(row[:-1]), row[-1]
                await _rotate_value(conn, encrypted, key, token, ring, report)
        if len(rows) < batch_size:
            return report
        after = tuple(rows[-1][:-1])


def _batch(
    encrypted: EncryptedColumn, after: tuple[Any, ...] | None, batch_size: int
) -> Select[Any]:
    key_columns = list(encrypted.table.primary_key.columns)
    # The stored text as it is: selecting the column itself would decrypt it.
    query = (
        select(*key_columns, type_coerce(encrypted.column, Text()))
        .where(encrypted.column.is_not(None))
        .order_by(*key_columns)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(_after(key_columns, after))
    return query


def _after(key_columns: list[Any], after: tuple[Any, ...]) -> Any:
    # Keyset paging: (a, b) > (x, y) spelt out, which every backend runs on its index.
    clauses = []
    for position, column in enumerate(key_columns):
        equal = [key_columns[i] == after[i] for i in range(position)]
        clauses.append(and_(*equal, column > after[position]))
    return or_(*clauses)


async def _rotate_value(
    conn: AsyncConnection,
    encrypted: EncryptedColumn,
    key: tuple[Any, ...],
    token: str,
    ring: KeyRing,
    report: ColumnRotation,
) -> None:
    if ring.is_current(token):
        report.already_current += 1
        return
    try:
        rotated = ring.rotate(token)
    except DecryptionError:
        row = ", ".join(
            f"{column.name}={value!r}"
            for column, value in zip(encrypted.table.primary_key.columns, key, strict=True)
        )
        raise DecryptionError(
            f"{encrypted.name} of the row {row} could not be decrypted with any of the "
            f"{ring.key_count} configured key(s): add the key it was encrypted with to "
            "DBKEEP_ENCRYPTION_KEY (after the new first key) and run key:rotate again"
        ) from None
    raw = type_coerce(encrypted.column, Text())
    result = await conn.execute(
        update(encrypted.table)
        .where(
            *(
                column == value
                for column, value in zip(encrypted.table.primary_key.columns, key, strict=True)
            ),
            raw == token,
        )
        # Bound as plain text: through the column's own type it would be encrypted again.
        .values({encrypted.column.name: type_coerce(rotated, Text())})
    )
    if result.rowcount == 1:
        report.rotated += 1
    else:
        report.changed_meanwhile += 1
