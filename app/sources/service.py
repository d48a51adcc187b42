"""Sources: create, change, test and delete them; which databases a run backs up.

A source's URL is decrypted only here and in ``target_of`` (for the engine); it leaves this
module masked (``masked_url``) or as a ``TargetSpec``, whose repr hides the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.config import Settings
from app.db import utcnow
from app.destinations.repository import DestinationRepository
from app.destinations.service import resolve_destinations
from app.encryption.schemas import EncryptionSettings
from app.engines.base import (
    ConnectionReport,
    DatabaseEngine,
    EngineError,
    TargetSpec,
    ToolStatus,
    validate_database_name,
)
from app.engines.registry import EngineRegistry, UnknownEngine
from app.engines.routing import ENGINE_OF_SCHEME
from app.engines.sqlite import sqlite_target
from app.engines.sqlite.paths import sqlite_directory_of
from app.errors import Conflict, NotFound, ValidationFailed
from app.kit.keyring import DecryptionError
from app.kit.secret import Secret, masked_url
from app.sources.cron import CronError, interval_estimate, next_runs, parse_cron, resolve_timezone
from app.sources.health import OK, SourceHealth
from app.sources.health_service import SourceHealthService, health_dict
from app.sources.models import ALL_DATABASES, DEFAULT_SOURCE, Source, SourceEngine
from app.sources.repository import SourceRepository
from app.sources.schemas import RetentionIn, SourceCreate, SourceUpdate

log = structlog.get_logger("dbkeep.sources")


@dataclass(frozen=True)
class SourceView:
    """A source as the API shows it: masked URL, next slot, newest backup."""

    id: int
    name: str
    engine: str
    url: str
    databases: list[str]
    exclude: list[str]
    schedule: str | None
    timezone: str
    retention: dict[str, Any]
    enabled: bool
    encryption: EncryptionSettings
    from_environment: bool
    verify_schedule: str | None
    verify_url: str | None
    next_run_at: datetime | None
    last_backup_at: datetime | None
    last_backup_status: str | None
    created_at: datetime
    updated_at: datetime
    # {"status", "reasons"} (app/sources/health_service.py)
    health: dict[str, Any] = field(default_factory=lambda: health_dict(OK))
    destination_ids: list[int] = field(default_factory=list)


def target_of(source: Source, database: str | None = None) -> TargetSpec:
    """Where ``database`` (default: the one the URL names) of ``source`` is."""
    try:
        return TargetSpec.from_url(source.url.reveal(), database=database)
    except ValueError as exc:
        raise Conflict(f"The URL of source {source.name!r} is not usable: {exc}.") from None


# A database every server of the engine has, to connect to for a server-wide source.
_ANY_DATABASE: dict[str, str] = {
    SourceEngine.mysql: "information_schema",
    SourceEngine.postgresql: "postgres",
}
_SCHEME_ENGINE = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
    "sqlite": "sqlite",
}


def _checked_url(engine: str, url: str, databases: list[str] | None) -> list[str]:
    """Refuse a URL the engine can't use (saying why, never echoing the URL); return the
    databases the source backs up (the URL's own when none are named)."""
    if not EngineRegistry.available(engine):
        raise ValidationFailed(
            f"The {engine} engine is not available yet.", errors={"engine": ["not available"]}
        )
    if engine in _ANY_DATABASE:
        placeholder = None if databases is None else _ANY_DATABASE[engine]
        try:
            spec = TargetSpec.from_url(url, database=placeholder)
        except ValueError as exc:
            raise ValidationFailed("The URL is not usable.", errors={"url": [str(exc)]}) from None
        if _SCHEME_ENGINE.get(spec.scheme) != engine:
            raise ValidationFailed(
                f"The URL is not a {engine} URL.", errors={"url": [f"use {engine}://"]}
            )
        if databases is None:
            return [spec.database]
    if engine == SourceEngine.sqlite:
        return _checked_sqlite_url(url, databases)
    return databases or []


def _checked_sqlite_url(url: str, databases: list[str] | None) -> list[str]:
    """A SQLite source is one file, one database named after the file's stem."""
    try:
        spec = sqlite_target(url)
    except ValueError as exc:
        raise ValidationFailed("The URL is not usable.", errors={"url": [str(exc)]}) from None
    if databases is not None and databases != [spec.database]:
        raise ValidationFailed(
            f"A SQLite source has one database, named after its file: {spec.database!r}.",
            errors={"databases": [f"must be [{spec.database!r}] or left out"]},
        )
    return [spec.database]


def _checked_verify_url(engine: str, url: str) -> str:
    """Refuse a verify URL that is not a usable server URL of the source's own engine (a SQLite
    source's: ``sqlite:///dir/``, a directory for scratch files), never echoing it."""
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    try:
        if ENGINE_OF_SCHEME.get(scheme) != engine:
            raise ValueError(f"a {engine} source's verify URL must be a {engine} one")
        if engine == SourceEngine.sqlite:
            sqlite_directory_of(url)
        else:
            TargetSpec.from_url(url, database="information_schema")
    except ValueError as exc:
        raise ValidationFailed(
            "The verify URL is not usable.", errors={"verify_url": [str(exc)]}
        ) from None
    return url


def _retention(value: RetentionIn) -> dict[str, Any]:
    value.rule()  # refuses a rule the planner can't take, with its message
    return value.model_dump()


# How many upcoming runs a schedule preview lists.
PREVIEW_RUNS = 5


class SourceService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        engines: EngineRegistry,
        actor: Actor,
    ) -> None:
        self.session = session
        self.settings = settings
        self.engines = engines
        self.actor = actor
        self.sources = SourceRepository(session)

    # ---- reading ---------------------------------------------------------------------------

    async def get(self, source_id: int) -> Source:
        source = await self.sources.get(source_id)
        if source is None:
            raise NotFound(f"Source {source_id} was not found.")
        return source

    async def by_name(self, name: str) -> Source:
        source = await self.sources.by_name(name)
        if source is None:
            raise NotFound(f"Source {name!r} was not found.")
        return source

    async def overview(self) -> list[SourceView]:
        last = await self.sources.last_backups()
        sources = await self.sources.all()
        health = await self._health(sources)
        local = await self._bootstrap_destination_id()
        return [self._view(s, last.get(s.id), local, health.get(s.id, OK)) for s in sources]

    async def view(self, source: Source) -> SourceView:
        last = await self.sources.last_backups()
        health = await self._health([source])
        local = await self._bootstrap_destination_id()
        return self._view(source, last.get(source.id), local, health.get(source.id, OK))

    async def _health(self, sources: list[Source]) -> dict[int, SourceHealth]:
        service = SourceHealthService(self.session, backup_dir=self.settings.backup_dir)
        return await service.by_source(sources)

    async def _bootstrap_destination_id(self) -> int | None:
        local = await DestinationRepository(self.session).bootstrap()
        return local.id if local is not None else None

    def _view(
        self,
        source: Source,
        last: tuple[datetime, str] | None,
        local_id: int | None,
        health: SourceHealth = OK,
    ) -> SourceView:
        next_run = None
        if source.schedule and source.enabled:
            runs = next_runs(source.schedule, source.timezone, utcnow(), 1)
            next_run = runs[0] if runs else None
        return SourceView(
            id=source.id,
            name=source.name,
            engine=source.engine,
            url=masked_url(source.url),
            databases=list(source.databases),
            exclude=list(source.exclude),
            schedule=source.schedule,
            timezone=source.timezone,
            retention=dict(source.retention),
            enabled=source.enabled,
            encryption=EncryptionSettings.from_stored(source.encryption),
            from_environment=source.from_environment,
            verify_schedule=source.verify_schedule,
            verify_url=None if source.verify_url is None else masked_url(source.verify_url),
            destination_ids=list(source.destination_ids or [])
            or ([local_id] if local_id is not None else []),
            next_run_at=next_run,
            last_backup_at=last[0] if last else None,
            last_backup_status=last[1] if last else None,
            created_at=source.created_at,
            updated_at=source.updated_at,
            health=health_dict(health),
        )

    def preview_schedule(
        self, schedule: str, timezone: str, *, count: int = PREVIEW_RUNS
    ) -> tuple[list[datetime], timedelta]:
        """The next ``count`` fire times of a cron expression in a zone (UTC instants), and the
        longest gap between runs: what the dashboard shows while someone types a schedule. Bad
        input is a 422 naming the field, with the parser's own words."""
        errors: dict[str, list[str]] = {}
        messages: list[str] = []
        try:
            cron = parse_cron(" ".join(schedule.split()))
        except CronError as exc:
            errors["schedule"] = [str(exc)]
            messages.append(f"Invalid schedule: {exc}.")
        try:
            zone = resolve_timezone(timezone)
        except ValueError as exc:
            errors["timezone"] = [str(exc)]
            messages.append(f"Invalid time zone: {exc}.")
        if messages:
            raise ValidationFailed(" ".join(messages), errors=errors)
        runs = next_runs(cron, zone, utcnow(), count)
        return runs, interval_estimate(cron, zone)

    # ---- changing --------------------------------------------------------------------------

    async def create(self, data: SourceCreate) -> Source:
        if await self.sources.by_name(data.name) is not None:
            raise Conflict(f"A source named {data.name!r} exists already.")
        if data.name == DEFAULT_SOURCE:
            raise Conflict(
                "The source named 'default' is made from DBKEEP_TARGET_URL; choose another name."
            )
        databases = _checked_url(data.engine, data.url, data.databases)
        source = Source(
            name=data.name,
            engine=data.engine.value,
            url=Secret(data.url),
            databases=databases,
            exclude=list(data.exclude),
            schedule=data.schedule,
            timezone=data.timezone,
            retention=_retention(data.retention),
            enabled=data.enabled,
            encryption=data.encryption.stored(),
            verify_schedule=data.verify_schedule,
            verify_url=None
            if data.verify_url is None
            else Secret(_checked_verify_url(data.engine.value, data.verify_url)),
            destination_ids=await resolve_destinations(self.session, data.destination_ids),
        )
        self.sources.add(source)
        await self.session.flush()
        self._audit("source.create", source)
        await self.session.commit()
        log.info("source.created", source_id=source.id, name=source.name)
        return source

    async def update(self, source_id: int, data: SourceUpdate) -> Source:
        source = await self.get(source_id)
        sent = data.model_fields_set
        if source.from_environment and sent & {"name", "url", "databases"}:
            raise Conflict(
                "The 'default' source follows DBKEEP_TARGET_URL: change that variable instead."
            )
        if data.name is not None and data.name != source.name:
            if await self.sources.by_name(data.name) is not None:
                raise Conflict(f"A source named {data.name!r} exists already.")
            source.name = data.name
        if data.url is not None or data.databases is not None:
            url = data.url if data.url is not None else source.url.reveal()
            databases = data.databases if data.databases is not None else source.databases
            checked = _checked_url(source.engine, url, databases)
            source.url = Secret(url)
            source.databases = checked
        if data.exclude is not None:
            source.exclude = list(data.exclude)
        if "schedule" in sent:
            source.schedule = data.schedule
        if data.timezone is not None:
            source.timezone = data.timezone
        if data.retention is not None:
            source.retention = _retention(data.retention)
        if data.enabled is not None:
            source.enabled = data.enabled
        if data.encryption is not None:
            source.encryption = data.encryption.stored()
        if "verify_schedule" in sent:
            source.verify_schedule = data.verify_schedule
        if "verify_url" in sent:
            verify_url = data.verify_url
            source.verify_url = (
                None
                if verify_url is None
                else Secret(_checked_verify_url(source.engine, verify_url))
            )
        if data.destination_ids is not None:
            source.destination_ids = await resolve_destinations(self.session, data.destination_ids)
        source.updated_at = utcnow()
        self._audit("source.update", source, {"fields": sorted(sent)})
        await self.session.commit()
        return source

    async def deletable(self, source_id: int) -> Source:
        """The source, if it may be deleted now: not the ``default`` one, and none of its
        backups pending or running (409 otherwise)."""
        source = await self.get(source_id)
        if source.from_environment:
            raise Conflict(
                "The 'default' source follows DBKEEP_TARGET_URL: unset that variable instead."
            )
        busy = await self.sources.busy_backups(source.id)
        if busy:
            raise Conflict(
                f"Source {source.name!r} has {busy} backup(s) pending or running; "
                "wait for them or cancel them first."
            )
        # A restore that lost its target source would have no server to load into.
        restoring = await self.sources.busy_restores(source.id)
        if restoring:
            raise Conflict(
                f"{restoring} restore(s) into source {source.name!r} are pending or running; "
                "wait for them or cancel them first."
            )
        return source

    async def backup_ids(self, source: Source) -> list[int]:
        return await self.sources.backup_ids(source.id)

    async def delete(self, source: Source, *, backups_deleted: int | None) -> None:
        """Delete ``source`` (checked by ``deletable``); backups still attached stay, without
        a source (``ON DELETE SET NULL``)."""
        self._audit(
            "source.delete",
            source,
            {"backups": "kept" if backups_deleted is None else f"{backups_deleted} deleted"},
        )
        await self.sources.delete(source)
        await self.session.commit()
        log.info("source.deleted", source_id=source.id, name=source.name)

    # ---- the server ------------------------------------------------------------------------

    def engine_of(self, source: Source) -> DatabaseEngine:
        try:
            return self.engines.get(source.engine)
        except UnknownEngine as exc:
            raise Conflict(f"Source {source.name!r}: {exc}.") from None

    async def test(self, source_id: int) -> tuple[ConnectionReport, ToolStatus]:
        """Connect as the source's account: the server, missing privileges, the databases
        found; and the dump tools installed here (``ToolStatus``)."""
        source = await self.get(source_id)
        engine = self.engine_of(source)
        databases = await self._named_databases(source)
        report = await engine.check_connection(target_of(source, databases[0]))
        return report, await engine.probe()

    async def _named_databases(self, source: Source) -> list[str]:
        if source.databases == [ALL_DATABASES]:
            # any database the server always has, to connect to
            return [_ANY_DATABASE.get(source.engine, "information_schema")]
        return list(source.databases)

    async def databases_to_back_up(self, source: Source, database: str | None) -> list[str]:
        """``database`` if it is one of the source's; else every database a run backs up:
        the named ones, or every non-system one on the server but ``exclude``."""
        if database == ALL_DATABASES:
            raise ValidationFailed(
                "Name one database, or none for every one of the source's.",
                errors={"database": ["must be a database name"]},
            )
        if source.databases == [ALL_DATABASES]:
            try:
                found = await self.engine_of(source).list_databases(
                    target_of(source, _ANY_DATABASE.get(source.engine, "mysql"))
                )
            except EngineError as exc:
                raise Conflict(
                    f"The databases of source {source.name!r} could not be listed: {exc.message}."
                ) from None
            excluded = {name.casefold() for name in source.exclude}
            every = [name for name in found if name.casefold() not in excluded]
        else:
            every = [name for name in source.databases if name not in set(source.exclude)]
        if database is None:
            return every
        if database not in every:
            raise NotFound(f"Source {source.name!r} has no database {database!r} to back up.")
        return [database]

    def database_for_import(self, source: Source, database: str | None) -> str:
        """Which database of ``source`` an uploaded dump is a backup of: ``database``, which
        must be one it backs up, or, when none is named, its only one (422 if it has several)."""
        if source.databases == [ALL_DATABASES]:
            if database is None:
                raise ValidationFailed(
                    f"Source {source.name!r} backs up every database on its server: name the "
                    "one this dump is of with database=NAME.",
                    errors={"database": ["required for this source"]},
                )
            try:
                validate_database_name(database)
            except ValueError as exc:
                raise ValidationFailed(
                    "The database name is not valid.", errors={"database": [str(exc)]}
                ) from None
            if database.casefold() in {name.casefold() for name in source.exclude}:
                raise NotFound(f"Source {source.name!r} excludes database {database!r}.")
            return database
        every = [name for name in source.databases if name not in set(source.exclude)]
        if database is None:
            if len(every) != 1:
                raise ValidationFailed(
                    f"Source {source.name!r} backs up {len(every)} databases: name the one this "
                    "dump is of with database=NAME.",
                    errors={"database": ["required for this source"]},
                )
            return every[0]
        if database not in every:
            raise NotFound(f"Source {source.name!r} has no database {database!r} to back up.")
        return database

    def _audit(self, action: str, source: Source, details: dict[str, Any] | None = None) -> None:
        record_event(
            self.session,
            actor=self.actor,
            action=action,
            target_type="source",
            target_id=source.id,
            details={"name": source.name, **(details or {})},
        )


