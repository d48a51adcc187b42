"""Which objects a mysqldump/mariadb-dump file declares, and which a database holds.

A restore is checked against the dump it loaded: every table, view, sequence, trigger, routine
and event the dump creates must exist afterwards (and, unless the user asked to keep objects the
backup doesn't have, nothing else). The dump is read as statements, following ``DELIMITER`` and
skipping comment lines, so a ``CREATE`` that sits inside a multi-line statement (a routine body, a
view's definition) is never taken for one; only the first few KiB of each statement are looked at,
so a dump's multi-megabyte ``INSERT`` lines cost one ``find`` each.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from app.engines.base import DbObject
from app.pipeline.codecs import decoder
from app.pipeline.compression import Compression

# Object kinds, as reported to the user. An index or foreign key is named ``table.name``
# (``table.PRIMARY`` for a primary key).
KINDS = (
    "table",
    "sequence",
    "view",
    "trigger",
    "procedure",
    "function",
    "event",
    "index",
    "foreign key",
)

_HEAD_BYTES = 4096
_VERSION_COMMENT = re.compile(rb"/\*M?!\d{5,6}\s?|\*/")
_NAME = rb"(`(?:[^`]|``)*`|[A-Za-z0-9_$\x80-\xff]+)"
_QUALIFIED = _NAME + rb"(?:\s*\.\s*" + _NAME + rb")?"
_ACCOUNT_PART = rb"(?:`(?:[^`]|``)*`|'[^']*'|[^\s@]+)"
_DEFINER = rb"(?:DEFINER\s*=\s*" + _ACCOUNT_PART + rb"(?:\s*@\s*" + _ACCOUNT_PART + rb")?\s+)?"
_CREATE = re.compile(
    rb"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?"
    rb"(?:ALGORITHM\s*=\s*\w+\s+)?" + _DEFINER + rb"(?:SQL\s+SECURITY\s+\w+\s+)?"
    rb"(?:TEMPORARY\s+)?(?:AGGREGATE\s+)?"
    rb"(TABLE|SEQUENCE|VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT)\s+"
    rb"(?:IF\s+NOT\s+EXISTS\s+)?" + _QUALIFIED,
    re.IGNORECASE | re.DOTALL,
)
_DELIMITER = re.compile(rb"^\s*DELIMITER\s+(\S+)", re.IGNORECASE)
# The lines of a dump's CREATE TABLE: its first, and those declaring keys.
_CREATE_TABLE_LINE = re.compile(rb"^CREATE TABLE " + _NAME + rb" \($")
_KEY_LINE = re.compile(
    rb"^\s+(?:(PRIMARY KEY)|(?:UNIQUE |FULLTEXT |SPATIAL |VECTOR )?KEY " + _NAME + rb"|"
    rb"CONSTRAINT " + _NAME + rb" FOREIGN KEY)"
)


def _unquote(raw: bytes) -> str:
    if raw.startswith(b"`"):
        raw = raw[1:-1].replace(b"``", b"`")
    return raw.decode("utf-8", errors="replace")


def classify_statement(head: bytes) -> DbObject | None:
    """The object a statement (its first bytes) creates, if it is a ``CREATE`` of one."""
    text = _VERSION_COMMENT.sub(b" ", head)
    match = _CREATE.match(text)
    if match is None:
        return None
    kind = match.group(1).decode().lower()
    name = match.group(3) or match.group(2)
    return DbObject(kind, _unquote(name))


class DumpInventory:
    """Fed a dump's bytes in any chunks; ``objects()`` is what it creates."""

    def __init__(self) -> None:
        self._delimiter = b";"
        self._in_statement = False
        self._head = bytearray()
        self._line = bytearray()  # the current line's first bytes
        self._line_len = 0
        self._tail = b""  # the current line's last bytes (for the delimiter)
        self._found: list[DbObject] = []
        self._table: str | None = None  # the CREATE TABLE being read

    def feed(self, chunk: bytes | memoryview) -> None:
        data = bytes(chunk)
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if len(self._line) < _HEAD_BYTES:
                self._line += piece[: _HEAD_BYTES - len(self._line)]
            self._tail = (self._tail + piece[-64:])[-64:]
            self._line_len += len(piece)
            if end < 0:
                return
            self._end_of_line()
            start = end + 1

    def close(self) -> None:
        if self._line_len:
            self._end_of_line()

    def _end_of_line(self) -> None:
        line = bytes(self._line)
        tail = self._tail.rstrip()
        self._line.clear()
        self._tail = b""
        self._line_len = 0
        if not self._in_statement:
            stripped = line.strip()
            if not stripped or stripped == b"--" or stripped.startswith((b"-- ", b"#")):
                return
            if delimiter := _DELIMITER.match(line):
                self._delimiter = delimiter.group(1)
                return
            self._in_statement = True
            self._head = bytearray(line)
            table = _CREATE_TABLE_LINE.match(line.rstrip())
            self._table = _unquote(table.group(1)) if table else None
        else:
            if len(self._head) < _HEAD_BYTES:
                self._head += b"\n" + line[: _HEAD_BYTES - len(self._head)]
            if self._table is not None:
                self._key(line)
        if tail.endswith(self._delimiter):
            self._in_statement = False
            found = classify_statement(bytes(self._head))
            if found is not None:
                self._found.append(found)

    def _key(self, line: bytes) -> None:
        match = _KEY_LINE.match(line)
        if match is None:
            return
        if match.group(1):
            self._found.append(DbObject("index", f"{self._table}.PRIMARY"))
        elif match.group(2):
            self._found.append(DbObject("index", f"{self._table}.{_unquote(match.group(2))}"))
        else:
            name = _unquote(match.group(3))
            self._found.append(DbObject("foreign key", f"{self._table}.{name}"))

    def objects(self) -> set[DbObject]:
        """What the dump creates; a view's placeholder table counts as the view."""
        found = set(self._found)
        views = {o.name for o in found if o.kind == "view"}
        return {o for o in found if not (o.kind == "table" and o.name in views)}


