"""Writing one dump to every destination of its source.

Chosen by measurement (bench/copies.py, docs/destinations.md): one destination is written
straight from the dump, as in part 1; several get the dump spooled to a local file first, then
uploaded from it in parallel. A tee with backpressure runs the dump at the pace of the slowest
destination, so a slow or stalled bucket would hold the database's dump transaction (and its
undo history) open; with the spool the dump ends as fast as the local disk takes it, and a
destination that fails only fails its own copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.destinations.copies import bootstrap_or
from app.destinations.models import BackupCopy, CopyStatus
from app.destinations.repository import DestinationRepository
from app.destinations.service import destinations_of
from app.errors import AppError
from app.pipeline.checksum import Sha256Counter
from app.sources.models import Source
from app.storage.base import BackupStorage, StorageError, StorageWriter

log = structlog.get_logger("dbkeep.copying")

UPLOAD_CHUNK = 1024 * 1024


@dataclass
class CopyTarget:
    destination_id: int | None  # None: no destination rows in this store (part 1's one dir)
    name: str
    storage: BackupStorage | None  # None: the destination can't be built here (``error``)
    error: str | None = None


@dataclass(frozen=True)
class CopyResult:
    target: CopyTarget
    size: int | None
    error: str | None

    @property
    def stored(self) -> bool:
        return self.error is None


async def prepare_copies(
    session: AsyncSession,
    *,
    backup_id: int,
    source_id: int | None,
    key: str,
    fallback: BackupStorage,
) -> list[CopyTarget]:
    """Where the backup goes, with a ``pending`` copy row for each (reset on a rerun)."""
    source = await session.get(Source, source_id) if source_id is not None else None
    destinations = await destinations_of(session, source)
    if not destinations:
        return [CopyTarget(None, "local", fallback)]
    repo = DestinationRepository(session)
    targets = []
    for position, destination in enumerate(destinations):
        row = await repo.copy(backup_id, destination.id)
        if row is None:
            row = BackupCopy(backup_id=backup_id, destination_id=destination.id, storage_key=key)
            repo.add(row)
        row.position = position
        row.status = CopyStatus.pending.value
        row.size = row.checksum_sha256 = row.verified_at = row.error_message = None
        row.storage_key = key
        try:
            targets.append(
                CopyTarget(destination.id, destination.name, bootstrap_or(destination, fallback))
            )
        except AppError as exc:
            targets.append(CopyTarget(destination.id, destination.name, None, exc.message))
    await session.commit()
    return targets


async def record(
    session: AsyncSession, backup_id: int, results: Sequence[CopyResult], *, sha256: str | None
) -> None:
    """Each copy's outcome on its row (the caller commits)."""
    repo = DestinationRepository(session)
    now = utcnow()
    for result in results:
        if result.target.destination_id is None:
            continue
        row = await repo.copy(backup_id, result.target.destination_id)
        if row is None:
            continue
        row.status = (CopyStatus.stored if result.stored else CopyStatus.failed).value
        row.size = result.size if result.stored else None
        row.checksum_sha256 = sha256 if result.stored else None
        row.verified_at = now if result.stored else None
        row.error_message = result.error
        row.updated_at = now


async def fail_unfinished(session: AsyncSession, backup_id: int, reason: str) -> None:
    """The backup failed: every copy not stored failed with it (the caller commits)."""
    for row in await DestinationRepository(session).copies_of(backup_id):
        if row.status in (CopyStatus.pending.value, CopyStatus.uploading.value):
            row.status = CopyStatus.failed.value
            row.error_message = reason
            row.updated_at = utcnow()


async def upload(
    source: BackupStorage, key: str, target: CopyTarget, *, size: int, sha256: str, dest_key: str
) -> CopyResult:
    """Stream ``key`` from ``source`` into ``target``; stored only when every byte sent hashes
    to the dump's SHA-256 and the committed object has the dump's size."""
    if target.storage is None:
        return CopyResult(target, None, target.error or "The destination is not available.")
    writer: StorageWriter | None = None
    counter = Sha256Counter()
    try:
        await target.storage.check_writable()
        writer = await target.storage.open_writer(dest_key)
        async for chunk in source.read(key, chunk_size=UPLOAD_CHUNK):
            await counter.update(chunk)
            await writer.write(chunk)
        if counter.size != size or counter.hexdigest() != sha256:
            raise StorageError("the bytes read back from the spool differ from the dump")
        stored = await writer.commit()
        writer = None
        if stored != size:
            with contextlib.suppress(StorageError):
                await target.storage.delete(dest_key)
            raise StorageError(f"the stored object has {stored} bytes, not {size}")
    except asyncio.CancelledError:
        await _abort(writer)
        raise
    except StorageError as exc:
        await _abort(writer)
        log.warning("backup.copy_failed", destination=target.name, reason=exc.message)
        return CopyResult(target, None, _sentence(exc.message))
    except FileNotFoundError:
        await _abort(writer)
        return CopyResult(target, None, "The spooled dump vanished before it was copied.")
    except Exception as exc:
        await _abort(writer)
        log.exception("backup.copy_crashed", destination=target.name)
        return CopyResult(target, None, f"The copy failed unexpectedly ({type(exc).__name__}).")
    return CopyResult(target, size, None)


async def _abort(writer: StorageWriter | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            await asyncio.shield(writer.abort())


def _sentence(message: str) -> str:
    message = message.strip().rstrip(".")
    return message[:1].upper() + message[1:] + "."


def summary(results: Sequence[CopyResult]) -> str:
    """Why no copy was stored, naming each destination."""
    return " ".join(f"{r.target.name}: {r.error}" for r in results if r.error) or (
        "No copy could be stored."
    )
