"""Engine, sessions and the declarative base of the metadata store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from app.fastread import READER_KEY, FastReader, supports

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite and MariaDB hand back naive values even for ``DateTime(timezone=True)``, so values are
    stored as naive UTC and tagged with UTC again when read.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine for ``url`` with settings that suit each backend."""
    # An error raised while binding a statement prints its parameters, and those can be a
    # credential before its column type encrypted it: errors and logs show the SQL only.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        if ":memory:" in url:
            kwargs["poolclass"] = StaticPool
        _ensure_sqlite_dir(url)
    else:
        kwargs.update(pool_pre_ping=True, pool_recycle=1800, pool_size=10, max_overflow=20)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _ensure_sqlite_dir(url: str) -> None:
    """The SQLite store's directory (0700 where dbkeep makes it) and file (0600): it holds
    password and token hashes and the audit log. SQLite gives its ``-wal`` and ``-shm`` files
    the database file's mode, so they are 0600 too."""
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    database = Path(path).expanduser()
    make_private_dirs(database.parent)
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    # A store made by an older dbkeep (or by sqlite3 itself) was 0644.
    for suffix in ("", "-wal", "-shm", "-journal"):
        _chmod_private(database.with_name(database.name + suffix), 0o600)


def make_private_dirs(directory: Path) -> None:
    """``mkdir -p`` where each directory made is 0700 (whatever the umask); existing ones are
    left as they are, they may be the operator's."""
    missing: list[Path] = []
    current = directory.absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)


def _chmod_private(path: Path, mode: int) -> None:
    try:
        current = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if current & ~mode:
        with contextlib.suppress(PermissionError):  # not ours: left to its owner
            os.chmod(path, current & mode)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Connections the fast reader keeps between queries (at most; more are opened under load).
READ_POOL_SIZE = 10


def make_read_engine(url: str, engine: AsyncEngine) -> AsyncEngine:
    """The engine of the fast reader: autocommit, so a pooled connection never keeps an old
    snapshot and needs no rollback when it goes back to the pool."""
    if url.startswith("sqlite"):
        # SQLite's driver opens no transaction for a SELECT, and an in-memory database exists
        # only on the main engine's one connection: share it.
        return engine
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        hide_parameters=True,
        pool_size=READ_POOL_SIZE,
        max_overflow=20,
    )


class Database:
    """The metadata store of one process: an engine, its session factory, and what the sessions
    offer to repositories in ``session.info``: the fast reader (``app.fastread``) and whatever
    the process's wiring adds with ``offer``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.read_engine: AsyncEngine | None = None
        self.reader: FastReader | None = None
        # The sessionmaker keeps this very dict and copies it into each session it makes, so
        # what is offered later reaches every session made after.
        self.session_info: dict[str, Any] = {}
        if supports(self.engine):
            self.read_engine = make_read_engine(url, self.engine)
            own_engine = self.read_engine is not self.engine
            self.reader = FastReader(
                self.read_engine, keep_idle=READ_POOL_SIZE if own_engine else 0
            )
            self.session_info[READER_KEY] = self.reader
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, info=self.session_info
        )

    def offer(self, key: str, value: object) -> None:
        """Give every session made from now on ``value`` as ``session.info[key]``: how a feature
        hands its repositories an object of this process without this kit knowing the feature
        (the backups' kept search totals, for one)."""
        if key in self.session_info:
            raise ValueError(f"{key!r} is already offered to this store's sessions")
        self.session_info[key] = value

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        if self.read_engine is not None and self.read_engine is not self.engine:
            await self.read_engine.dispose()
        await self.engine.dispose()