async def declared_objects(source: AsyncIterator[bytes], compression: Compression) -> set[DbObject]:
    """Read a stored (maybe compressed) dump to its end; the objects it creates."""
    inventory = DumpInventory()
    async with decoder(compression)(source) as raw:
        async for chunk in raw:
            inventory.feed(chunk)
    inventory.close()
    return inventory.objects()


# ---- what a database holds -------------------------------------------------------------------


def inventory_sql(database: str) -> str:
    """One query listing ``kind<TAB>name`` of every object in ``database`` (a validated name)."""
    return (
        "SELECT CASE table_type WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' "  # noqa: S608
        "ELSE 'table' END, table_name FROM information_schema.TABLES "
        f"WHERE table_schema = '{database}' "
        "UNION ALL SELECT LOWER(routine_type), routine_name FROM information_schema.ROUTINES "
        f"WHERE routine_schema = '{database}' "
        "UNION ALL SELECT 'trigger', trigger_name FROM information_schema.TRIGGERS "
        f"WHERE trigger_schema = '{database}' "
        "UNION ALL SELECT 'event', event_name FROM information_schema.EVENTS "
        f"WHERE event_schema = '{database}' "
        "UNION ALL SELECT DISTINCT 'index', CONCAT(table_name, '.', index_name) "
        f"FROM information_schema.STATISTICS WHERE table_schema = '{database}' "
        "UNION ALL SELECT 'foreign key', CONCAT(table_name, '.', constraint_name) "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS "
        f"WHERE constraint_schema = '{database}';\n"
    )


_BATCH_ESCAPES = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}


def unescape_batch(field: str) -> str:
    """Undo the client's ``--batch`` escaping of one output field."""
    return re.sub(r"\\(.)", lambda m: _BATCH_ESCAPES.get(m.group(1), m.group(0)), field)


def parse_inventory(output: str) -> set[DbObject]:
    found = set()
    for line in output.splitlines():
        if "\t" in line:
            kind, name = line.split("\t", 1)
            found.add(DbObject(kind, unescape_batch(name)))
    return found
