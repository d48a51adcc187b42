"""Database engines; ``get_engine`` picks the one for the configured target."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from app.engines.base import DatabaseEngine, EngineError, FailureKind, TargetSpec
from app.engines.mysql import MySQLEngine

__all__ = [
    "DatabaseEngine",
    "EngineError",
    "EngineSettings",
    "FailureKind",
    "MySQLEngine",
    "TargetSpec",
    "get_engine",
    "mysql_engine",
]


class EngineSettings(Protocol):
    """The settings an engine is built from (the application's ``Settings`` has them).

    A protocol rather than ``Settings`` itself: engines don't import the configuration
    (architecture.md, "Arrows"); this wiring reads it and hands the engine plain arguments.
    """

    @property
    def dump_binary(self) -> str | None: ...
    @property
    def client_binary(self) -> str | None: ...
    @property
    def restore_parallelism(self) -> int: ...
    @property
    def var_dir(self) -> Path: ...


def mysql_engine(settings: EngineSettings) -> MySQLEngine:
    """The MySQL/MariaDB engine, with the tools and restore sessions ``settings`` name."""
    return MySQLEngine(
        dump_binary=settings.dump_binary,
        client_binary=settings.client_binary,
        restore_parallelism=settings.restore_parallelism,
        spool_dir=settings.var_dir / "restore-spool",
    )


def get_engine(settings: EngineSettings) -> DatabaseEngine:
    """The engine for ``settings.target_url`` (MySQL/MariaDB is the only one so far)."""
    return mysql_engine(settings)
