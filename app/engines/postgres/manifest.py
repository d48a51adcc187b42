"""What a ``pg_dump -Fc -Z0`` archive holds, read from the archive's own bytes while it streams.

Written to a pipe, a custom-format archive is: its header, its whole table of contents (every
entry: dump id, description, namespace, tag ...), then one data block per entry with data, in
TOC order. A ``TABLE DATA`` block is ``BLK_DATA`` + the entry's dump id + chunks (``int`` length
+ bytes, uncompressed with ``-Z0``) ended by a zero length; the bytes are the table's ``COPY``
text, one line per row (COPY escapes every newline inside a value), so the rows of a table are
the newlines of its chunks, less the three of the end-of-copy marker pg_dump <= 17 writes: exact,
and what the archive holds, not what the server had a moment later. Objects by kind come from
the same TOC (what ``pg_restore --list`` lists).

Cost: one Python step per chunk header (pg_dump writes one chunk per row, so per row: a
length read and a C-speed ``bytes.count``), nothing held but the bytes of one unfinished
header or TOC entry. The stream is never altered; a stream this parser can't read (an archive
version it does not know) makes the manifest say so (``unreadable``) rather than fail the dump.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

MANIFEST_FORMAT = 1
_BLK_DATA, _BLK_BLOBS = 1, 3
# pg_dump <= 17 ends a table's COPY data with this (no row can be a lone "\." line: COPY
# escapes every backslash); pg_dump 18 writes none.
_END_OF_COPY = b"\\.\n\n\n"
# TOC descriptions -> the kinds the manifest counts (what the restored database is counted by).
OBJECT_KINDS = {
    "VIEW": "view",
    "MATERIALIZED VIEW": "materialized view",
    "SEQUENCE": "sequence",
    "FUNCTION": "function",
    "PROCEDURE": "procedure",
    "TRIGGER": "trigger",
    "TYPE": "type",
}
KINDS = tuple(sorted(set(OBJECT_KINDS.values())))


class _NeedMore(Exception):
    """The buffer ends inside the item being read."""


class _Unreadable(Exception):
    pass


class _Reader:
    def __init__(self, buf: bytes, pos: int, int_size: int) -> None:
        self.buf = buf
        self.pos = pos
        self.int_size = int_size

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise _NeedMore
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def integer(self) -> int:
        end = self.pos + 1 + self.int_size
        if end > len(self.buf):
            raise _NeedMore
        sign = self.buf[self.pos]
        value = int.from_bytes(self.buf[self.pos + 1 : end], "little")
        self.pos = end
        return -value if sign else value

    def string(self) -> str | None:
        length = self.integer()
        if length < 0:
            return None
        end = self.pos + length
        if end > len(self.buf):
            raise _NeedMore
        text = self.buf[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end
        return text

    def skip(self, count: int) -> None:
        if self.pos + count > len(self.buf):
            raise _NeedMore
        self.pos += count


def _version(major: int, minor: int, rev: int) -> int:
    return (major << 16) | (minor << 8) | rev


# pg_dump 12-15 write 1.14, 16 writes 1.15 (the compression algorithm as a byte). A newer
# archive (pg_dump 17's 1.16 changed the TOC entry) is left unread: its manifest says so.
_V1_14, _V1_15, _V1_16 = _version(1, 14, 0), _version(1, 15, 0), _version(1, 16, 0)


class PostgresManifestObserver:
    """The manifest stage of a ``pg_dump -Fc -Z0`` stream (``ManifestObserver``)."""

    def __init__(self) -> None:
        self._buf = b""
        self._state = "header"
        self._int_size = 4
        self._off_size = 8
        self._version = 0
        self._entries_left = 0
        self._data_tables: dict[int, str] = {}  # dump id -> "schema.table" of TABLE DATA
        self._kinds: Counter[str] = Counter()
        self._rows: dict[str, int] = {}
        self._table: str | None = None  # the table whose chunks are being read (None: skipped)
        self._chunk_left = 0  # bytes of the current chunk still to come
        self._blob_state = ""
        self._tail = b""  # the last bytes of the current table's data
        self._error: str | None = None

    # ---- feeding -----------------------------------------------------------------------------

    def feed(self, chunk: bytes | memoryview) -> None:
        if self._error is not None:
            return
        data = bytes(chunk)
        if self._chunk_left:
            take = min(self._chunk_left, len(data))
            self._count(data, 0, take)
            self._chunk_left -= take
            data = data[take:]
            if not data:
                return
        self._buf = self._buf + data if self._buf else data
        try:
            self._parse()
        except _Unreadable as exc:
            self._error = str(exc)
            self._buf = b""

    def _parse(self) -> None:
        reader = _Reader(self._buf, 0, self._int_size)
        done = 0  # where the last whole item ended
        while done < len(self._buf):
            reader.pos = done
            reader.int_size = self._int_size
            try:
                if self._state == "header":
                    self._header(reader)
                elif self._state == "toc":
                    self._toc_entry(reader)
                elif self._state == "block":
                    self._block(reader)
                elif self._state == "chunks":
                    if not self._chunks(reader):
                        return  # ``_chunks`` kept what it has not read
                else:
                    self._blobs(reader)
            except _NeedMore:
                break
            done = reader.pos
        self._buf = self._buf[done:]

    def _header(self, r: _Reader) -> None:
        r.skip(5)
        if self._buf[:5] != b"PGDMP":
            raise _Unreadable("not a custom-format archive")
        major, minor = r.byte(), r.byte()
        rev = r.byte()
        self._version = _version(major, minor, rev)
        if self._version < _V1_14 or self._version >= _V1_16:
            raise _Unreadable(f"archive version {major}.{minor}.{rev} is not one dbkeep reads")
        r.int_size = r.byte()
        self._off_size = r.byte()
        if r.byte() != 1:  # archCustom
            raise _Unreadable("not a custom-format archive")
        if self._version >= _V1_15:
            if r.byte() != 0:  # PG_COMPRESSION_NONE
                raise _Unreadable("a compressed archive (dbkeep dumps with -Z0)")
        elif r.integer() != 0:
            raise _Unreadable("a compressed archive (dbkeep dumps with -Z0)")
        for _ in range(7):  # the creation time
            r.integer()
        r.string(), r.string(), r.string()  # database name, server and pg_dump versions
        self._entries_left = r.integer()
        self._int_size = r.int_size
        self._state = "toc" if self._entries_left else "block"

    def _toc_entry(self, r: _Reader) -> None:
        dump_id = r.integer()
        r.integer()  # hadDumper
        r.string(), r.string()  # table oid, oid
        tag = r.string() or ""
        desc = r.string() or ""
        r.integer()  # section
        r.string(), r.string(), r.string()  # defn, dropStmt, copyStmt
        namespace = r.string()
        r.string(), r.string()  # tablespace, table access method
        r.string(), r.string()  # owner, "false" (WITH OIDS)
        while r.string() is not None:  # dependencies, ended by a null string
            pass
        r.skip(1 + self._off_size)  # the data offset (flag + offset)
        name = f"{namespace}.{tag}" if namespace else tag
        if desc == "TABLE DATA":
            self._data_tables[dump_id] = name
            self._rows.setdefault(name, 0)
        elif desc in OBJECT_KINDS:
            self._kinds[OBJECT_KINDS[desc]] += 1
        self._entries_left -= 1
        if self._entries_left <= 0:
            self._state = "block"

    def _block(self, r: _Reader) -> None:
        kind = r.byte()
        dump_id = r.integer()
        if kind == _BLK_DATA:
            self._table = self._data_tables.get(dump_id)
            self._state = "chunks"
        elif kind == _BLK_BLOBS:
            self._table = None
            self._blob_state = "oid"
            self._state = "blobs"
        else:
            raise _Unreadable(f"unexpected block type {kind}")

    def _chunks(self, r: _Reader) -> bool:
        """Read chunk headers; count what of their bytes is here. False: wait for more."""
        buf = self._buf
        size = len(buf)
        while True:
            start = r.pos
            try:
                length = r.integer()
            except _NeedMore:
                self._buf = buf[start:]  # the chunks before it are counted: never again
                return False
            if length == 0:
                if self._table is not None and self._tail == _END_OF_COPY:
                    self._rows[self._table] -= _END_OF_COPY.count(b"\n")
                self._tail = b""
                self._state = "blobs" if self._blob_state == "data" else "block"
                if self._blob_state == "data":
                    self._blob_state = "oid"
                return True
            end = r.pos + length
            self._count(buf, r.pos, min(end, size))
            if end > size:
                self._chunk_left = end - size
                self._buf = b""
                return False
            r.pos = end

    def _count(self, buf: bytes, start: int, stop: int) -> None:
        """Count the row ends in ``buf[start:stop]``, a piece of the current table's data."""
        if self._table is None or stop <= start:
            return
        self._rows[self._table] += buf.count(b"\n", start, stop)
        keep = len(_END_OF_COPY)
        self._tail = (self._tail + buf[max(start, stop - keep) : stop])[-keep:]

    def _blobs(self, r: _Reader) -> None:
        oid = r.integer()
        if oid == 0:
            self._blob_state = ""
            self._state = "block"
        else:
            self._blob_state = "data"
            self._state = "chunks"

    # ---- the result --------------------------------------------------------------------------

    def result(self, *, server_version: str | None) -> dict[str, Any]:
        """``{"format", "engine", "server_version", "tables": [{"name", "rows"}], "objects":
        {kind: count}}``, tables schema-qualified (``public.items``); with ``unreadable``
        instead of tables when the stream could not be read."""
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "engine": "postgresql",
            "server_version": server_version,
        }
        if self._error is not None or self._state in ("header", "toc"):
            manifest["unreadable"] = self._error or "the archive ended inside its header"
            return manifest
        manifest["tables"] = [{"name": n, "rows": self._rows[n]} for n in sorted(self._rows)]
        manifest["objects"] = {kind: self._kinds.get(kind, 0) for kind in KINDS}
        return manifest
