"""The objects of a database, from an archive's table of contents or from the server.

Both sides name an object the same way: ``schema.name`` (functions and procedures with their
argument types, as pg_dump writes them with an empty search_path; triggers as
``schema.table.trigger``; schemas and extensions by their own name).
"""

from __future__ import annotations

import json

from app.engines.base import DbObject

# pg_restore --list's descriptions -> DbObject kinds (None: listed, not compared).
_KINDS: dict[str, str | None] = {
    "SCHEMA": "schema",
    "EXTENSION": "extension",
    "TYPE": "type",
    "FUNCTION": "function",
    "PROCEDURE": "procedure",
    "TABLE": "table",
    "VIEW": "view",
    "MATERIALIZED VIEW": "materialized view",
    "SEQUENCE": "sequence",
    "TRIGGER": "trigger",
    # Longer descriptions that begin like one above: matched first, not compared.
    "TABLE DATA": None,
    "TABLE ATTACH": None,
    "MATERIALIZED VIEW DATA": None,
    "SEQUENCE SET": None,
    "SEQUENCE OWNED BY": None,
    "TYPE DATA": None,
}
_BY_LENGTH = sorted(_KINDS, key=len, reverse=True)


def parse_toc_line(line: str) -> DbObject | None:
    """One line of ``pg_restore --list`` (``226; 1259 16940 TABLE sales t owner``) as the
    object it creates, or None (comments, data, constraints, ACLs ...)."""
    line = line.rstrip("\r\n")
    if not line or line.startswith(";"):
        return None
    head, sep, rest = line.partition("; ")
    if not sep or not head.strip().isdigit():
        return None
    fields = rest.split(" ", 2)
    if len(fields) < 3:
        return None
    body, _, _owner = fields[2].rpartition(" ")  # the owner is last (empty for extensions)
    for desc in _BY_LENGTH:
        if body.startswith(desc + " "):
            kind = _KINDS[desc]
            if kind is None:
                return None
            namespace, _, tag = body[len(desc) + 1 :].partition(" ")
            if not tag:
                return None
            if kind in ("schema", "extension"):
                return DbObject(kind, tag)
            if kind == "trigger":
                table, _, trigger = tag.rpartition(" ")
                return DbObject(kind, f"{namespace}.{table}.{trigger}")
            return DbObject(kind, f"{namespace}.{tag}")
    return None


def parse_toc(listing: str) -> set[DbObject]:
    return {obj for obj in map(parse_toc_line, listing.splitlines()) if obj is not None}


# One JSON document of every user object; run with an empty search_path so that type names in
# function signatures are schema-qualified as pg_dump writes them.
INVENTORY_SQL = r"""
SET search_path = '';
WITH ns AS (
    SELECT oid, nspname FROM pg_catalog.pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
), objects AS (
    SELECT 'schema' AS kind, nspname AS name FROM ns
    UNION ALL
    SELECT 'extension', extname FROM pg_catalog.pg_extension
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' ELSE 'sequence' END,
           ns.nspname || '.' || c.relname
    FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           ns.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'
    FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p', 'w')
    UNION ALL
    SELECT 'trigger', ns.nspname || '.' || c.relname || '.' || t.tgname
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN ns ON ns.oid = c.relnamespace WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'type', ns.nspname || '.' || t.typname
    FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
    WHERE t.typtype IN ('b', 'c', 'e', 'r', 'm') AND (t.typrelid = 0 OR c.relkind = 'c')
      AND NOT (t.typelem <> 0 AND t.typlen = -1 AND t.typcategory = 'A')
)
SELECT json_build_object(
    'database', (SELECT json_build_object(
        'encoding', pg_catalog.pg_encoding_to_char(d.encoding),
        'collate', d.datcollate, 'ctype', d.datctype)
        FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
    'objects', COALESCE((SELECT json_agg(json_build_array(kind, name)) FROM objects), '[]'))
"""


def parse_inventory(text: str) -> tuple[dict[str, str] | None, set[DbObject]]:
    """``INVENTORY_SQL``'s answer (psql -At): the database's encoding/locale and its objects."""
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no inventory in the answer")
    doc = json.loads(lines[-1])
    objects = {DbObject(kind, name) for kind, name in doc["objects"]}
    return doc.get("database"), objects
