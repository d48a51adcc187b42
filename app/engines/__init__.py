"""Database engines; ``get_engine`` picks the one for the configured target."""

from __future__ import annotations

from app.config import Settings
from app.engines.base import DatabaseEngine, EngineError, FailureKind, TargetSpec
from app.engines.mysql import MySQLEngine

__all__ = [
    "DatabaseEngine",
    "EngineError",
    "FailureKind",
    "MySQLEngine",
    "TargetSpec",
    "get_engine",
]


def get_engine(settings: Settings) -> DatabaseEngine:
    """The engine for ``settings.target_url`` (MySQL/MariaDB is the only one so far)."""
    return MySQLEngine.from_settings(settings)
