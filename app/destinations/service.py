"""Destinations as rows: add, change, delete, test; the bootstrap ``local`` from
DBKEEP_BACKUP_DIR; the storage a row stands for (``storage_of``, through the registry)."""

from __future__ import annotations

import json
import secrets as random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.config import Settings
from app.db import utcnow
from app.destinations.models import (
    BOOTSTRAP_DESTINATION,
    SECRET_FIELDS,
    CopyStatus,
    Destination,
    DestinationKind,
)
from app.destinations.repository import DestinationRepository
from app.destinations.schemas import (
    CopyRead,
    DestinationCreate,
    DestinationTest,
    DestinationUpdate,
    LocalConfig,
    ProbeStep,
    S3Config,
)
from app.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from app.sources.models import Source
from app.storage.base import BackupStorage, StorageError
from app.storage.registry import UnknownStorageKind, build_storage

if TYPE_CHECKING:  # the queue module loads Redis, which a backup command never needs
    from app.jobs.queue import ArqJobQueue

log = structlog.get_logger("dbkeep.destinations")

_CONFIG_MODELS: dict[str, type[BaseModel]] = {
    DestinationKind.local: LocalConfig,
    DestinationKind.s3: S3Config,
}
PROBE_BYTES = 64 * 1024
# The test endpoint answers a person waiting: an endpoint that refuses connections is reported
# after one retry (about a second), not after the five attempts with backoff (12-20 s) a backup's
# upload gets; a silent one after 5 s to connect or 15 s to answer, not 10 s and 60 s.
PROBE_TUNING: dict[str, dict[str, Any]] = {
    DestinationKind.s3: {"max_attempts": 2, "connect_timeout": 5.0, "read_timeout": 15.0},
}


def _secrets_of(destination: Destination) -> dict[str, Any]:
    if not destination.secrets:
        return {}
    loaded: dict[str, Any] = json.loads(destination.secrets)
    return loaded


def storage_of(destination: Destination, *, tuning: dict[str, Any] | None = None) -> BackupStorage:
    """The storage ``destination`` names (secrets included, ``tuning`` over its config); a 409
    when its kind isn't here."""
    try:
        config = {**destination.config, **_secrets_of(destination), **(tuning or {})}
        return build_storage(destination.kind, config)
    except UnknownStorageKind as exc:
        raise Conflict(f"Destination {destination.name!r}: {exc}.") from None
    except ValueError as exc:
        raise Conflict(f"Destination {destination.name!r} is misconfigured: {exc}.") from None


