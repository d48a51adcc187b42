"""SQLite: an online copy of the database file with the backup API, restored by an atomic
replacement of the file."""

from __future__ import annotations

from app.engines.sqlite.engine import SQLiteEngine
from app.engines.sqlite.paths import sqlite_target

__all__ = ["SQLiteEngine", "sqlite_target"]
