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
from collections.abc import Callable
from typing import Any

from app.engines.mysql.inventory import DumpInventory

MANIFEST_FORMAT = 1
# An INSERT's prefix (its table name, maybe a column list) fits in this; a longer line is not one.
_PREFIX_BYTES = 64 * 1024
_INSERT = re.compile(
    rb"(?:INSERT|REPLACE)(?: IGNORE)? INTO `((?:[^`]|``)+)`"
    # A column list (--dump-history names row_start/row_end unquoted).
    rb"(?: ?\((?:`(?:[^`]|``)*`|[^`()'\n])*\))? VALUES ?"
)
_QUOTE_BYTE = b"'"
_BACKSLASH_BYTE = b"\\"
# Object kinds the manifest counts (tables are listed with their rows instead).
OBJECT_KINDS = ("view", "sequence", "trigger", "procedure", "function", "event")


def _name(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", errors="replace")


_INSERT_AT = b"\nINSERT INTO `"
_DELIMITER_AT = b"\nDELIMITER "
_DELIMITER_END = b"\nDELIMITER ;\n"
# Bytes held back when no line start was found: a pattern may straddle two chunks.
_HOLD = max(len(_INSERT_AT), len(_DELIMITER_AT), len(_DELIMITER_END)) - 1
_OTHER, _ROWS, _BLOCK = 0, 1, 2
_NEWLINE = 0x0A


def _statement_end(buf: bytes, pos: int) -> int:
    """Where the ";" + newline ending an INSERT is in ``buf``, or -1. A single-byte ``find``
    (memchr) is several times faster than a two-byte one; a ";" inside a string just costs a
    step (never followed by a raw newline)."""
    while True:
        end = buf.find(b";", pos)
        if end < 0 or end + 1 >= len(buf):
            return -1
        if buf[end + 1] == _NEWLINE:
            return end
        pos = end + 1


class RowCounter:
    """Counts the rows of every table in a dump fed in chunks of any size.

    The stream is cut into regions by C-speed ``find``s, never walked line by line (a dump of
    MariaDB >= 10.11 has one line per row): an ``INSERT`` statement runs from a line starting
    ``INSERT INTO `` to the first ``;`` + newline (no string holds a raw newline, so that is its
    end); ``DELIMITER`` blocks (triggers, routines, events) are skipped whole, so an ``INSERT`` in
    a routine's body is never counted. Whatever is not an ``INSERT`` is handed to ``other`` (the
    object inventory), which so never reads the rows.
    """

    def __init__(self, other: Callable[[bytes], None] | None = None) -> None:
        self.rows: dict[str, int] = {}
        self._other = other
        self._mode = _OTHER
        self._carry = b"\n"  # the stream starts at a line start
        self._table = ""
        self._in_string = False
        self._row_lines = False

    def feed(self, chunk: bytes | memoryview) -> None:
        buf = self._carry + bytes(chunk) if self._carry else bytes(chunk)
        self._carry = b""
        pos, size = 0, len(buf)
        while pos < size:
            if self._mode == _ROWS:
                end = _statement_end(buf, pos)
                if end < 0:
                    stop = size
                    # Held: a ";" whose newline may come next, or a backslash that escapes the
                    # next chunk's first byte (an odd run of them).
                    if buf.endswith(b";"):
                        stop -= 1
                    elif buf.endswith(b"\\"):
                        run = size - len(buf.rstrip(b"\\"))
                        stop -= run % 2
                    stop = max(stop, pos)
                    self._count(buf, pos, stop)
                    self._carry = buf[stop:]
                    return
                self._count(buf, pos, end)
                self._mode = _OTHER
                pos = end + 1  # at the newline: the next line start
            elif self._mode == _BLOCK:
                end = buf.find(_DELIMITER_END, pos)
                if end < 0:
                    stop = max(pos, size - _HOLD)
                    self._emit(buf[pos:stop])
                    self._carry = buf[stop:]
                    return
                stop = end + len(_DELIMITER_END) - 1
                self._emit(buf[pos:stop])
                self._mode = _OTHER
                pos = stop
            else:
                pos = self._other_region(buf, pos)
                if pos < 0:
                    return

    def _other_region(self, buf: bytes, pos: int) -> int:
        """Skim to the next INSERT or DELIMITER line; the position after it, or -1 (carried)."""
        size = len(buf)
        insert = buf.find(_INSERT_AT, pos)
        block = buf.find(_DELIMITER_AT, pos, insert if insert >= 0 else size)
        if block >= 0:
            line_end = buf.find(b"\n", block + 1)
            if line_end < 0:
                self._emit(buf[pos:block])
                self._carry = buf[block:]
                return -1
            self._emit(buf[pos:line_end])
            if buf[block + len(_DELIMITER_AT) : line_end].strip() != b";":
                self._mode = _BLOCK
            return line_end
        if insert < 0:
            stop = max(pos, size - _HOLD)
            self._emit(buf[pos:stop])
            self._carry = buf[stop:]
            return -1
        match = _INSERT.match(buf, insert + 1)
        if match is None:
            line_end = buf.find(b"\n", insert + 1)
            if line_end < 0 and size - insert < _PREFIX_BYTES:
                self._emit(buf[pos:insert])
                self._carry = buf[insert:]  # its prefix is not all here yet
                return -1
            self._emit(buf[pos : insert + 1])
            return insert + 1  # not an INSERT of rows: skimmed as any other line
        self._emit(buf[pos : insert + 1])
        self._table = _name(match.group(1))
        self.rows.setdefault(self._table, 0)
        self._in_string = False
        self._mode = _ROWS
        # MariaDB >= 10.11 starts every row on a line of its own, right after "VALUES".
        self._row_lines = buf[match.end() : match.end() + 1] == b"\n"
        return match.end()

    def _emit(self, data: bytes) -> None:
        if self._other is not None and data:
            self._other(data)

    def _count(self, buf: bytes, start: int, stop: int) -> None:
        """Add the row openings in ``buf[start:stop]``, a piece of an INSERT's values."""
        if stop <= start:
            return
        if self._row_lines:
            # No string holds a raw newline: each newline opens a row, whatever the data (the
            # first follows "VALUES"; the last row's ends the statement, after its ";").
            self.rows[self._table] += buf.count(b"\n", start, stop)
            return
        piece = buf[start:stop]
        if not self._in_string and _QUOTE_BYTE not in piece:
            self.rows[self._table] += piece.count(b"(")
            return
        if _BACKSLASH_BYTE in piece:
            piece = piece.replace(b"\\\\", b"").replace(b"\\'", b"")
        parts = piece.split(b"'")
        code = parts[1::2] if self._in_string else parts[0::2]
        self.rows[self._table] += b" ".join(code).count(b"(")
        if len(parts) % 2 == 0:  # an odd number of quotes
            self._in_string = not self._in_string

    def close(self) -> None:
        """The stream ended: what was held back is the rest of the last region."""
        carry, self._carry = self._carry, b""
        if self._mode == _ROWS:
            self._count(carry, 0, len(carry))
        else:
            self._emit(carry)


class MySQLManifestObserver:
    """The manifest stage of a MySQL dump: fed every raw byte, in order (``ManifestObserver``)."""

    def __init__(self) -> None:
        self._inventory = DumpInventory()
        # The inventory reads every statement but the INSERTs (the rows are most of a dump).
        self._rows = RowCounter(self._inventory.feed)

    def feed(self, chunk: bytes | memoryview) -> None:
        self._rows.feed(chunk)

    def result(self, *, server_version: str | None) -> dict[str, Any]:
        """The manifest: ``{"format", "engine", "server_version", "tables": [{"name",
        "rows"}], "objects": {kind: count}}``; every table the dump creates is listed, an empty
        one with 0 rows."""
        self._rows.close()
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
