"""Engines by the name a source row carries (``sources.engine``), built once per process."""

from __future__ import annotations

from collections.abc import Callable

from app.engines import EngineSettings, mysql_engine
from app.engines.base import DatabaseEngine
from app.engines.mysql.engine import SYSTEM_DATABASES as MYSQL_SYSTEM_DATABASES
from app.engines.postgres import postgres_engine
from app.engines.postgres.engine import SYSTEM_DATABASES as POSTGRES_SYSTEM_DATABASES
from app.engines.sqlite import SQLiteEngine


def sqlite_engine(settings: EngineSettings) -> SQLiteEngine:
    """SQLite, its online copies spooled under the var directory."""
    return SQLiteEngine(spool_dir=settings.var_dir / "sqlite-spool")


# engine name -> how to build it from the process's settings.
FACTORIES: dict[str, Callable[[EngineSettings], DatabaseEngine]] = {
    "mysql": mysql_engine,
    "sqlite": sqlite_engine,
}
FACTORIES["postgresql"] = postgres_engine


# engine name -> the databases of the server itself: never backed up with "*", never restored into.
SYSTEM_DATABASES: dict[str, frozenset[str]] = {"mysql": MYSQL_SYSTEM_DATABASES}
SYSTEM_DATABASES["postgresql"] = POSTGRES_SYSTEM_DATABASES


def is_system_database(name: str, engine: str | None = None) -> bool:
    """Whether ``name`` is a system database of ``engine`` (of any engine when None), in the
    case-insensitive way servers compare database names."""
    engines = [engine] if engine is not None else list(SYSTEM_DATABASES)
    folded = name.casefold()
    return any(folded in SYSTEM_DATABASES.get(each, frozenset()) for each in engines)


class UnknownEngine(LookupError):
    def __init__(self, name: str) -> None:
        available = ", ".join(sorted(FACTORIES))
        super().__init__(f"the {name!r} engine is not available (available: {available})")
        self.name = name


class EngineRegistry:
    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._built: dict[str, DatabaseEngine] = {}

    def get(self, name: str) -> DatabaseEngine:
        engine = self._built.get(name)
        if engine is None:
            factory = FACTORIES.get(name)
            if factory is None:
                raise UnknownEngine(name)
            engine = self._built[name] = factory(self._settings)
        return engine

    @staticmethod
    def available(name: str) -> bool:
        return name in FACTORIES
