"""The long-lived objects one process needs, built once from settings: store, storage, engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.backups.runner import BackupRunner
from app.config import Settings
from app.db import Database
from app.engines import get_engine
from app.engines.base import DatabaseEngine
from app.keys import configure_encryption
from app.storage import get_storage
from app.storage.base import BackupStorage


@dataclass
class Runtime:
    settings: Settings
    database: Database
    storage: BackupStorage
    engine: DatabaseEngine

    def backup_runner(self) -> BackupRunner:
        return BackupRunner(
            database=self.database, settings=self.settings, engine=self.engine, storage=self.storage
        )


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Build the runtime and dispose of the metadata store's connections afterwards."""
    configure_encryption(settings)
    database = Database(settings.database_url)
    try:
        yield Runtime(
            settings=settings,
            database=database,
            storage=get_storage(settings),
            engine=get_engine(settings),
        )
    finally:
        await database.dispose()
