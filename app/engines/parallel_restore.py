"""Restore a mysqldump/mariadb-dump stream with several client sessions at once.

One ``mariadb`` session replaying a dump keeps one server core busy; tables are independent, so
they can load side by side. The dump is read once, as a stream, and cut at its per-table comment
markers (``-- Table structure for table `t```, ``-- Dumping data for table `t```):

* the header's ``SET`` lines (character set, time zone, ``UNIQUE_CHECKS=0``,
  ``FOREIGN_KEY_CHECKS=0``, SQL mode) open every session;
* each table section (structure, rows, triggers) is spooled to its own 0600 file in a private 0700
  directory and loaded by one of ``parallelism`` client processes, which starts while the file is
  still being written (it follows the file as it grows), so loading overlaps reading;
* InnoDB tables are created with their primary key and the keys the load needs; the other
  secondary indexes (the last ones of each kind, so that ``SHOW CREATE TABLE`` keeps its order)
  are added by one ``ALTER TABLE`` after the rows (a sorted index build, far cheaper than
  inserting every row into every index once an index outgrows the buffer pool) and foreign keys
  at the very end;
* everything else — view placeholders and final views, events, routines — runs last, in dump
  order, in one session, once every table is loaded.

The dump is cut only where the ``mariadb`` client itself would be between two statements: the
splitter reads it with the client's lexing rules (``SqlLexer``), so a marker or ``DELIMITER`` line
inside a literal is text. A dump that can't be split — one that doesn't look like a
single-database mysqldump (other statements in its header, a sequence before the first table, no
``FOREIGN_KEY_CHECKS=0``), or whose header the lexer is unsure of — is loaded from its raw
bytes, exactly as written, in one session: the decision is taken before the first section, and
nothing the splitter rewrote is used. Where the lexer is unsure later on, the rest of the dump
runs as written, in the session of the section it was in, once everything before it has
loaded. Memory stays bounded whatever the dump size (the temporary files hold up to the whole
uncompressed dump on disk). Any failure — a client error, a damaged or truncated backup — kills
every session and raises ``EngineError`` with the server's reason and the line of the dump it
refers to; what was loaded stays, and the caller rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from app.config import Compression
from app.engines.base import EngineError, FailureKind, ProgressCallback, TargetSpec
from app.engines.mysql_errors import classify
from app.pipeline.codecs import CorruptStream, PipelineError, decoder
from app.pipeline.process import DEVNULL, ToolNotFound, spawn
from app.pipeline.streams import ProgressThrottle, RawStats
from app.storage.base import StorageError

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SPOOL_PREFIX = "dbkeep-restore-"
# Spooled bytes are written in slices of about this size.
_FLUSH_BYTES = 1024 * 1024
# How much one sendfile() call moves: small enough for steady progress and quick cancellation.
_SEND_BYTES = 4 * 1024 * 1024
# A line read in "line mode" longer than this stops the splitting (the rest loads as it is).
_LONG_LINE = 1024 * 1024
# A CREATE TABLE statement longer than this is loaded as it is (no index deferral).
_MAX_CREATE = 1024 * 1024
_MAX_PROLOGUE = 64 * 1024
_PIPE_SIZE = 1024 * 1024
_IOV_MAX = 512
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

_MARKER = re.compile(
    rb"^-- (Table structure for table|Dumping data for table|"
    rb"Temporary (?:table|view) structure for view|Final view structure for view|"
    rb"Dumping events for database|Dumping routines for database|Current Database:)"
    rb" ?(`(?:[^`]|``)*`|'[^']*')?"
)
_TABLE_MARKERS = {b"Table structure for table", b"Dumping data for table"}
_DATABASE_MARKER = b"Current Database:"
# Header lines each session replays: session variables and the sandbox directive.
_REPLAYABLE = re.compile(
    rb"^(?:/\*![0-9]{5} SET (?!.*GLOBAL)[^\n]*\*/;|SET (?!.*GLOBAL)[^\n]*;|"
    rb"/\*M!999999\\- enable the sandbox mode \*/)\s*$",
    re.IGNORECASE,
)
# One pass finds either stop: cheaper than two finds (the rows are full of "-" and " ").
# Lines that may set the SQL mode (``/*!50003 SET sql_mode = ...*/`` before a table's triggers)
# stop it too, so that the lexer sees every mode that changes quoting.
# (A class for the first byte, then the rest by lookbehind: as fast as a two-way search.)
_STOP = re.compile(rb"\n[-/DdSs](?:(?<=-)- |(?<=/)\*!|(?i:(?<=d)elimiter\s|(?<=s)et\s))")
_DASH_COMMENT = re.compile(rb"--(?:\s|$)")
# Raw bytes kept until the splitter knows whether the dump can be split at all.
_MAX_UNDECIDED = 8 * 1024 * 1024
_FK_CHECKS_OFF = re.compile(rb"FOREIGN_KEY_CHECKS\s*=\s*0", re.IGNORECASE)
_CHARSET_CLIENT = re.compile(rb"^/\*!40101 SET character_set_client = \w+ \*/;\s*$")
_KEY_FIRST_COLUMN = re.compile(rb"^\s*(?:UNIQUE )?KEY `(?:[^`]|``)*` \(`((?:[^`]|``)*)`")
_COLUMN_NAME = re.compile(rb"^  `((?:[^`]|``)*)` ")
_ERROR_LINE = re.compile(r"(ERROR \d+ \([0-9A-Z]{5}\) at line )(\d+)")
# Lock wait timeout and deadlock. MariaDB's DDL takes the locks of tables linked by foreign keys
# without waiting: DROP TABLE `parent` fails at once while another session drops or loads its
# child. A table's section starts with DROP TABLE IF EXISTS, so running it again is safe.
_LOCK_CONFLICT = re.compile(r"^ERROR (?:1205|1213) ", re.MULTILINE)
# A section that met a lock conflict runs again as soon as another load finishes; with no other
# load running (the lock belongs to someone else) after these waits, then the restore fails.
_LONE_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


# ---- splitting the dump ----------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """Bytes before the first section; ``replayable`` when safe to run in every session."""

    data: bytes
    line: int
    replayable: bool


@dataclass(frozen=True)
class Begin:
    """A section starts: a table's structure and rows, what must run last, or a ``USE``."""

    kind: str  # "table", "other" (views, routines, events) or "database" (a --databases dump)
    name: str
    line: int