def _checked_config(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config`` validated for ``kind``, split into (shown, write-only) fields."""
    model = _CONFIG_MODELS[kind]
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            where = ".".join(str(part) for part in ("config", *error["loc"]))
            errors.setdefault(where, []).append(error["msg"])
        raise ValidationFailed("The destination's config is not valid.", errors=errors) from None
    values = parsed.model_dump()
    secret_fields = SECRET_FIELDS[kind]
    shown = {key: value for key, value in values.items() if key not in secret_fields}
    hidden = {
        key: value for key, value in values.items() if key in secret_fields and value is not None
    }
    return shown, hidden


@dataclass(frozen=True)
class DestinationView:
    id: int
    name: str
    kind: str
    config: dict[str, Any]
    has_secret: bool
    from_environment: bool
    objects_stored: int
    bytes_stored: int
    free_bytes: int | None
    created_at: datetime
    updated_at: datetime


def sources_using(
    sources: Sequence[Source], destination_id: int, bootstrap_id: int | None
) -> list[str]:
    """The names of the sources that store their backups on the destination."""
    names = []
    for source in sources:
        ids = list(source.destination_ids or []) or ([bootstrap_id] if bootstrap_id else [])
        if destination_id in ids:
            names.append(source.name)
    return names


class DestinationService:
    def __init__(self, session: AsyncSession, *, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.destinations = DestinationRepository(session)

    async def get(self, destination_id: int) -> Destination:
        destination = await self.destinations.get(destination_id)
        if destination is None:
            raise NotFound(f"Destination {destination_id} was not found.")
        return destination

    async def by_name(self, name: str) -> Destination:
        destination = await self.destinations.by_name(name)
        if destination is None:
            raise NotFound(f"No destination is named {name!r}.")
        return destination

    async def overview(self) -> list[DestinationView]:
        """Every destination, by name, with what is stored on it."""
        totals = await self.destinations.stored_totals()
        return [await self._view(row, totals) for row in await self.destinations.all()]

    async def view(self, destination: Destination) -> DestinationView:
        return await self._view(destination, await self.destinations.stored_totals())

    async def _view(
        self, destination: Destination, totals: dict[int, tuple[int, int]]
    ) -> DestinationView:
        objects, size = totals.get(destination.id, (0, 0))
        free: int | None = None
        try:
            free = await storage_of(destination).free_bytes()
        except Exception:  # an unreachable destination shows no free space, not an error
            free = None
        return DestinationView(
            id=destination.id,
            name=destination.name,
            kind=destination.kind,
            config=dict(destination.config),
            has_secret=bool(_secrets_of(destination)),
            from_environment=destination.from_environment,
            objects_stored=objects,
            bytes_stored=size,
            free_bytes=free,
            created_at=destination.created_at,
            updated_at=destination.updated_at,
        )

    async def create(self, data: DestinationCreate) -> Destination:
        """Add a destination; its secret fields are stored encrypted."""
        if await self.destinations.by_name(data.name) is not None:
            raise Conflict(f"A destination named {data.name!r} exists already.")
        shown, hidden = _checked_config(data.kind, data.config)
        destination = Destination(
            name=data.name,
            kind=data.kind,
            config=shown,
            secrets=json.dumps(hidden) if hidden else None,
        )
        self.destinations.add(destination)
        await self.session.flush()
        self._audit("destination.create", destination)
        await self.session.commit()
        log.info("destination.created", destination_id=destination.id, kind=destination.kind)
        return destination

    async def update(self, destination_id: int, data: DestinationUpdate) -> Destination:
        """Change what is sent; a secret not sent again is kept."""
        destination = await self.get(destination_id)
        if destination.from_environment and data.model_fields_set & {"name", "config"}:
            raise Conflict(
                "The 'local' destination follows DBKEEP_BACKUP_DIR: change that variable instead."
            )
        if data.name is not None and data.name != destination.name:
            if await self.destinations.by_name(data.name) is not None:
                raise Conflict(f"A destination named {data.name!r} exists already.")
            destination.name = data.name
        if data.config is not None:
            kept = _secrets_of(destination)
            merged = {**{**destination.config, **kept}, **data.config}
            shown, hidden = _checked_config(destination.kind, merged)
            destination.config = shown
            destination.secrets = json.dumps(hidden) if hidden else None
        destination.updated_at = utcnow()
        self._audit("destination.update", destination, {"fields": sorted(data.model_fields_set)})
        await self.session.commit()
        return destination

    async def deletable(self, destination_id: int) -> Destination:
        """The destination, when nothing keeps it: no source writes to it, no copy lives on it."""
        destination = await self.get(destination_id)
        if destination.from_environment:
            raise Conflict("The 'local' destination is DBKEEP_BACKUP_DIR's; it can't be deleted.")
        sources = list(await self.session.scalars(select(Source).order_by(Source.name)))
        bootstrap = await self.destinations.bootstrap()
        using = sources_using(sources, destination.id, bootstrap.id if bootstrap else None)
        if using:
            raise Conflict(
                f"Destination {destination.name!r} is used by source(s) {', '.join(using)}; "
                "take it off them first."
            )
        live = await self.destinations.live_copies_on(destination.id)
        if live:
            raise Conflict(
                f"Destination {destination.name!r} still holds {live} backup cop(y/ies); "
                "delete those backups first."
            )
        return destination

    async def delete(self, destination_id: int) -> None:
        destination = await self.deletable(destination_id)
        self._audit("destination.delete", destination)
        await self.destinations.delete(destination)
        await self.session.commit()
        log.info("destination.deleted", destination_id=destination_id)

    async def test(self, destination_id: int) -> DestinationTest:
        """Write, read back and delete a probe object; each step's outcome in plain words."""
        destination = await self.get(destination_id)
        return await probe(storage_of(destination, tuning=PROBE_TUNING.get(destination.kind)))

    def _audit(
        self, action: str, destination: Destination, details: dict[str, Any] | None = None
    ) -> None:
        record_event(
            self.session,
            actor=self.actor,
            action=action,
            target_type="destination",
            target_id=destination.id,
            details={"name": destination.name, "kind": destination.kind, **(details or {})},
        )


async def probe(storage: BackupStorage) -> DestinationTest:
    """Write, read back and delete a small random object on ``storage``."""
    steps: list[ProbeStep] = []
    key = f"dbkeep-probe-{random.token_hex(8)}"
    payload = random.token_bytes(PROBE_BYTES)

    def failed(step: str, exc: BaseException) -> DestinationTest:
        reason = exc.message if isinstance(exc, StorageError) else type(exc).__name__
        steps.append(ProbeStep(name=step, ok=False, message=reason))
        return DestinationTest(
            ok=False, message=f"The {step} step failed: {reason}.", steps=steps, free_bytes=None
        )

    try:
        await storage.check_writable()
        writer = await storage.open_writer(key)
        try:
            await writer.write(payload)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
    except Exception as exc:
        return failed("write", exc)
    steps.append(ProbeStep(name="write", ok=True, message=f"Wrote {len(payload)} bytes."))
    try:
        read = bytearray()
        async for chunk in storage.read(key):
            read += chunk
        if bytes(read) != payload:
            raise StorageError("the object read back differs from what was written")
    except Exception as exc:
        result = failed("read", exc)
        await _quiet_delete(storage, key)
        return result
    steps.append(ProbeStep(name="read", ok=True, message="Read the same bytes back."))
    try:
        await storage.delete(key)
        if await storage.size(key) is not None:
            raise StorageError("the probe object is still there after a delete")
    except Exception as exc:
        return failed("delete", exc)
    steps.append(ProbeStep(name="delete", ok=True, message="Deleted the probe object."))
    free: int | None
    try:
        free = await storage.free_bytes()
    except Exception:
        free = None
    return DestinationTest(
        ok=True,
        message="The destination stores, returns and deletes objects.",
        steps=steps,
        free_bytes=free,
    )


async def _quiet_delete(storage: BackupStorage, key: str) -> None:
    try:
        await storage.delete(key)
    except Exception:
        log.warning("destination.probe_left", key=key)


async def sync_local_destination(session: AsyncSession, settings: Settings) -> Destination:
    """Make (or bring in line) the bootstrap ``local`` destination from DBKEEP_BACKUP_DIR."""
    repo = DestinationRepository(session)
    path = str(settings.backup_dir)
    destination = await repo.bootstrap()
    if destination is None:
        destination = Destination(
            name=BOOTSTRAP_DESTINATION,
            kind=DestinationKind.local.value,
            config={"path": path},
            secrets=None,
            from_environment=True,
        )
        repo.add(destination)
        await session.commit()
        log.info("destination.local_created", destination_id=destination.id)
        return destination
    if destination.config.get("path") != path or not destination.from_environment:
        destination.config = {"path": path}
        destination.from_environment = True
        destination.updated_at = utcnow()
        await session.commit()
        log.info("destination.local_updated", destination_id=destination.id)
    return destination


async def resolve_destinations(session: AsyncSession, refs: Sequence[int | str]) -> list[int]:
    """Destination ids (or names) as ids, in order; a 422 naming any that do not exist."""
    repo = DestinationRepository(session)
    ids: list[int] = []
    missing: list[str] = []
    for ref in refs:
        row = await (repo.get(ref) if isinstance(ref, int) else repo.by_name(ref))
        if row is None and ref == BOOTSTRAP_DESTINATION:
            continue  # not made yet (a process that did not sync): [] stands for it
        if row is None:
            missing.append(str(ref))
        elif row.id not in ids:
            ids.append(row.id)
    if missing:
        raise ValidationFailed(
            f"No destination {', '.join(missing)}.",
            errors={"destination_ids": [f"unknown destination: {ref}" for ref in missing]},
        )
    return ids


async def destinations_of(session: AsyncSession, source: Source | None) -> list[Destination]:
    """Where a source's backups go, in its order (the bootstrap ``local`` when it names none)."""
    repo = DestinationRepository(session)
    ids = list(source.destination_ids or []) if source is not None else []
    if ids:
        rows = await repo.many(ids)
        found = [rows[i] for i in ids if i in rows]
        if found:
            return found
    bootstrap = await repo.bootstrap()
    return [bootstrap] if bootstrap is not None else []


class CopyRetryService:
    """Asking for a failed copy to be stored again (the job does it)."""

    def __init__(self, session: AsyncSession, *, actor: Actor, queue: ArqJobQueue | None) -> None:
        self.session = session
        self.actor = actor
        self.queue = queue

    async def request_retry(self, backup_id: int, destination_id: int) -> list[CopyRead]:
        """Queue the copy onto ``destination_id`` again: 409 unless the backup is completed
        and that copy failed."""
        from app.backups.models import BackupStatus, DatabaseBackup
        from app.destinations.copies import copy_reads
        from app.destinations.tasks import RUN_COPY_RETRY, copy_retry_job_id

        backup = await self.session.get(DatabaseBackup, backup_id)
        if backup is None:
            raise NotFound(f"Backup {backup_id} was not found.")
        if backup.status is not BackupStatus.completed:
            raise Conflict(
                f"Backup {backup_id} is {backup.status.value}; only a completed backup's "
                "copies can be retried."
            )
        repo = DestinationRepository(self.session)
        copy = await repo.copy(backup_id, destination_id)
        if copy is None:
            raise NotFound(f"Backup {backup_id} has no copy on destination {destination_id}.")
        if copy.status not in (CopyStatus.failed.value, CopyStatus.pending.value):
            raise Conflict(f"That copy is {copy.status}; only a failed copy can be retried.")
        copy.status = CopyStatus.pending.value
        copy.updated_at = utcnow()
        record_event(
            self.session,
            actor=self.actor,
            action="backup.copy_retry",
            target_type="backup",
            target_id=backup_id,
            details={"destination_id": destination_id},
        )
        await self.session.commit()
        if self.queue is None:
            raise ServiceUnavailable("The job queue is not available in this process.")
        await self.queue.enqueue_copy_retry(
            RUN_COPY_RETRY,
            backup_id,
            destination_id,
            job_id=copy_retry_job_id(self.queue.queue_name, backup_id, destination_id),
        )
        return (await copy_reads(self.session, [backup_id]))[backup_id]
