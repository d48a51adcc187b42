"""What every database engine offers: dump to storage, restore from a stream, probe its tools.

Engines know nothing of HTTP or the ORM. They report failures as ``EngineError`` with a kind
(transient or permanent) and a one-line message that never contains a password or a file path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from app.pipeline.compression import Compression
from app.pipeline.splice import PipeSource
from app.pipeline.streams import RawStats

# Called at most about once a second with the uncompressed bytes handled so far.
ProgressCallback = Callable[[int], Awaitable[None]]

# The names dbkeep accepts (also published as the OpenAPI pattern of every database field).
DATABASE_NAME_PATTERN = r"^[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}$"
_DATABASE_NAME = re.compile(DATABASE_NAME_PATTERN)


class FailureKind(StrEnum):
    transient = "transient"  # worth retrying: can't connect, lost connection, storage timeout
    permanent = "permanent"  # retrying won't help: access denied, unknown database, disk full ...
    timeout = "timeout"
    cancelled = "cancelled"


class EngineError(Exception):
    def __init__(self, message: str, *, kind: FailureKind = FailureKind.permanent) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def validate_database_name(name: str) -> str:
    """Refuse names that a client could read as an option or that need quoting tricks."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(
            "database name must be 1-64 letters, digits, '_', '$' or '-', not starting with '-'"
        )
    return name


@dataclass(frozen=True)
class TargetSpec:
    """Where the target database is. ``password`` never appears in ``repr``."""

    scheme: str
    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)
    socket: str | None = None
    path: str | None = None  # a SQLite source's file (absolute); None for a server
    # Engine-specific connection options from the URL's query (PostgreSQL: sslmode ...).
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str, *, database: str | None = None) -> TargetSpec:
        """Parse ``mysql://user:pass@host:3306/db`` (``?socket=/path`` for a Unix socket);
        ``database`` names the database when the URL names none (a server-wide source)."""
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme in {"postgresql", "postgres"}:
            from app.engines.postgres.target import parse_postgres_url

            return parse_postgres_url(url, database=database)
        if scheme == "sqlite":
            # One file, one database (named after the file): ``database`` has no say.
            from app.engines.sqlite.paths import sqlite_target

            return sqlite_target(url)
        if scheme not in {"mysql", "mariadb"}:
            raise ValueError(f"unsupported target scheme {scheme!r}: use mysql:// or mariadb://")
        database = database or unquote(parts.path.lstrip("/"))
        if not database:
            raise ValueError("the target URL must name a database, e.g. mysql://user@host/shop")
        socket = parse_qs(parts.query).get("socket", [None])[0]
        return cls(
            scheme=scheme,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=validate_database_name(database),
            socket=socket,
        )

    def with_database(self, database: str) -> TargetSpec:
        if self.path is not None:
            return self  # a SQLite file is its one database
        return TargetSpec(
            scheme=self.scheme,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=validate_database_name(database),
            socket=self.socket,
            params=self.params,
        )


@dataclass(frozen=True)
class DumpVerdict:
    """What an engine says of a dump that ended complete."""

    tool_version: str
    server_version: str | None
    # Said when the backup is taken: why restoring it may need more than this server allows.
    warning: str | None = None
    # The manifest, when the engine took it from its own copy of the data (SQLite counts in
    # the consistent copy it streams) rather than through a ``ManifestObserver``.
    manifest: dict[str, Any] | None = None


class ManifestObserver(Protocol):
    """An engine's manifest stage: fed every raw (uncompressed) byte of a dump, in order, while
    it streams; ``result`` is what the dump holds (per-table rows, objects by kind, the server
    version), stored with the backup. An engine offers one with ``manifest_observer()``."""

    def feed(self, chunk: bytes | memoryview) -> None: ...

    def result(self, *, server_version: str | None) -> dict[str, Any]: ...


class RunningDump(Protocol):
    """A dump under way: ``source`` is its raw (uncompressed) output, read by the caller (the
    runner compresses, hashes and writes it); ``finish`` is the engine's verdict once it was
    read to its end, and raises ``EngineError`` unless the dump is complete."""

    source: PipeSource | AsyncIterator[bytes]

    async def finish(self, raw: RawStats) -> DumpVerdict: ...