@dataclass(frozen=True)
class Data:
    data: bytes | memoryview  # rows are views of the chunk fed: no copy
    line: int
    lines: int  # newlines in ``data``


@dataclass(frozen=True)
class End:
    """The current section is over; ``epilogue`` adds its deferred indexes."""

    epilogue: bytes = b""
    epilogue_line: int = 0
    foreign_keys: bytes = b""


Event = Header | Begin | Data | End


@dataclass(frozen=True)
class DeferredIndexes:
    create: bytes  # the CREATE TABLE statement with only the indexes the load needs
    alter: bytes  # ALTER TABLE adding the other indexes, or b""
    foreign_keys: bytes  # ALTER TABLE adding the foreign keys, or b""


def defer_indexes(statement: bytes) -> DeferredIndexes | None:
    """Split a dumped InnoDB ``CREATE TABLE`` into create-then-index; None to load it as it is.

    Kept in the CREATE: the primary key, keys led by the AUTO_INCREMENT column, FULLTEXT,
    SPATIAL and hash keys, CHECK constraints. Tables without a primary key (InnoDB would cluster
    on another unique key), partitioned, system-versioned or non-InnoDB tables, and any line not
    in ``SHOW CREATE TABLE``'s usual shape are left alone.

    The server orders a table's keys by kind (unique ones first, FULLTEXT last), then by the
    order they were added; ``ALTER TABLE ... ADD KEY`` adds after the existing ones. So only the
    last keys of each kind can be deferred with ``SHOW CREATE TABLE`` unchanged: a key that must
    stay keeps every earlier key of its kind in the CREATE with it.
    """
    lines = statement.splitlines(keepends=True)
    if len(lines) < 3 or not lines[0].startswith(b"CREATE TABLE `"):
        return None
    first, body, last = lines[0], lines[1:-1], lines[-1]
    if not first.endswith(b" (\n") or not last.startswith(b") ENGINE=InnoDB"):
        return None
    if not last.rstrip().endswith(b";") or b"PARTITION" in last or b"VERSIONING" in last:
        return None
    table = first[len(b"CREATE TABLE ") : -len(b" (\n")]
    auto_increment: set[bytes] = set()
    # (clause, deferrable, kind of key or b"" for what isn't a key), in declared order
    clauses: list[tuple[bytes, bool, bytes]] = []
    foreign: list[bytes] = []
    has_primary = False
    for line in body:
        clause = line.strip().rstrip(b",")
        if line.startswith(b"  `"):
            column = _COLUMN_NAME.match(line)
            if column is None:
                return None
            if b" AUTO_INCREMENT" in line:
                auto_increment.add(column.group(1))
            clauses.append((clause, False, b""))
        elif line.startswith(b"  PRIMARY KEY ("):
            has_primary = True
            clauses.append((clause, False, b"unique"))
        elif line.startswith((b"  KEY `", b"  UNIQUE KEY `")):
            column = _KEY_FIRST_COLUMN.match(line)
            deferrable = not (
                column is None or column.group(1) in auto_increment or b"USING HASH" in line
            )
            kind = b"unique" if line.startswith(b"  UNIQUE") else b"plain"
            clauses.append((clause, deferrable, kind))
        elif line.startswith(b"  SPATIAL KEY `"):
            clauses.append((clause, False, b"plain"))  # sorted with plain keys
        elif line.startswith(b"  FULLTEXT KEY `"):
            clauses.append((clause, False, b"fulltext"))
        elif line.startswith(b"  CONSTRAINT `") and b" FOREIGN KEY (" in line:
            foreign.append(b"ADD " + clause)
        elif line.startswith(b"  CONSTRAINT `") and b" CHECK (" in line:
            clauses.append((clause, False, b""))
        else:
            return None
    if not has_primary:
        return None
    # Per kind, only the deferrable keys after the last one that stays.
    deferred_at: set[int] = set()
    stays: set[bytes] = set()
    for index in range(len(clauses) - 1, -1, -1):
        _, deferrable, kind = clauses[index]
        if not kind:
            continue
        if deferrable and kind not in stays:
            deferred_at.add(index)
        else:
            stays.add(kind)
    kept = [c for i, (c, _, _) in enumerate(clauses) if i not in deferred_at]
    keys = [b"ADD " + c for i, (c, _, _) in enumerate(clauses) if i in deferred_at]
    if not (keys or foreign):
        return None
    create = first + b",\n".join(b"  " + clause for clause in kept) + b"\n" + last
    alter = b"ALTER TABLE " + table + b" " + b", ".join(keys) + b";\n" if keys else b""
    fks = b"ALTER TABLE " + table + b" " + b", ".join(foreign) + b";\n" if foreign else b""
    return DeferredIndexes(create=create, alter=alter, foreign_keys=fks)


# The client's named commands (mysql.cc ``commands[]``): one of these words opening a line at a
# statement boundary, on a line without the delimiter, is run by the client, not the server.
_CLIENT_COMMANDS = frozenset(
    b"? charset clear connect delimiter edit ego exit go help nopager notee nowarning pager "
    b"print prompt quit rehash source status system tee use warnings".split()
)
# SQL modes that change how the client reads quotes and backslashes after they are set.
_LEXING_MODES = re.compile(rb"NO_BACKSLASH_ESCAPES|ANSI_QUOTES|\bANSI\b", re.IGNORECASE)
_SANDBOX = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/\s*$")
_DELIMITER_COMMAND = re.compile(rb"^[ \t]*delimiter[ \t]+([^\s'\"`\\]+)[ \t]*\r?\n?$", re.I)
_IN_QUOTE = {
    ord("'"): re.compile(rb"[\\']"),
    ord('"'): re.compile(rb'[\\"]'),
    ord("`"): re.compile(rb"[\\`]"),
}
_ML_END = re.compile(rb"\*/")
_CODE, _ML_COMMENT, _SS_COMMENT = 0, 1, 2


