"""Restore a mysqldump/mariadb-dump stream with several client sessions at once.

One ``mariadb`` session replaying a dump keeps one server core busy; tables are independent, so
they can load side by side. The dump is read once, as a stream, and cut at its per-table comment
markers (``-- Table structure for table `t```, ``-- Dumping data for table `t```):

* the header's ``SET`` lines (character set, time zone, ``UNIQUE_CHECKS=0``,
  ``FOREIGN_KEY_CHECKS=0``, SQL mode) open every session;
* each table section (structure, rows, triggers) is spooled to its own 0600 file in a private 0700
  directory and loaded by one of ``parallelism`` client processes, which starts while the file is
  still being written (it follows the file as it grows), so loading overlaps reading;
* InnoDB tables are created with their primary key only; secondary indexes are added by one
  ``ALTER TABLE`` after the rows (a sorted index build, far cheaper than inserting every row into
  every index once an index outgrows the buffer pool) and foreign keys at the very end;
* everything else — view placeholders and final views, events, routines — runs last, in dump
  order, in one session, once every table is loaded.

A dump that doesn't look like a single-database mysqldump (other statements in its header, no
``FOREIGN_KEY_CHECKS=0``) is replayed as it is in one session. Memory stays bounded whatever the
dump size (the temporary files hold up to the whole uncompressed dump on disk). Any failure —
a client error, a damaged or truncated backup — kills every session and raises ``EngineError``
with the server's reason and the line of the dump it refers to; what was loaded stays, and the
caller rolls back.
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
# A line read in "line mode" longer than this is passed through without being interpreted.
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
_STOP = re.compile(rb"\n(?:-- |DELIMITER )")
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
    kept: list[bytes] = []
    keys: list[bytes] = []
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
            kept.append(clause)
        elif line.startswith(b"  PRIMARY KEY ("):
            has_primary = True
            kept.append(clause)
        elif line.startswith((b"  KEY `", b"  UNIQUE KEY `")):
            column = _KEY_FIRST_COLUMN.match(line)
            if column is None or column.group(1) in auto_increment or b"USING HASH" in line:
                kept.append(clause)
            else:
                keys.append(b"ADD " + clause)
        elif line.startswith((b"  FULLTEXT KEY `", b"  SPATIAL KEY `")):
            kept.append(clause)
        elif line.startswith(b"  CONSTRAINT `") and b" FOREIGN KEY (" in line:
            foreign.append(b"ADD " + clause)
        elif line.startswith(b"  CONSTRAINT `") and b" CHECK (" in line:
            kept.append(clause)
        else:
            return None
    if not has_primary or not (keys or foreign):
        return None
    create = first + b",\n".join(b"  " + clause for clause in kept) + b"\n" + last
    alter = b"ALTER TABLE " + table + b" " + b", ".join(keys) + b";\n" if keys else b""
    fks = b"ALTER TABLE " + table + b" " + b", ".join(foreign) + b";\n" if foreign else b""
    return DeferredIndexes(create=create, alter=alter, foreign_keys=fks)


class DumpSplitter:
    """Turns a dump stream into header, section-begin, data and section-end events.

    Most bytes are rows, one per line; they are skimmed in place ("fast mode"): a chunk is
    searched for the next ``\n-- `` or ``\nDELIMITER `` and passed on as views of itself, never
    copied. Headers, section starts, CREATE TABLE statements and ``DELIMITER`` blocks (triggers,
    routines, events) are read line by line; markers inside a ``DELIMITER`` block are body text.
    """

    _STOP_LINES = (b"-- ", b"DELIMITER ")

    def __init__(self) -> None:
        # Line mode: bytes not yet read. Fast mode: at most a partial last line that may be
        # the start of a stop line, held until its end arrives.
        self._buf = bytearray()
        self._line = 1  # dump line number of the next byte
        self._line_start = True  # the next byte begins a line
        self._fast = False
        self._in_section = False
        self._is_table = False
        self._table_name = ""
        self._delimiter = b";"
        self._mid_line = False
        self._create: bytearray | None = None
        self._create_line = 0
        self._create_seen = False
        self._charset_line = b""
        self._deferred: DeferredIndexes | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Events for ``chunk``; an unfinished line is kept for the next call."""
        events: list[Event] = []
        if self._fast and not self._buf:
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
            self._emit_create(bytes(self._create), events)
        if self._in_section:
            events.append(self._end())
        return events

    # -- fast mode --

    def _skim(self, data: bytes, events: list[Event]) -> None:
        """Fast mode over a chunk, ``_buf`` being empty: pass rows on as views of ``data``."""
        stop = self._find_stop(data)
        if stop >= 0:
            self._emit(data, events, 0, stop)
            self._fast = False
            self._buf += memoryview(data)[stop:]
            self._drain(events, final=False)
            return
        held = self._held_from(data)
        self._emit(data, events, 0, held)
        if held < len(data):
            self._buf += memoryview(data)[held:]

    def _find_stop(self, data: bytes | bytearray) -> int:
        """Offset of the first line that may end fast mode (a marker, DELIMITER), or -1."""
        if self._line_start and data.startswith(self._STOP_LINES):
            return 0
        found = _STOP.search(data)
        return found.start() + 1 if found else -1

    def _held_from(self, data: bytes | bytearray) -> int:
        """Where the last, unfinished line starts if it could still become a stop line."""
        newline = data.rfind(b"\n")
        if newline < 0 and not self._line_start:
            return len(data)
        start = newline + 1
        partial = data[start : start + 10]
        if any(partial[: len(s)] == s[: len(partial)] for s in self._STOP_LINES):
            return start
        return len(data)

    # -- the buffer: line mode, and fast mode right after it --

    def _drain(self, events: list[Event], *, final: bool) -> None:
        while self._buf:
            if self._fast:
                stop = self._find_stop(self._buf)
                if stop < 0:
                    held = len(self._buf) if final else self._held_from(self._buf)
                    if held:
                        self._emit(bytes(self._buf[:held]), events)
                        del self._buf[:held]
                    return
                if stop > 0:
                    self._emit(bytes(self._buf[:stop]), events)
                    del self._buf[:stop]
                self._fast = False
                continue
            newline = self._buf.find(b"\n")
            if newline < 0:
                if final:
                    self._line_events(bytes(self._buf), events)
                    self._buf.clear()
                elif len(self._buf) > _LONG_LINE:
                    self._long_line(events)
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

    def _long_line(self, events: list[Event]) -> None:
        # A huge line in line mode (a view or routine definition): pass it on uninterpreted.
        if self._create is not None:
            self._emit_create(bytes(self._create), events, rewrite=False)
        data = bytes(self._buf)
        self._buf.clear()
        self._mid_line = True
        self._emit(data, events)

    def _line_events(self, line: bytes, events: list[Event]) -> None:
        if self._mid_line:
            self._mid_line = False
            self._emit(line, events)
            return
        if self._create is not None:
            self._create_line_events(line, events)
            return
        if line.startswith(b"DELIMITER "):
            self._delimiter = line[len(b"DELIMITER ") :].strip() or b";"
            self._emit(line, events)
            self._fast = self._delimiter == b";" and self._is_table and self._create_seen
            return
        if self._delimiter == b";" and line.startswith(b"-- "):
            marker = _MARKER.match(line)
            if marker is not None:
                self._marker(line, marker, events)
                return
        if not self._in_section:
            line_no = self._line
            self._line += line.count(b"\n")
            self._line_start = True
            stripped = line.strip()
            replayable = not stripped or line.startswith(b"--") or bool(_REPLAYABLE.match(line))
            events.append(Header(line, line_no, replayable))
            return
        if self._is_table and not self._create_seen and self._delimiter == b";":
            if _CHARSET_CLIENT.match(line):
                self._charset_line = line
            elif line.startswith(b"CREATE TABLE `"):
                self._create = bytearray()
                self._create_line = self._line
                self._create_line_events(line, events)
                return
        self._emit(line, events)
        # Back to skimming once past a stray comment line between a table's rows.
        self._fast = self._is_table and self._create_seen and self._delimiter == b";"

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
            self._fast = True

    def _create_line_events(self, line: bytes, events: list[Event]) -> None:
        assert self._create is not None
        self._create += line
        if len(self._create) > _MAX_CREATE:
            self._emit_create(bytes(self._create), events, rewrite=False)
            return
        if line.rstrip().endswith(b";"):
            self._emit_create(bytes(self._create), events)

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
        self._fast = True

    def _end(self) -> End:
        deferred, self._deferred = self._deferred, None
        self._fast = False
        self._delimiter = b";"
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
        self.header: _Script | None = None
        self.header_queued = False
        self.serial = False
        self.prologue: list[tuple[bytes, int]] = []
        self.prologue_size = 0
        self.current: _Script | None = None
        self.tail: _Script | None = None
        self.foreign_keys: list[bytes] = []
        self.tables = 0
        self.active = 0  # loads running now

    # -- reading --

    async def read(self, raw: AsyncIterator[bytes]) -> None:
        """Split the stream into scripts; the workers start on each as soon as it begins."""
        self.header = self.spool.new_script("header")
        async for chunk in raw:
            self.stats.feed(chunk)
            await self._apply(self.splitter.feed(chunk))
        await self._apply(self.splitter.close())
        if not self.stats.has_trailer():
            raise EngineError(
                "incomplete dump: the backup ends before the dump's completion line",
                kind=FailureKind.permanent,
            )
        if self.header is not None and not self.header_queued:
            self._enqueue_header()  # no sections at all: replay it as it is
        for script in self._open_scripts():
            await self.spool.flush(script)
            script.complete = True
            script.changed.set()
        self.reading = False
        self.wake.set()

    def _open_scripts(self) -> list[_Script]:
        scripts = [s for s in (self.header, self.current) if s is not None and s is not self.tail]
        return [s for s in scripts if not s.complete]

    async def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Header):
                self._on_header(event)
            elif isinstance(event, Begin):
                await self._on_begin(event)
            elif isinstance(event, Data):
                target = self.header if self.serial else self.current
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
        if self.header is not None and not self.serial:
            # The first section: the header is complete. Without FOREIGN_KEY_CHECKS=0 tables
            # can't load in any order; a --databases dump switches databases with USE.
            fk_checks_off = any(_FK_CHECKS_OFF.search(line) for line, _ in self.prologue)
            if not fk_checks_off or event.kind == "database":
                self.serial = True
            else:
                self.spool.discard(self.header)
                self.header = None
        if self.serial:
            if not self.header_queued:
                self._enqueue_header()  # followed as the rest of the dump is appended to it
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
        if self.tail is None:
            self.tail = self.spool.new_script("views, routines and events")
            self._add_prologue(self.tail)
        self.current = self.tail

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
        self.queue.append(script)
        self.wake.set()

    def _enqueue_header(self) -> None:
        assert self.header is not None
        self.header_queued = True
        self._enqueue(self.header)

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
        log.debug("restore.section_loaded name=%s bytes=%d", script.name, script.size)

    async def _pump(self, script: _Script, write_fd: int) -> bool:
        """Feed ``script`` to the client as it grows; False if the client stopped reading."""
        sent = 0
        while True:
            if sent < script.size:
                count = min(script.size - sent, _SEND_BYTES)
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
            if self.tail is None:
                self.tail = self.spool.new_script("foreign keys")
                self._add_prologue(self.tail)
            # After the dump's footer, which restores FOREIGN_KEY_CHECKS: no re-check of the rows.
            self.tail.add(b"SET SESSION foreign_key_checks = 0;\n", 1)
            for statement in self.foreign_keys:
                self.tail.add(statement, 1)
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
