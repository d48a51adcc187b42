"""A backup's copies: where to write them, which one to read, deleting every one.

Reads go to the first ``stored`` copy (the source's order) whose size (and, when there is a
copy to fall back to, SHA-256) checks out; a copy found missing or damaged is marked ``failed``
with the reason, which makes its backup degraded and the copy retryable. A backup without copy
rows (taken by a process that had no destinations yet, an import) lives on the fallback
storage (DBKEEP_BACKUP_DIR), as in part 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.destinations.models import BackupCopy, CopyStatus, Destination
from app.destinations.schemas import CopyRead
from app.destinations.service import storage_of
from app.errors import AppError
from app.fastread import HotQuery, hot_rows
from app.pipeline.checksum import sha256_of
from app.storage.base import BackupStorage, StorageError

log = structlog.get_logger("dbkeep.copies")

MISSING = "The stored object is missing."
VANISHED = "The stored object vanished from the destination."
DAMAGED = "The stored object is damaged (its size or SHA-256 differs from the backup's)."


@dataclass(frozen=True)
class Place:
    """Where one copy of a backup can be read (or written)."""

    copy_id: int | None  # None: a backup without copy rows, on the fallback storage
    destination_id: int | None
    name: str
    storage: BackupStorage
    key: str


def bootstrap_or(destination: Destination, fallback: BackupStorage) -> BackupStorage:
    """The process's own storage for the bootstrap destination (it is DBKEEP_BACKUP_DIR's, and
    tests hand in instrumented ones), else the one the row names."""
    return fallback if destination.from_environment else storage_of(destination)


async def stored_places(
    session: AsyncSession, backup_id: int, key: str, fallback: BackupStorage
) -> list[Place]:
    """The backup's stored copies in read order; the fallback when it has no copy rows."""
    rows = (
        await session.execute(
            select(BackupCopy, Destination)
            .join(Destination, Destination.id == BackupCopy.destination_id)
            .where(BackupCopy.backup_id == backup_id)
            .order_by(BackupCopy.position, BackupCopy.id)
        )
    ).all()
    if not rows:
        return [Place(None, None, "local", fallback, key)]
    places = []
    for copy, destination in rows:
        if copy.status != CopyStatus.stored.value:
            continue
        try:
            storage = bootstrap_or(destination, fallback)
        except AppError:
            continue
        places.append(Place(copy.id, destination.id, destination.name, storage, copy.storage_key))
    return places


async def every_place(
    session: AsyncSession, backup_id: int, key: str, fallback: BackupStorage
) -> list[Place]:
    """Every copy that may hold an object (not yet ``deleted``): what a delete must remove."""
    rows = (
        await session.execute(
            select(BackupCopy, Destination)
            .join(Destination, Destination.id == BackupCopy.destination_id)
            .where(
                BackupCopy.backup_id == backup_id,
                BackupCopy.status != CopyStatus.deleted.value,
            )
        )
    ).all()
    if not rows:
        has_any = await session.scalar(
            select(BackupCopy.id).where(BackupCopy.backup_id == backup_id).limit(1)
        )
        return [] if has_any else [Place(None, None, "local", fallback, key)]
    places = []
    for copy, destination in rows:
        with contextlib.suppress(AppError):
            places.append(
                Place(
                    copy.id,
                    destination.id,
                    destination.name,
                    bootstrap_or(destination, fallback),
                    copy.storage_key,
                )
            )
    return places


async def delete_objects(places: Sequence[Place]) -> None:
    """Delete every place's object; one destination failing does not keep the others."""
    for place in places:
        try:
            await place.storage.delete(place.key)
        except StorageError as exc:
            log.warning("backup.copy_delete_failed", destination=place.name, reason=exc.message)


async def check_place(place: Place, *, size: int, sha256: str | None, full: bool) -> str | None:
    """Why the place's object is not the backup's (None: it is)."""
    try:
        stored = await place.storage.size(place.key)
    except StorageError:
        return DAMAGED
    if stored is None:
        return MISSING
    if stored != size:
        return DAMAGED
    if full and sha256 is not None:
        try:
            digest, read = await sha256_of(place.storage.read(place.key))
        except FileNotFoundError:
            return MISSING
        except StorageError:
            return DAMAGED
        if read != size or digest != sha256:
            return DAMAGED
    return None