async def sync_default_source(session: AsyncSession, settings: Settings) -> Source | None:
    """Make (or bring in line) the ``default`` source from DBKEEP_TARGET_URL; the first time,
    every backup taken before sources existed is attached to it. None without the variable."""
    if settings.target_url is None or not settings.target_url.get_secret_value():
        return None
    url = settings.target_url.get_secret_value()
    try:
        spec = TargetSpec.from_url(url)
    except ValueError:
        return None  # reported where a backup needs it ("DBKEEP_TARGET_URL is not usable")
    repo = SourceRepository(session)
    try:
        source = await repo.default()
    except DecryptionError:
        # Its URL was stored under a key no longer configured; it is the environment's to
        # give, so it is written again from DBKEEP_TARGET_URL under the current key.
        await session.rollback()
        await repo.rewrite_url(DEFAULT_SOURCE, Secret(url))
        await session.commit()
        log.warning("source.default_url_rewritten", reason="stored under an unknown key")
        source = await repo.default()
    if source is None:
        source = Source(
            name=DEFAULT_SOURCE,
            engine=_SCHEME_ENGINE.get(spec.scheme, SourceEngine.mysql.value),
            url=Secret(url),
            databases=[spec.database],
            exclude=[],
            schedule=_daily(settings.backup_at),
            timezone=settings.schedule_timezone,
            retention=RetentionIn(
                trash_after_days=settings.trash_after_days,
                purge_after_days=settings.purge_after_days,
            ).model_dump(),
            enabled=True,
            from_environment=True,
        )
        repo.add(source)
        await session.flush()
        adopted = await repo.adopt_unattached_backups(source.id)
        await session.commit()
        log.info("source.default_created", source_id=source.id, adopted_backups=adopted)
        return source
    changed = (
        source.url.reveal() != url
        or source.databases != [spec.database]
        or not source.from_environment
    )
    if changed:
        source.url = Secret(url)
        source.databases = [spec.database]
        source.from_environment = True
        source.updated_at = utcnow()
        await session.commit()
        log.info("source.default_updated", source_id=source.id)
    return source


def _daily(at: str) -> str:
    hours, minutes = at.split(":")
    return f"{int(minutes)} {int(hours)} * * *"


async def stored_source_target(
    session: AsyncSession, source_id: int, database: str | None
) -> TargetSpec:
    """The target of ``database`` on the source with ``source_id`` (a 409 once it is gone)."""
    source = await SourceRepository(session).get(source_id)
    if source is None:
        raise Conflict(f"Source {source_id} was deleted; its backups can't reach a server.")
    return target_of(source, database)