class SqlLexer:
    """The ``mariadb`` client's reading of a dump, line by line (``add_line`` in mysql.cc).

    It follows what decides where the client cuts statements: quotes (``'``, ``"``, backtick)
    with backslash escapes (a doubled quote closes and reopens, the same thing), comments
    (``-- ``, ``#`` to the end of the line, ``/* */``), conditional comments (``/*! */``,
    ``/*M! */``: code, in which the delimiter and quotes count), the ``DELIMITER`` command and the
    current delimiter. Whatever it can't be sure the client reads the same way — another client
    command, a backslash outside a string or inside a backtick name, ``delimiter`` inside a
    statement, the delimiter or a comment opening inside a conditional comment, an SQL mode that
    changes quoting — sets ``uncertain`` (the reason) and it reads no further.
    """

    def __init__(self) -> None:
        self.quote = 0  # the open quote's byte, or 0
        self.comment = _CODE
        self.pending = False  # statement text since the last delimiter
        self.delimiter = b";"
        self.statements = 0  # delimiters met
        self.uncertain = ""
        self._code = self._code_pattern()

    def _code_pattern(self) -> re.Pattern[bytes]:
        return re.compile(
            rb"\\|(?i:delimiter\s)|" + re.escape(self.delimiter) + rb"|#|--|/\*|\*/|['\"`]"
        )

    @property
    def boundary(self) -> bool:
        """Between statements: outside any literal or comment, no statement begun."""
        return not (self.quote or self.comment or self.pending or self.uncertain)

    @property
    def clean(self) -> bool:
        """A boundary with the dump's usual delimiter: where a section may start or end."""
        return self.boundary and self.delimiter == b";"

    def reset(self) -> None:
        """Fast mode read rows the client reads as complete statements: back at a boundary."""
        self.quote, self.comment, self.pending = 0, _CODE, False

    def _unsure(self, reason: str) -> None:
        self.uncertain = reason

    def line(self, line: bytes) -> None:
        """Read one line (with its newline) as the client would."""
        if self.uncertain:
            return
        if self.boundary:
            if _SANDBOX.match(line):
                return  # the dump's first line: the client's own sandbox directive
            command = _DELIMITER_COMMAND.match(line)
            if command is not None:
                self.delimiter = command.group(1)
                self._code = self._code_pattern()
                return
            word = line.split(None, 1)[0].lower() if line.strip() else b""
            if word in _CLIENT_COMMANDS and self.delimiter not in line:
                self._unsure(f"client command {word.decode(errors='replace')!r}")
                return
        if self.comment != _ML_COMMENT and _LEXING_MODES.search(line):
            self._unsure("an SQL mode that changes how quotes are read")
            return
        pos, end = 0, len(line)
        while pos < end:
            if self.quote:
                found = _IN_QUOTE[self.quote].search(line, pos)
                if found is None:
                    return  # the literal goes on on the next line
                if line[found.start()] == 0x5C:  # backslash
                    if self.quote == 0x60:
                        self._unsure("a backslash inside a backtick name")
                        return
                    pos = found.start() + 2
                else:
                    self.quote = 0
                    pos = found.end()
                continue
            if self.comment == _ML_COMMENT:
                found = _ML_END.search(line, pos)
                if found is None:
                    return
                self.comment = _CODE
                pos = found.end()
                continue
            found = self._code.search(line, pos)
            stop = end if found is None else found.start()
            if not self.pending and line[pos:stop].strip():
                self.pending = True
            if found is None:
                return
            token = found.group()
            pos = found.end()
            if token == self.delimiter:
                if self.comment == _SS_COMMENT:
                    self._unsure("the delimiter inside a conditional comment")
                    return
                self.pending = False
                self.statements += 1
            elif token == b"\\":
                if line[pos : pos + 1] == b"N":  # \N: NULL, not a command
                    self.pending, pos = True, pos + 1
                    continue
                self._unsure("a client command (a backslash outside a string)")
                return
            elif token[:1] in (b"d", b"D"):
                self._unsure("'delimiter' inside a statement")
                return
            elif token == b"#" or (
                token == b"--" and (pos >= end or line[pos : pos + 1].isspace())
            ):
                return  # a comment to the end of the line
            elif token == b"--":
                self.pending, pos = True, pos - 1  # two minus signs: look again from the second
            elif token == b"/*":
                if line[pos : pos + 1] == b"!" or line[pos : pos + 2] == b"M!":
                    if self.comment == _SS_COMMENT:
                        self._unsure("a conditional comment inside another")
                        return
                    self.comment, self.pending = _SS_COMMENT, True
                elif self.comment == _SS_COMMENT:
                    self._unsure("a comment inside a conditional comment")
                    return
                else:
                    self.comment = _ML_COMMENT
            elif token == b"*/":
                if self.comment == _SS_COMMENT:
                    self.comment = _CODE
                else:
                    self.pending, pos = True, pos - 1  # "*" then "/": look again from "/"
            else:  # a quote
                self.quote, self.pending = token[0], True