@dataclass(frozen=True, order=True)
class DbObject:
    """One object of a database: its kind ("table", "view", "sequence", "trigger",
    "procedure", "function", "event") and its name."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} `{self.name}`"

    @property
    def key(self) -> tuple[str, str]:
        """Compared case-insensitively: routines, events and triggers are, and a table whose
        name differs only in case from another is not worth a false alarm."""
        return (self.kind, self.name.casefold())


def missing_objects(declared: Iterable[DbObject], existing: Iterable[DbObject]) -> set[DbObject]:
    """The objects of ``declared`` that ``existing`` lacks."""
    have = {o.key for o in existing}
    return {o for o in declared if o.key not in have}


def describe_objects(objects: Iterable[DbObject], *, limit: int = 5) -> str:
    """``table `a`, view `b` and 3 more``: a short list for a message."""
    ordered = sorted(objects)
    shown = ", ".join(str(o) for o in ordered[:limit])
    rest = len(ordered) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


@dataclass(frozen=True)
class DatabaseOptions:
    """A database's own defaults, kept when it is dropped and created again."""

    character_set: str
    collation: str


@dataclass(frozen=True)
class SchemaState:
    """What a database is now: its defaults (None when it doesn't exist) and its objects."""

    options: DatabaseOptions | None
    objects: frozenset[DbObject]


@dataclass(frozen=True)
class ConnectionReport:
    """What a connection test found: the server, what the account may do, the databases."""

    ok: bool
    message: str  # "ok", or what is wrong and how to fix it (never a password)
    server_version: str | None = None
    databases: tuple[str, ...] = ()  # the non-system databases the account sees
    # Privileges a dump needs and the account lacks on the database(s) tested.
    missing_privileges: tuple[str, ...] = ()
    required_privileges: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolStatus:
    ok: bool
    dump_tool: str | None
    client_tool: str | None
    dump_version: str | None
    client_version: str | None
    sandbox_supported: bool
    message: str  # what is missing and how to install it, or "ok"


class DatabaseEngine(Protocol):
    name: str

    async def probe(self) -> ToolStatus:
        """Which dump/restore tools are installed and usable."""
        ...

    async def estimate_size(self, target: TargetSpec) -> int | None:
        """Roughly how many bytes a dump of ``target`` will be, from the server's statistics."""
        ...

    async def list_databases(self, target: TargetSpec) -> list[str]:
        """The databases on ``target``'s server, system databases left out. ``EngineError``."""
        ...

    async def check_connection(self, target: TargetSpec) -> ConnectionReport:
        """Connect; report the server version, missing dump privileges, the databases."""
        ...

    def judge_upload(self, raw: RawStats) -> DumpVerdict:
        """The verdict on a dump dbkeep did not take (an upload), read to its end: what its
        first and last bytes say, or ``EngineError`` unless it is a complete dump."""
        ...

    def open_dump(self, target: TargetSpec) -> AbstractAsyncContextManager[RunningDump]:
        """``async with engine.open_dump(target) as dump``: the dump runs; read ``dump.source``
        to its end, then ``await dump.finish(stats)``. Leaving the block (a failure, a cancel)
        kills the dump's whole process group. Raises ``EngineError``."""
        ...

    async def restore(
        self,
        target: TargetSpec,
        source: AsyncIterator[bytes],
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
        single_stream: bool = False,
    ) -> None:
        """Load a dump (``source`` yields the stored, maybe compressed bytes) into ``target``.

        ``single_stream`` replays the dump as written in one session (a rollback does: the
        simplest path that can fail the least). Raises ``EngineError`` with the server's reason
        when the load fails; what was loaded before the failure stays (the caller rolls back).
        """
        ...

    async def recreate_database(
        self, target: TargetSpec, *, options: DatabaseOptions | None = None
    ) -> None:
        """Drop and create ``target.database`` empty, with ``options`` (its former defaults)."""
        ...

    async def drop_database(self, target: TargetSpec) -> None:
        """Drop ``target.database`` if it exists."""
        ...

    async def inspect(self, target: TargetSpec) -> SchemaState:
        """The database's defaults and every object in it (tables, views, routines ...)."""
        ...

    async def declared_objects(
        self, source: AsyncIterator[bytes], *, compression: Compression
    ) -> set[DbObject]:
        """The objects a stored dump creates (read to its end)."""
        ...