async def first_intact(
    session: AsyncSession,
    *,
    backup_id: int,
    key: str,
    size: int,
    sha256: str | None,
    fallback: BackupStorage,
    full: bool | None = None,
) -> tuple[Place | None, list[tuple[Place, str]]]:
    """The first copy that checks out, and the ones found bad before it (with why).

    With one copy only its size is checked here (its SHA-256 is checked while it is read, as in
    part 1); with several, each is read through once, so that a bit flip falls back to the next
    copy before a single byte reaches a client or a database. ``full`` forces either.
    """
    places = await stored_places(session, backup_id, key, fallback)
    if full is None:
        full = len(places) > 1
    bad: list[tuple[Place, str]] = []
    for place in places:
        problem = await check_place(place, size=size, sha256=sha256, full=full)
        if problem is None:
            return place, bad
        bad.append((place, problem))
    return None, bad


async def mark_failed(session: AsyncSession, bad: Sequence[tuple[Place, str]]) -> None:
    """Record the copies found missing or damaged (the caller commits)."""
    for place, reason in bad:
        if place.copy_id is None:
            continue
        await session.execute(
            update(BackupCopy)
            .where(BackupCopy.id == place.copy_id)
            .values(status=CopyStatus.failed.value, error_message=reason, updated_at=utcnow())
        )
        log.warning("backup.copy_damaged", destination=place.name, reason=reason)


async def mark_verified(session: AsyncSession, place: Place) -> None:
    if place.copy_id is not None:
        await session.execute(
            update(BackupCopy).where(BackupCopy.id == place.copy_id).values(verified_at=utcnow())
        )


# The copies of up to N backups (a page), one compiled query per N: the list asks on every poll,
# and through the ORM this read cost more than the page itself (~0.7 ms on MariaDB).
_COPIES_OF: dict[int, HotQuery] = {}


def _copies_query(count: int) -> HotQuery:
    query = _COPIES_OF.get(count)
    if query is None:
        ids = [bindparam(f"b{i}", type_=BackupCopy.backup_id.type) for i in range(count)]
        query = _COPIES_OF[count] = HotQuery(
            select(
                BackupCopy.backup_id,
                BackupCopy.destination_id,
                Destination.name,
                BackupCopy.status,
                BackupCopy.size,
                BackupCopy.checksum_sha256,
                BackupCopy.verified_at,
                BackupCopy.error_message,
            )
            .join(Destination, Destination.id == BackupCopy.destination_id)
            .where(BackupCopy.backup_id.in_(ids))
            .order_by(BackupCopy.backup_id, BackupCopy.position, BackupCopy.id)
        )
    return query


async def copy_reads(session: AsyncSession, backup_ids: Sequence[int]) -> dict[int, list[CopyRead]]:
    """The copies of each backup as the API shows them, in read order. Read on the fast reader
    (app/fastread.py): it sees what is committed, which is all a request that starts by reading
    needs."""
    result: dict[int, list[CopyRead]] = {backup_id: [] for backup_id in backup_ids}
    if not backup_ids:
        return result
    ids = list(dict.fromkeys(backup_ids))
    params = {f"b{i}": backup_id for i, backup_id in enumerate(ids)}
    for backup_id, destination_id, name, status, size, sha256, verified_at, error in await hot_rows(
        session, _copies_query(len(ids)), **params
    ):
        result[backup_id].append(
            CopyRead(
                destination_id=destination_id,
                destination_name=name,
                status=status,
                size=size,
                checksum_sha256=sha256,
                verified_at=verified_at,
                error_message=error,
            )
        )
    return result


async def mark_deleted(session: AsyncSession, backup_id: int) -> None:
    """Every copy of a backup (trashed and purged, or deleted) is gone (the caller commits)."""
    await session.execute(
        update(BackupCopy)
        .where(BackupCopy.backup_id == backup_id)
        .values(status=CopyStatus.deleted.value, updated_at=utcnow())
    )
