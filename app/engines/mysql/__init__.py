"""MySQL/MariaDB: the engine, its client tools, their error texts, option files and the
parallel restore."""

from __future__ import annotations

from app.engines.mysql.engine import MySQLEngine

__all__ = ["MySQLEngine"]
