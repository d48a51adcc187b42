"""What one process (the API, a worker, a CLI command) holds for its life, built once from the
settings: the metadata store, the storage, and the registry of engines a source names.

Opening it also installs the credential key ring and brings the ``default`` source in line
with DBKEEP_TARGET_URL, so every process sees the same sources whatever started first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from app.backups.runner import BackupRunner
from app.config import Settings
from app.db import Database
from app.engines.base import DatabaseEngine
from app.engines.registry import EngineRegistry
from app.engines.routing import RoutingEngine
from app.keys import configure_encryption
from app.sources.service import sync_default_source
from app.storage import get_storage
from app.storage.base import BackupStorage

log = structlog.get_logger(__name__)


@dataclass
class Bootstrap:
    settings: Settings
    database: Database
    storage: BackupStorage
    engines: EngineRegistry

    @property
    def engine(self) -> DatabaseEngine:
        """The engine the runners use: each target's own (part 1's one target is MySQL's)."""
        return RoutingEngine(self.engines)

    def backup_runner(self) -> BackupRunner:
        return BackupRunner(
            database=self.database, settings=self.settings, engine=self.engine, storage=self.storage
        )


async def sync_sources(database: Database, settings: Settings) -> None:
    """``sync_default_source``, logged rather than raised: a store not migrated yet must not
    stop a process from starting and saying so (``/health``, ``dbkeep migrate``)."""
    try:
        async with database.sessionmaker() as session:
            await sync_default_source(session, settings)
    except Exception as exc:
        log.error("source.default_sync_failed", error_type=type(exc).__name__)


@asynccontextmanager
async def open_bootstrap(settings: Settings, *, sync: bool = True) -> AsyncIterator[Bootstrap]:
    """Build the process's objects; dispose of the metadata store's connections afterwards."""
    configure_encryption(settings)
    database = Database(settings.database_url)
    try:
        if sync:
            await sync_sources(database, settings)
        yield Bootstrap(
            settings=settings,
            database=database,
            storage=get_storage(settings),
            engines=EngineRegistry(settings),
        )
    finally:
        await database.dispose()
