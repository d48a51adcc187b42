"""A database's exact fingerprint, to compare a restored database with the one backed up.

``schema_fingerprint(database)`` returns a dict that two databases share exactly when they hold
the same objects with the same definitions and the same rows:

* ``"database"``: ``SHOW CREATE DATABASE`` (character set and collation);
* ``"counts"``: objects by kind from information_schema (tables by ``table_type``, routines by
  ``routine_type``, triggers, events, indexes, constraints by ``constraint_type``, checks);
* ``"create"``: ``SHOW CREATE TABLE``/``VIEW``/``SEQUENCE``/``PROCEDURE``/``FUNCTION``/
  ``TRIGGER``/``EVENT`` of every object, keyed ``"<kind> <name>"`` (every column of the
  statement's result except a trigger's ``Created`` time);
* ``"checksums"``: ``CHECKSUM TABLE`` of every base table (system-versioned ones included);
* ``"history"``: for a system-versioned table, a digest of every row version
  (``FOR SYSTEM_TIME ALL`` with the row start and end columns), which ``CHECKSUM TABLE`` ignores;
* ``"sequences"``: a sequence's current state (``SELECT * FROM seq``).

The database's own name is replaced by ``<db>`` everywhere, so a source and the restored copy in
another database compare equal. Compare with ``assert schema_fingerprint(a) ==
schema_fingerprint(b)``; pytest shows the differing keys. ``fingerprint_diff`` gives a shorter,
readable list of differences for an assertion message.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests import support

_KINDS = {
    # information_schema.tables.table_type -> SHOW CREATE kind
    "BASE TABLE": "TABLE",
    "SYSTEM VERSIONED": "TABLE",
    "VIEW": "VIEW",
    "SEQUENCE": "SEQUENCE",
}


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _s(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _rows(sql: str, database: str | None = None) -> list[list[str]]:
    out = support.admin_sql(sql, database=database)
    return [line.split("\t") for line in out.splitlines()]


def _counts(database: str) -> dict[str, int]:
    db = _s(database)
    queries = {
        "table": f"SELECT table_type, COUNT(*) FROM information_schema.tables "
        f"WHERE table_schema={db} GROUP BY table_type",
        "routine": f"SELECT routine_type, COUNT(*) FROM information_schema.routines "
        f"WHERE routine_schema={db} GROUP BY routine_type",
        "trigger": f"SELECT 'all', COUNT(*) FROM information_schema.triggers "
        f"WHERE trigger_schema={db}",
        "event": f"SELECT 'all', COUNT(*) FROM information_schema.events WHERE event_schema={db}",
        "index": f"SELECT index_type, COUNT(DISTINCT table_name, index_name) "
        f"FROM information_schema.statistics WHERE table_schema={db} GROUP BY index_type",
        "constraint": f"SELECT constraint_type, COUNT(*) FROM information_schema.table_constraints"
        f" WHERE constraint_schema={db} GROUP BY constraint_type",
        "check": f"SELECT 'all', COUNT(*) FROM information_schema.check_constraints "
        f"WHERE constraint_schema={db}",
    }
    counts: dict[str, int] = {}
    for kind, sql in queries.items():
        for key, value in _rows(sql):
            counts[f"{kind} {key}"] = int(value)
    return counts


def _objects(database: str) -> list[tuple[str, str]]:
    """(SHOW CREATE kind, name) of every object, sorted."""
    db = _s(database)
    found: list[tuple[str, str]] = []
    for table_type, name in _rows(
        f"SELECT table_type, table_name FROM information_schema.tables WHERE table_schema={db}"
    ):
        found.append((_KINDS.get(table_type, "TABLE"), name))
    for routine_type, name in _rows(
        "SELECT routine_type, routine_name FROM information_schema.routines "
        f"WHERE routine_schema={db}"
    ):
        found.append((routine_type, name))
    for (name,) in _rows(
        f"SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema={db}"
    ):
        found.append(("TRIGGER", name))
    for (name,) in _rows(
        f"SELECT event_name FROM information_schema.events WHERE event_schema={db}"
    ):
        found.append(("EVENT", name))
    return sorted(found)


def _show_create(database: str, kind: str, name: str) -> list[str]:
    out = support.admin_sql(
        f"SHOW CREATE {kind} {_q(database)}.{_q(name)}".replace("\n", " "), database=database
    )
    rows = [line.split("\t") for line in out.splitlines()]
    (row,) = rows
    if kind == "TRIGGER":
        row = row[:-1]  # Created: when the restore ran, not part of the definition
    return row


def _history(database: str, table: str) -> str:
    columns = _rows(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema={_s(database)} AND table_name={_s(table)} ORDER BY ordinal_position"
    )
    period = _rows(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema={_s(database)} AND table_name={_s(table)} "
        "AND extra IN ('ROW START', 'ROW END') ORDER BY extra DESC"
    )
    names = [c for (c,) in columns]
    # Implicit period columns are invisible: not in information_schema.columns.
    extra = [p for (p,) in period] or ["ROW_START", "ROW_END"]
    select = ", ".join(_q(n) for n in names if n not in extra) + ", " + ", ".join(extra)
    out = support.admin_sql(
        f"SELECT {select} FROM {_q(table)} FOR SYSTEM_TIME ALL ORDER BY {select}",
        database=database,
    )
    return f"{out.count(chr(10))} rows sha256 {hashlib.sha256(out.encode()).hexdigest()}"


def _checksums(database: str, table_types: dict[str, str]) -> dict[str, str]:
    tables = [n for n, t in sorted(table_types.items()) if t in ("BASE TABLE", "SYSTEM VERSIONED")]
    if not tables:
        return {}
    rows = _rows("CHECKSUM TABLE " + ", ".join(f"{_q(database)}.{_q(t)}" for t in tables))
    return {name.split(".", 1)[1]: checksum for name, checksum in rows}


def schema_fingerprint(database: str) -> dict[str, Any]:
    """Everything that must be equal between a database and its restored copy (see module doc)."""

    def neutral(text: str) -> str:
        return text.replace(_q(database), "<db>").replace(database, "<db>")

    objects = _objects(database)
    create = {
        f"{kind} {name}": [neutral(part) for part in _show_create(database, kind, name)]
        for kind, name in objects
    }
    (db_row,) = _rows(f"SHOW CREATE DATABASE {_q(database)}")
    table_types = dict(
        (name, table_type)
        for table_type, name in _rows(
            "SELECT table_type, table_name FROM information_schema.tables "
            f"WHERE table_schema={_s(database)}"
        )
    )
    history = {
        name: _history(database, name)
        for name, table_type in sorted(table_types.items())
        if table_type == "SYSTEM VERSIONED"
    }
    sequences = {
        name: support.admin_sql(f"SELECT * FROM {_q(name)}", database=database).strip()
        for name, table_type in sorted(table_types.items())
        if table_type == "SEQUENCE"
    }
    return {
        "database": neutral(db_row[1]),
        "counts": _counts(database),
        "create": create,
        "checksums": _checksums(database, table_types),
        "history": history,
        "sequences": sequences,
    }


def fingerprint_diff(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one readable line per difference."""
    lines: list[str] = []
    for section in sorted(set(left) | set(right)):
        a, b = left.get(section), right.get(section)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    lines.append(f"{section}[{key}]: {a.get(key)!r} != {b.get(key)!r}")
        else:
            lines.append(f"{section}: {a!r} != {b!r}")
    return lines
