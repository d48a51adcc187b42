"""What a SQLite backup holds, counted in the consistent copy the engine streams.

The copy is the backup byte for byte (its SHA-256 is of those bytes), so counting there is
counting what the backup holds: per table ``count(*)``, the views, triggers and indexes by kind
(SQLite's own ``sqlite_*`` objects left out), and the SQLite version. Cost: one read of every
table of the local copy, in the thread that runs ``PRAGMA integrity_check`` on it anyway.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

MANIFEST_FORMAT = 1
OBJECT_KINDS = ("index", "trigger", "view")
_USER_OBJECTS = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def count_rows_in(connection: sqlite3.Connection) -> dict[str, int]:
    """``count(*)`` of every table (virtual tables too; SQLite's own left out)."""
    names = [str(name) for kind, name in connection.execute(_USER_OBJECTS) if kind == "table"]
    return {
        name: int(connection.execute(f"SELECT count(*) FROM {_quoted(name)}").fetchone()[0])  # noqa: S608
        for name in names
    }


def count_objects_in(connection: sqlite3.Connection) -> dict[str, int]:
    kinds = Counter(str(kind) for kind, _name in connection.execute(_USER_OBJECTS))
    return {kind: kinds.get(kind, 0) for kind in OBJECT_KINDS}


def manifest_of(connection: sqlite3.Connection) -> dict[str, Any]:
    """``{"format", "engine", "server_version", "tables": [{"name", "rows"}], "objects"}``."""
    rows = count_rows_in(connection)
    return {
        "format": MANIFEST_FORMAT,
        "engine": "sqlite",
        "server_version": sqlite3.sqlite_version,
        "tables": [{"name": name, "rows": rows[name]} for name in sorted(rows)],
        "objects": count_objects_in(connection),
    }
