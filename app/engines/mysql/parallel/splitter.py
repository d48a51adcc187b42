"""Cutting a mysqldump/mariadb-dump stream into per-table sections: pure byte parsing.

The dump is cut only where the ``mariadb`` client itself would be between two statements
(``SqlLexer``); ``DumpSplitter`` turns the stream into events that the loader spools.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from app.engines.base import EngineError, FailureKind

log = logging.getLogger(__name__)

# A line read in "line mode" longer than this stops the splitting (the rest loads as it is).
_LONG_LINE = 1024 * 1024
# A CREATE TABLE statement longer than this is loaded as it is (no index deferral).
_MAX_CREATE = 1024 * 1024

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
_CHARSET_CLIENT = re.compile(rb"^/\*!40101 SET character_set_client = \w+ \*/;\s*$")
_KEY_FIRST_COLUMN = re.compile(rb"^\s*(?:UNIQUE )?KEY `(?:[^`]|``)*` \(`((?:[^`]|``)*)`")
_COLUMN_NAME = re.compile(rb"^  `((?:[^`]|``)*)` ")


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
