"""What a mysqldump/mariadb-dump stream holds, counted from the stream itself while it is taken.

A backup's manifest records, per table, how many rows its dump contains, the objects it creates by
kind (views, routines, triggers, events, sequences) and the server version: what a verification
(a test restore) compares the restored database with.

Rows are counted in the dump's ``INSERT INTO `t` VALUES (...),(...);`` lines. The dump tool escapes
every newline, carriage return, NUL and quote inside a string (no ``--hex-blob``: binary strings
are escaped too), so no string spans a line: an ``INSERT`` ends at the first line whose last byte
is ``;`` (MariaDB >= 10.11 puts each row on a line of its own; older tools the whole statement on
one), and, outside quoted strings, the only ``(`` of its values list are those opening a row.
Strings are skipped with C-speed bytes operations only (drop escaped backslashes and quotes, split
on quotes, count in every other piece): no per-byte Python. An ``INSERT`` is never held whole (a
single row may be hundreds of MiB): it is counted piece by piece as it streams, carrying at most
one byte (a backslash whose escaped byte comes next).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from app.engines.mysql.inventory import DumpInventory

MANIFEST_FORMAT = 1
# An INSERT's prefix (its table name, maybe a column list) fits in this; a longer line is not one.
_PREFIX_BYTES = 64 * 1024
_INSERT = re.compile(
    rb"^(?:INSERT|REPLACE)(?: IGNORE)? INTO `((?:[^`]|``)+)`"
    rb"(?: ?\((?:`(?:[^`]|``)*`(?:, ?)?)*\))? VALUES ?"
)
_QUOTE = 0x27
_BACKSLASH = 0x5C
# Object kinds the manifest counts (tables are listed with their rows instead).
OBJECT_KINDS = ("view", "sequence", "trigger", "procedure", "function", "event")


def _name(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", errors="replace")


class RowCounter:
    """Counts the rows of every table in a dump fed in chunks of any size."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._head = bytearray()  # the current line's first bytes, until it is known
        self._skipping = False  # inside a line that is not an INSERT: skip to its end
        self._table: str | None = None  # inside an INSERT's values: its table
        self._in_string = False
        self._carry = b""  # an odd trailing backslash, held until its escaped byte arrives
        self._last = b""  # the last non-blank byte of the INSERT so far (b";" at its end)

    def feed(self, chunk: bytes | memoryview) -> None:
        data = bytes(chunk) if isinstance(chunk, memoryview) else chunk
        pos, size = 0, len(data)
        while pos < size:
            if self._table is not None:
                end = data.find(b"\n", pos)
                if end < 0:
                    self._values(data[pos:], final=False)
                    return
                self._values(data[pos:end], final=True)
                if self._last == b";" and not self._in_string:
                    self._end_line()  # the statement's end; else its next row's line follows
                pos = end + 1
            elif self._skipping:
                end = data.find(b"\n", pos)
                if end < 0:
                    return
                self._end_line()
                pos = end + 1
            else:
                end = data.find(b"\n", pos)
                piece = data[pos:] if end < 0 else data[pos:end]
                room = _PREFIX_BYTES - len(self._head)
                self._head += piece[:room]
                started = self._classify(complete=end >= 0 or len(piece) > room)
                if started is not None:
                    values = bytes(self._head[started:]) + piece[room:]
                    self._head.clear()
                    self._values(values, final=end >= 0)
                if end < 0:
                    if self._skipping:
                        self._head.clear()
                    return
                if started is None or (self._last == b";" and not self._in_string):
                    self._end_line()
                pos = end + 1

    def _classify(self, *, complete: bool) -> int | None:
        """Where the current line's values start when it is an INSERT (its table set); None
        when it isn't one (``_skipping`` set once that is sure) or can't be told yet."""
        head = bytes(self._head)
        if not head.startswith(b"INSERT"[: len(head)]) and not head.startswith(
            b"REPLACE"[: len(head)]
        ):
            self._skipping = not complete or self._skipping
            return None
        match = _INSERT.match(head)
        if match is not None:
            self._table = _name(match.group(1))
            self.rows.setdefault(self._table, 0)
            self._in_string = False
            self._carry = b""
            self._last = b""
            return match.end()
        if complete or len(head) >= _PREFIX_BYTES:
            self._skipping = True
        return None

    def _values(self, piece: bytes, *, final: bool) -> None:
        """Count the row openings in this piece of an INSERT's values list."""
        buf = self._carry + piece if self._carry else piece
        self._carry = b""
        if not final and buf and buf[-1] == _BACKSLASH:
            # Keep an odd run of trailing backslashes' last one: it escapes the next byte.
            run = len(buf) - len(buf.rstrip(b"\\"))
            if run % 2:
                self._carry, buf = buf[-1:], buf[:-1]
        if self._in_string or _QUOTE in buf:
            if _BACKSLASH in buf:
                buf = buf.replace(b"\\\\", b"").replace(b"\\'", b"")
            parts = buf.split(b"'")
            code = parts[1::2] if self._in_string else parts[0::2]
            count = b" ".join(code).count(b"(")
            if (len(parts) - 1) % 2:
                self._in_string = not self._in_string
        else:
            count = buf.count(b"(")
        assert self._table is not None
        self.rows[self._table] += count
        stripped = piece.rstrip()
        if stripped:
            self._last = stripped[-1:]

    def _end_line(self) -> None:
        self._head.clear()
        self._skipping = False
        self._table = None
        self._in_string = False
        self._carry = b""
        self._last = b""


class MySQLManifestObserver:
    """The manifest stage of a MySQL dump: fed every raw byte, in order (``ManifestObserver``)."""

    def __init__(self) -> None:
        self._rows = RowCounter()
        self._inventory = DumpInventory()

    def feed(self, chunk: bytes | memoryview) -> None:
        data = bytes(chunk)
        self._rows.feed(data)
        self._inventory.feed(data)

    def result(self, *, server_version: str | None) -> dict[str, Any]:
        """The manifest: ``{"format", "engine", "server_version", "tables": [{"name",
        "rows"}], "objects": {kind: count}}``; every table the dump creates is listed, an empty
        one with 0 rows."""
        self._inventory.close()
        objects = self._inventory.objects()
        tables = {o.name for o in objects if o.kind == "table"}
        rows = dict(self._rows.rows)
        for table in tables:
            rows.setdefault(table, 0)
        kinds = Counter(o.kind for o in objects if o.kind in OBJECT_KINDS)
        return {
            "format": MANIFEST_FORMAT,
            "engine": "mysql",
            "server_version": server_version,
            "tables": [{"name": name, "rows": rows[name]} for name in sorted(rows)],
            "objects": {kind: kinds.get(kind, 0) for kind in OBJECT_KINDS},
        }