class DumpSplitter:
    """Turns a dump stream into header, section-begin, data and section-end events.

    Markers are recognised only where the ``mariadb`` client would be between two statements
    with the usual delimiter (``SqlLexer``), so text inside a literal or a ``DELIMITER`` block
    is never cut. Most bytes are rows, one per line; they are skimmed in place ("fast mode"): a
    chunk is searched for the next line starting with ``-- ``, ``DELIMITER``, ``SET`` or ``/*!``
    (what may change the lexer's state) and passed on as views of itself, never copied nor
    lexed. That rests on what mysqldump writes there: complete statements whose literals escape
    every newline (``\n``), so every line of rows starts outside any literal; a stop line
    counts as a boundary only when the previous statement line ends with ``;`` (and the restore
    fails rather than cut when that can't be seen).
    Headers, section starts, CREATE TABLE statements, triggers, routines, events and views are
    lexed line by line.

    When the lexer can't be sure of something, the splitter gives up: a ``Begin`` of kind
    "rest" says that the line it was unsure of and everything after it follow, as written, in
    the current section (its session keeps what the section set, such as saved variables); the
    current section's ``End`` comes at the very end. Before the first section it is the header
    that becomes unreplayable instead (the whole dump then runs as written).
    """

    # What a stop line starts with (upper case; DELIMITER and SET then take any white space).
    _STOP_LINES = (b"-- ", b"/*!", b"DELIMITER", b"SET")
    _TAIL = 4096  # bytes of fast-mode output kept to see the line before a stop

    def __init__(self) -> None:
        # Line mode: bytes not yet read. Fast mode: at most a partial last line that may be
        # the start of a stop line, held until its end arrives.
        self._buf = bytearray()
        self._line = 1  # dump line number of the next byte
        self._line_start = True  # the next byte begins a line
        self._fast = False
        self._raw = False  # given up: everything passes on as it is
        self._fast_tail = b""
        self._fast_bytes = 0  # passed on since fast mode began
        self._in_section = False
        self._is_table = False
        self._table_name = ""
        self._lexer = SqlLexer()
        self._create: bytearray | None = None
        self._create_line = 0
        self._create_safe = True
        self._create_statements = 0
        self._create_seen = False
        self._charset_line = b""
        self._deferred: DeferredIndexes | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Events for ``chunk``; an unfinished line is kept for the next call."""
        events: list[Event] = []
        if self._raw:
            self._emit(chunk, events)
        elif self._fast and not self._buf:
            self._skim(chunk, events)
        else:
            self._buf += chunk
            self._drain(events, final=False)
        return events

    def close(self) -> list[Event]:
        """Events for what is left at the end of the stream, and the last section's end."""
        events: list[Event] = []
        self._drain(events, final=True)
        if self._create is not None:
            self._emit_create(bytes(self._create), events, rewrite=False)
        if self._in_section:
            events.append(self._end())
        return events

    # -- fast mode --

    def _skim(self, data: bytes, events: list[Event]) -> None:
        """Fast mode over a chunk, ``_buf`` being empty: pass rows on as views of ``data``."""
        stop = self._find_stop(data)
        if stop >= 0:
            self._fast_emit(data, events, 0, stop)
            self._buf += memoryview(data)[stop:]
            self._drain(events, final=False)
            return
        held = self._held_from(data)
        self._fast_emit(data, events, 0, held)
        if held < len(data):
            self._buf += memoryview(data)[held:]

    def _find_stop(self, data: bytes | bytearray) -> int:
        """Offset of the first line that may end fast mode (a marker, DELIMITER), or -1."""
        if self._line_start and _STOP.match(b"\n" + bytes(data[:11])):
            return 0
        found = _STOP.search(data)
        return found.start() + 1 if found else -1

    def _held_from(self, data: bytes | bytearray) -> int:
        """Where the last, unfinished line starts if it could still become a stop line."""
        newline = data.rfind(b"\n")
        if newline < 0 and not self._line_start:
            return len(data)
        start = newline + 1
        partial = bytes(data[start : start + 10]).upper()
        if any(partial[: len(s)] == s[: len(partial)] for s in self._STOP_LINES):
            return start  # (a line such as "SETTINGS" is held for nothing: harmless)
        return len(data)

    def _fast_emit(
        self, data: bytes | bytearray, events: list[Event], start: int = 0, end: int | None = None
    ) -> None:
        end = len(data) if end is None else end
        if end <= start:
            return
        self._fast_bytes += end - start
        if end - start >= self._TAIL:
            self._fast_tail = bytes(data[end - self._TAIL : end])
        else:
            self._fast_tail = (self._fast_tail + bytes(data[start:end]))[-self._TAIL :]
        self._emit(bytes(data) if isinstance(data, bytearray) else data, events, start, end)

    def _enter_fast(self) -> None:
        self._fast = True
        self._fast_tail = b""
        self._fast_bytes = 0

    def _stop_reached(self, events: list[Event]) -> None:
        """Fast mode met a stop line (now at the start of ``_buf``): is it between statements?

        mysqldump's rows never hold a raw newline inside a literal, so the line before is
        complete: a stop line is at a boundary when the last line that isn't a comment ended
        with ``;`` (or nothing came since fast mode began at a boundary).
        """
        self._fast = False
        window = self._fast_tail
        complete = self._fast_bytes <= len(window)
        at_boundary: bool | None = None
        lines = window.split(b"\n")[:-1] if window.endswith(b"\n") else None
        if not window:
            at_boundary = complete or None
        elif lines is not None:
            for index in range(len(lines) - 1, -1, -1):
                text = lines[index].strip()
                partial = index == 0 and not complete
                comment = not text or text.startswith(b"#") or _DASH_COMMENT.match(text)
                if comment and not partial:
                    continue
                if text.endswith(b";"):
                    at_boundary = True
                elif not partial:
                    at_boundary = False
                break
            else:
                at_boundary = True if complete else None
        if at_boundary:
            self._lexer.reset()
            return
        is_comment = self._buf.startswith(b"-- ")
        if at_boundary is False and is_comment:
            # A comment line between rows of one statement: pass it on, keep skimming.
            newline = self._buf.find(b"\n")
            cut = newline + 1 if newline >= 0 else len(self._buf)
            line = bytes(self._buf[:cut])
            del self._buf[:cut]
            self._fast_emit(line, events)
            self._fast = True
            return
        raise EngineError(
            f"the dump can't be split safely at line {self._line} (a statement seems to go on "
            "there); restore it with DBKEEP_RESTORE_PARALLELISM=1",
            kind=FailureKind.permanent,
        )

    # -- the buffer: line mode, and fast mode right after it --

    def _drain(self, events: list[Event], *, final: bool) -> None:
        while self._buf:
            if self._raw:
                self._emit(bytes(self._buf), events)
                self._buf.clear()
                return
            if self._fast:
                stop = self._find_stop(self._buf)
                if stop < 0:
                    held = len(self._buf) if final else self._held_from(self._buf)
                    if held:
                        self._fast_emit(bytes(self._buf[:held]), events)
                        del self._buf[:held]
                    return
                if stop > 0:
                    self._fast_emit(bytes(self._buf[:stop]), events)
                    del self._buf[:stop]
                if not final and self._buf.find(b"\n") < 0:
                    return  # the stop line isn't complete yet
                self._stop_reached(events)
                continue
            newline = self._buf.find(b"\n")
            if newline < 0:
                if final:
                    self._line_events(bytes(self._buf), events)
                    self._buf.clear()
                elif len(self._buf) > _LONG_LINE:
                    self._give_up("a line longer than 1 MiB", b"", events)
                return
            line = bytes(self._buf[: newline + 1])
            del self._buf[: newline + 1]
            self._line_events(line, events)

    def _emit(
        self, data: bytes, events: list[Event], start: int = 0, end: int | None = None
    ) -> None:
        """Pass ``data[start:end]`` on as part of the current section (or the header)."""
        end = len(data) if end is None else end
        if end <= start:
            return
        lines = data.count(b"\n", start, end)
        line = self._line
        self._line += lines
        self._line_start = data[end - 1] == 0x0A
        piece = data if start == 0 and end == len(data) else memoryview(data)[start:end]
        if self._in_section:
            events.append(Data(piece, line, lines))
        else:
            events.append(Header(bytes(piece), line, replayable=False))

    def _give_up(self, reason: str, line: bytes, events: list[Event]) -> None:
        """Stop splitting: ``line`` and the rest of the dump go on as they are (``Begin``
        of kind "rest")."""
        log.info("restore.split_stopped line=%d reason=%s", self._line, reason)
        start = self._create_line if self._create is not None else self._line
        if self._in_section:
            events.append(Begin(kind="rest", name="", line=start))
        self._raw = True
        self._fast = False
        if self._create is not None:  # a CREATE TABLE being read: passed on as it is
            create, self._create = bytes(self._create), None
            self._emit(create, events)
        self._emit(line, events)
        if self._buf:
            self._emit(bytes(self._buf), events)
            self._buf.clear()

    def _line_events(self, line: bytes, events: list[Event]) -> None:
        if self._raw:
            self._emit(line, events)
            return
        if self._create is not None:
            self._create_line_events(line, events)
            return
        lexer = self._lexer
        if lexer.clean and line.startswith(b"-- "):
            marker = _MARKER.match(line)
            if marker is not None:
                self._marker(line, marker, events)
                return
        at_boundary = lexer.boundary
        starts_create = (
            self._is_table
            and not self._create_seen
            and lexer.clean
            and line.startswith(b"CREATE TABLE `")
        )
        if not starts_create:
            lexer.line(line)
            if lexer.uncertain:
                self._give_up(lexer.uncertain, line, events)
                return
        if not self._in_section:
            line_no = self._line
            self._line += line.count(b"\n")
            self._line_start = True
            replayable = (
                at_boundary
                and lexer.boundary
                and (not line.strip() or line.startswith(b"--") or bool(_REPLAYABLE.match(line)))
            )
            events.append(Header(line, line_no, replayable))
            return
        if not self._is_table:
            self._emit(line, events)  # views, routines, events: one session, as written
            return
        if starts_create:
            self._create = bytearray()
            self._create_line = self._line
            self._create_safe = True
            self._create_statements = lexer.statements
            self._create_line_events(line, events)
            return
        if not self._create_seen and lexer.clean and _CHARSET_CLIENT.match(line):
            self._charset_line = line
        self._emit(line, events)
        # Back to skimming once past a statement or a stray comment line between a table's rows.
        if self._create_seen and lexer.clean:
            self._enter_fast()

    def _marker(self, line: bytes, marker: re.Match[bytes], events: list[Event]) -> None:
        kind = marker.group(1)
        name = (marker.group(2) or b"").decode("utf-8", errors="replace")
        continues = (
            kind == b"Dumping data for table"
            and self._in_section
            and self._is_table
            and self._table_name == name
        )
        if not continues:
            if self._in_section:
                events.append(self._end())
            self._in_section = True
            self._is_table = kind in _TABLE_MARKERS
            self._table_name = name
            self._create_seen = False
            self._charset_line = b""
            self._deferred = None
            section = (
                "table" if self._is_table else "database" if kind == _DATABASE_MARKER else "other"
            )
            events.append(Begin(kind=section, name=name, line=self._line))
        self._emit(line, events)
        if kind == b"Dumping data for table":
            self._create_seen = True  # no CREATE TABLE comes after the rows
            self._enter_fast()

    def _create_line_events(self, line: bytes, events: list[Event]) -> None:
        assert self._create is not None
        lexer = self._lexer
        lexer.line(line)
        if lexer.uncertain:
            self._give_up(lexer.uncertain, line, events)
            return
        self._create += line
        if lexer.quote or lexer.comment:
            self._create_safe = False  # a line break inside a literal: lines aren't clauses
        if len(self._create) > _MAX_CREATE and not lexer.boundary:
            # Not held any longer: passed on as it is, the rest of it as ordinary lines.
            self._emit_create(bytes(self._create), events, rewrite=False)
            return
        if lexer.boundary:
            one_statement = lexer.statements == self._create_statements + 1
            ends_line = line.rstrip().endswith(b";")
            self._emit_create(
                bytes(self._create),
                events,
                rewrite=self._create_safe and one_statement and ends_line and lexer.clean,
            )

    def _emit_create(self, statement: bytes, events: list[Event], *, rewrite: bool = True) -> None:
        """Pass on a CREATE TABLE statement, without its deferrable indexes when it can."""
        self._create = None
        self._create_seen = True
        self._deferred = defer_indexes(statement) if rewrite else None
        text = self._deferred.create if self._deferred else statement
        lines = statement.count(b"\n")
        events.append(Data(text, self._line, text.count(b"\n")))
        self._line += lines
        self._line_start = statement.endswith(b"\n")
        if self._lexer.clean:
            self._enter_fast()

    def _end(self) -> End:
        deferred, self._deferred = self._deferred, None
        self._fast = False
        if deferred is None:
            return End()
        epilogue = deferred.alter
        if epilogue and self._charset_line:
            epilogue = (
                b"/*!40101 SET @saved_cs_client = @@character_set_client */;\n"
                + self._charset_line
                + epilogue
                + b"/*!40101 SET character_set_client = @saved_cs_client */;\n"
            )
        return End(
            epilogue=epilogue,
            epilogue_line=self._create_line,
            foreign_keys=deferred.foreign_keys,
        )


# ---- spooling and loading --------------------------------------------------------------------


@dataclass(eq=False)
class _Script:
    """One session's SQL in a private file; a client may read it while it is being written."""

    name: str
    path: Path
    fd: int
    size: int = 0  # bytes on disk
    complete: bool = False
    lines: int = 0
    pending: list[bytes | memoryview] = field(default_factory=list)
    pending_size: int = 0
    # (first script line, dump line it came from), to report errors at the dump's line numbers
    segments: list[tuple[int, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    retryable: bool = False  # a table's section: self-contained, safe to run again
    sent_before: int = 0  # bytes already counted in the progress by earlier tries
    lone_retries: int = 0
    not_before: float = 0.0  # loop time before which a retry waits
    # Bytes from ``barrier`` on are sent once ``released`` is set (the rest of a dump the
    # splitter gave up on: it runs after every other script).
    barrier: int | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, data: bytes | memoryview, dump_line: int, lines: int | None = None) -> None:
        if not len(data):
            return
        if not self.segments or self._dump_line(self.lines + 1) != dump_line:
            self.segments.append((self.lines + 1, dump_line))
        self.pending.append(data)
        self.pending_size += len(data)
        self.lines += bytes(data).count(b"\n") if lines is None else lines

    def _dump_line(self, script_line: int) -> int:
        first, dump = self.segments[-1]
        return dump + script_line - first

    def dump_line(self, script_line: int) -> int:
        """The dump line a line of this script came from."""
        for first, dump in reversed(self.segments):
            if script_line >= first:
                return dump + script_line - first
        return script_line


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_pieces(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write every piece, in order, with as few system calls as the kernel allows."""
    views = [memoryview(p) for p in pieces]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while written:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _send(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Copy ``count`` file bytes to a pipe inside the kernel; the bytes moved (fewer: the reader
    left). Loops here rather than in the event loop: a pipe takes a few pages per call."""
    sent = 0
    try:
        while sent < count:
            moved = _send_some(out_fd, in_fd, offset + sent, count - sent)
            if moved == 0:
                break
            sent += moved
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _send_some(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    try:
        return os.sendfile(out_fd, in_fd, offset, count)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    data = os.pread(in_fd, count, offset)  # no sendfile to a pipe here: copy through memory
    _write_all(out_fd, data)
    return len(data)


class _Spool:
    """A private directory of scripts, and the threads doing blocking file and pipe I/O."""

    def __init__(self, root: Path | None, threads: int) -> None:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            _remove_abandoned(root)
        self.dir = Path(tempfile.mkdtemp(prefix=_spool_prefix(), dir=root))  # mkdtemp makes it 0700
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="dbkeep-restore")
        self._fds: set[int] = set()
        self._count = 0

    def new_script(self, name: str) -> _Script:
        self._count += 1
        path = self.dir / f"{self._count:05d}.sql"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._fds.add(fd)
        return _Script(name=name, path=path, fd=fd)

    async def run(self, func: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    async def flush(self, script: _Script) -> None:
        if not script.pending:
            return
        pieces, size = script.pending, script.pending_size
        script.pending, script.pending_size = [], 0
        try:
            await self.run(_write_pieces, script.fd, pieces)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise EngineError(
                    "not enough disk space for the restore's temporary files "
                    "(they need up to the uncompressed size of the backup)",
                    kind=FailureKind.permanent,
                ) from None
            raise
        script.size += size
        script.changed.set()

    def pipe(self) -> tuple[int, int]:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        self._fds |= {read_fd, write_fd}
        with contextlib.suppress(OSError):  # beyond /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        return read_fd, write_fd

    def close(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.discard(fd)
            os.close(fd)

    def discard(self, script: _Script) -> None:
        self.close(script.fd)
        with contextlib.suppress(FileNotFoundError):
            script.path.unlink()

    async def aclose(self) -> None:
        """Join the I/O threads, then close every descriptor and remove the directory."""
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(None, self._executor.shutdown, True)

        def cleanup(_: object) -> None:
            for fd in list(self._fds):
                self.close(fd)
            shutil.rmtree(self.dir, ignore_errors=True)

        done.add_done_callback(cleanup)
        await asyncio.shield(done)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"


def _spool_prefix() -> str:
    """``dbkeep-restore-<pid>@<host>@``: who owns a spool directory, for the clean-up."""
    return f"{SPOOL_PREFIX}{os.getpid()}@{_host()}@"


def _remove_abandoned(root: Path) -> None:
    """Delete spool directories whose process is gone (a worker killed mid-restore).

    Only this host's: ``var_dir`` may be shared with containers whose pids we can't see.
    """
    for entry in root.glob(f"{SPOOL_PREFIX}*@*@*"):
        pid, host, _ = entry.name[len(SPOOL_PREFIX) :].split("@", 2)
        if not pid.isdigit() or int(pid) == os.getpid() or host != _host():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


class _LockConflict(Exception):
    """A table's section met another session's lock; it can run again from its start."""

    def __init__(self, error: EngineError) -> None:
        super().__init__(error.message)
        self.error = error


class _ParallelLoad:
    """Reads the dump into scripts while ``parallelism`` client sessions load them."""

    def __init__(
        self,
        spool: _Spool,
        *,
        client_argv: Sequence[str],
        parallelism: int,
        target: TargetSpec,
        tool: str,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.spool = spool
        self.argv = list(client_argv)
        self.parallelism = parallelism
        self.target = target
        self.tool = tool
        self.progress = ProgressThrottle(on_progress)
        self.loaded = 0
        self.stats = RawStats()
        self.splitter = DumpSplitter()
        self.queue: list[_Script] = []
        self.reading = True
        self.wake = asyncio.Event()
        # What the reader builds
        self.header: _Script | None = None  # until the first section: is the dump splittable?
        self.serial = False  # not splittable: the whole dump runs in ``verbatim``, as written
        self.verbatim: _Script | None = None
        self.prologue: list[tuple[bytes, int]] = []
        self.prologue_size = 0
        self.current: _Script | None = None
        self.tail: _Script | None = None
        self.foreign_keys: list[bytes] = []
        self.tables = 0
        self.active = 0  # loads running now
        self.unfinished: set[_Script] = set()  # enqueued, not loaded yet
        self.rest: _Script | None = None  # a table's script holding the rest of the dump
        self.group: asyncio.TaskGroup | None = None

    # -- reading --

    async def read(self, raw: AsyncIterator[bytes]) -> None:
        """Split the stream into scripts; the workers start on each as soon as it begins.

        Until the first section begins, the raw bytes are kept too: a dump that can't be split
        (``serial``) is then loaded from them, byte for byte, in one session, and the splitter's
        events (rewritten CREATE TABLE statements) are never used.
        """
        self.header = self.spool.new_script("header")
        undecided: list[bytes] | None = []
        undecided_size = 0
        async for chunk in raw:
            self.stats.feed(chunk)
            if self.verbatim is not None:
                await self._add_verbatim(chunk)
                continue
            if undecided is not None:
                undecided.append(chunk)
                undecided_size += len(chunk)
                if undecided_size > _MAX_UNDECIDED:
                    self.serial = True  # still no section after megabytes: not a plain dump
            if not self.serial:
                await self._apply(self.splitter.feed(chunk))
            if undecided is not None and self.serial:
                await self._start_verbatim(undecided)
                undecided = None
            elif self.header is None:
                undecided = None  # the first section began: the dump is being split
        if self.verbatim is None:
            await self._apply(self.splitter.close())
            if not self.serial and self.header is not None:
                self.serial = True  # no sections at all: replay it as it is
            if self.serial:
                assert undecided is not None
                await self._start_verbatim(undecided)
        if not self.stats.has_trailer():
            raise EngineError(
                "incomplete dump: the backup ends before the dump's completion line",
                kind=FailureKind.permanent,
            )
        for script in self._open_scripts():
            await self.spool.flush(script)
            script.complete = True
            script.changed.set()
        self.reading = False
        self.wake.set()

    async def _start_verbatim(self, undecided: list[bytes]) -> None:
        """Load the whole dump as it is, in one session: what was read so far, then the rest."""
        if self.header is not None:
            self.spool.discard(self.header)
            self.header = None
        self.verbatim = self.spool.new_script("the whole dump, as written")
        self._enqueue(self.verbatim)
        for chunk in undecided:
            await self._add_verbatim(chunk)

    async def _add_verbatim(self, chunk: bytes) -> None:
        assert self.verbatim is not None
        lines = chunk.count(b"\n")
        self.verbatim.add(chunk, self.verbatim.lines + 1, lines)
        if self.verbatim.pending_size >= _FLUSH_BYTES:
            await self.spool.flush(self.verbatim)

    def _open_scripts(self) -> list[_Script]:
        scripts = [s for s in (self.verbatim, self.current) if s is not None and s is not self.tail]
        return [s for s in scripts if not s.complete]

    async def _apply(self, events: list[Event]) -> None:
        for event in events:
            if self.serial:
                return  # the dump loads as written: nothing the splitter made is used
            if isinstance(event, Header):
                self._on_header(event)
            elif isinstance(event, Begin):
                await self._on_begin(event)
            elif isinstance(event, Data):
                target = self.current
                assert target is not None
                target.add(event.data, event.line, event.lines)
                if target.pending_size >= _FLUSH_BYTES:
                    await self.spool.flush(target)
            else:
                await self._on_end(event)

    def _on_header(self, event: Header) -> None:
        assert self.header is not None
        self.header.add(event.data, event.line)
        if not event.replayable:
            self.serial = True
        elif event.data.strip() and not event.data.startswith(b"--"):
            self.prologue.append((event.data, event.line))
            self.prologue_size += len(event.data)
            if self.prologue_size > _MAX_PROLOGUE:
                self.serial = True

    async def _on_begin(self, event: Begin) -> None:
        if self.header is not None:
            # The first section: the header is complete. Without FOREIGN_KEY_CHECKS=0 tables
            # can't load in any order; a --databases dump switches databases with USE.
            fk_checks_off = any(_FK_CHECKS_OFF.search(line) for line, _ in self.prologue)
            if not fk_checks_off or event.kind in ("database", "rest"):
                self.serial = True
                return
            self.spool.discard(self.header)
            self.header = None
        if event.kind == "rest":
            await self._on_rest(event)
            return
        if event.kind == "database":
            raise EngineError(
                "this backup holds several databases, which a parallel restore can't load: "
                "set DBKEEP_RESTORE_PARALLELISM=1",
                kind=FailureKind.permanent,
            )
        if event.kind == "table":
            self.tables += 1
            script = self.spool.new_script(event.name)
            script.retryable = True
            self._add_prologue(script)
            self.current = script
            self._enqueue(script)
            return
        self.current = self._tail()

    async def _on_rest(self, event: Begin) -> None:
        """The splitter gave up: the rest of the dump follows, as written, in this session."""
        script = self.current
        assert script is not None
        log.info("restore.split_stopped line=%d: the rest loads in one session", event.line)
        if script is self.tail:
            return  # the tail runs last, alone, in dump order: it simply goes on
        # A table's section: its session keeps what the section set (saved variables), so the
        # rest stays in it, but runs only once everything before it has loaded; the views,
        # routines and events read so far run now, before it, in dump order.
        script.retryable = False
        script.barrier = script.size + script.pending_size
        self.rest = script
        if self.tail is not None:
            tail, self.tail = self.tail, None
            await self.spool.flush(tail)
            tail.complete = True
            self._enqueue(tail)
        if self.group is not None:
            self.group.create_task(self.work())  # a session slot waits at the barrier
        self._release_rest()

    def _release_rest(self) -> None:
        if self.rest is not None and not self.unfinished - {self.rest}:
            self.rest.released.set()

    def _tail(self) -> _Script:
        if self.tail is None:
            self.tail = self.spool.new_script("views, routines and events")
            self._add_prologue(self.tail)
        return self.tail

    def _add_prologue(self, script: _Script) -> None:
        for line, line_no in self.prologue:
            script.add(line, line_no)

    async def _on_end(self, event: End) -> None:
        if self.serial or self.current is None:
            return
        script = self.current
        if event.foreign_keys:
            self.foreign_keys.append(event.foreign_keys)
        if script is self.tail:
            return
        script.add(event.epilogue, event.epilogue_line)
        await self.spool.flush(script)
        script.complete = True
        script.changed.set()
        self.current = None

    def _enqueue(self, script: _Script) -> None:
        self.unfinished.add(script)
        self.queue.append(script)
        self.wake.set()

    # -- loading --

    async def work(self) -> None:
        """One session slot: load scripts until none are left."""
        while (script := await self._next()) is not None:
            try:
                await self._load_counted(script)
            except _LockConflict as conflict:
                self._retry_later(script, conflict.error)
                continue
            # A finished load may have released what a waiting section's DDL needs.
            for waiting in self.queue:
                waiting.not_before = 0.0
            self.wake.set()

    async def _load_counted(self, script: _Script) -> None:
        self.active += 1
        try:
            await self.load(script)
        finally:
            self.active -= 1

    def _retry_later(self, script: _Script, error: EngineError) -> None:
        if self.active == 0:
            # Nothing of ours holds the lock: someone else does. Wait a little, then give up.
            if script.lone_retries >= len(_LONE_RETRY_DELAYS):
                raise error
            delay = _LONE_RETRY_DELAYS[script.lone_retries]
            script.lone_retries += 1
        else:
            delay = _LONE_RETRY_DELAYS[-1]  # or sooner: when one of the other loads finishes
        log.info("restore.section_retry name=%s reason=lock conflict", script.name)
        script.not_before = asyncio.get_running_loop().time() + delay
        self._enqueue(script)

    async def _next(self) -> _Script | None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = [s for s in self.queue if s.not_before <= now]
            if ready:
                # Largest finished script first (they can't be split, so big ones go early);
                # otherwise the one being written, followed as it grows.
                done = [s for s in ready if s.complete]
                script = max(done, key=lambda s: s.size) if done else ready[0]
                self.queue.remove(script)
                return script
            if not self.queue and not self.reading:
                return None
            self.wake.clear()
            if self.queue:
                wait = min(s.not_before for s in self.queue) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
            else:
                await self.wake.wait()

    async def load(self, script: _Script) -> None:
        """Run one client on ``script``; raise ``EngineError`` with the server's reason."""
        read_fd, write_fd = self.spool.pipe()
        async with spawn(self.argv, stdin=read_fd, stdout=DEVNULL) as child:
            self.spool.close(read_fd)
            sent_all = await self._pump(script, write_fd)
            self.spool.close(write_fd)  # end of file: the client finishes and exits
            code = await child.wait()
            stderr = child.stderr_tail.text()
        if code == 0 and not sent_all:
            raise EngineError(
                f"{self.tool} stopped reading the dump before its end", kind=FailureKind.permanent
            )
        if code != 0:
            error = classify(
                code,
                _dump_line_numbers(stderr, script),
                tool=self.tool,
                user=self.target.user,
                password=self.target.password,
            )
            if script.retryable and _LOCK_CONFLICT.search(stderr):
                raise _LockConflict(error)
            raise error
        self.spool.discard(script)
        self.unfinished.discard(script)
        self._release_rest()
        log.debug("restore.section_loaded name=%s bytes=%d", script.name, script.size)

    async def _pump(self, script: _Script, write_fd: int) -> bool:
        """Feed ``script`` to the client as it grows; False if the client stopped reading."""
        sent = 0
        while True:
            size = script.size
            if script.barrier is not None and not script.released.is_set():
                size = min(size, script.barrier)
                if sent >= size:
                    await script.released.wait()
                    continue
            if sent < size:
                count = min(size - sent, _SEND_BYTES)
                moved = await self.spool.run(_send, write_fd, script.fd, sent, count)
                if moved < count:
                    return False  # the client left: its exit status says why
                sent += moved
                if sent > script.sent_before:  # a retry counts only what it adds
                    self.loaded += sent - script.sent_before
                    script.sent_before = sent
                await self.progress.update(self.loaded)
                continue
            if script.complete:
                return True
            script.changed.clear()
            await script.changed.wait()

    def finishing_script(self) -> _Script | None:
        """What runs once every table is in: foreign keys, then views, routines and events."""
        if self.serial:
            return None
        if self.foreign_keys:
            tail = self._tail()
            # After the dump's footer, which restores FOREIGN_KEY_CHECKS: no re-check of the rows.
            tail.add(b"SET SESSION foreign_key_checks = 0;\n", 1)
            for statement in self.foreign_keys:
                tail.add(statement, 1)
        return self.tail


def _dump_line_numbers(stderr: str, script: _Script) -> str:
    """Rewrite the client's "at line N" (of the script) into the dump's line number."""
    return _ERROR_LINE.sub(lambda m: f"{m.group(1)}{script.dump_line(int(m.group(2)))}", stderr)


async def restore_parallel(
    target: TargetSpec,
    source: AsyncIterator[bytes],
    *,
    compression: Compression,
    client_argv: Sequence[str],
    parallelism: int,
    tool: str,
    spool_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Load a stored dump with up to ``parallelism`` concurrent ``client_argv`` sessions.

    ``source`` yields the stored (possibly compressed) bytes; ``client_argv`` is one complete
    client command (credentials file first, target database last). Temporary files go to a
    private directory under ``spool_dir`` (the system's temporary directory if None) and are
    removed before returning. Raises ``EngineError``; cancelling kills every client.
    """
    parallelism = max(1, parallelism)
    spool: _Spool | None = None
    try:
        spool = _Spool(spool_dir, threads=parallelism + 2)
        job = _ParallelLoad(
            spool,
            client_argv=client_argv,
            parallelism=parallelism,
            target=target,
            tool=tool,
            on_progress=on_progress,
        )
        async with decoder(compression)(source) as raw:
            await _run_all(job, _guarded(raw))
        finishing = job.finishing_script()
        if finishing is not None:
            await spool.flush(finishing)
            finishing.complete = True
            await job.load(finishing)
    except (ToolNotFound, TimeoutError):
        raise
    except OSError as exc:
        # Spool trouble (permissions, I/O error): the reason without the path.
        reason = (exc.strerror or type(exc).__name__).lower()
        raise EngineError(
            f"the restore's temporary files failed: {reason}", kind=FailureKind.permanent
        ) from None
    finally:
        if spool is not None:
            await spool.aclose()


async def _guarded(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The decoded stream, with its failures as ``EngineError`` (the engine's messages)."""
    try:
        async for chunk in raw:
            yield chunk
    except CorruptStream as exc:
        raise EngineError(
            f"the backup file is damaged ({exc}); nothing more was loaded",
            kind=FailureKind.permanent,
        ) from None
    except PipelineError as exc:
        raise EngineError(str(exc), kind=FailureKind.permanent) from None
    except FileNotFoundError:
        raise EngineError("the backup file is missing") from None
    except StorageError as exc:
        raise EngineError(exc.message) from None


async def _run_all(job: _ParallelLoad, raw: AsyncIterator[bytes]) -> None:
    """The reader and the session slots together; the first failure stops all of them."""
    try:
        async with asyncio.TaskGroup() as group:
            job.group = group
            group.create_task(job.read(raw))
            for _ in range(job.parallelism):
                group.create_task(job.work())
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report: an ``EngineError`` (the server's reason) before anything else."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for error in leaves:
        if isinstance(error, EngineError):
            return error
    return leaves[0]
