"""Reads on every request's path (the caller's credentials, the list, the statistics) straight
on the database driver.

Each SELECT is compiled once per dialect and runs on a pooled connection in autocommit mode, with
no ORM and no greenlet hop; its values still go through the conversions SQLAlchemy would apply
(UTC datetimes, enums, SQLite's text dates). On MariaDB, SQLAlchemy's async ``execute`` of a
one-row query costs ~0.37 ms of CPU against ~0.1 ms here, which is most of a list request
(``bench/api.py``, docs/benchmarks.md).

Use it only where a request starts reading: it runs outside the caller's ORM session and its
transaction, so it never sees that session's unflushed or uncommitted writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.errors import ServiceUnavailable

# Where ``Database`` leaves its reader for the sessions it makes (``session.info``).
READER_KEY = "dbkeep.fast_reader"

Row = tuple[Any, ...]
AnySelect = Select[*tuple[Any, ...]]
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, _Processor], ...]  # positional order: name and value conversion
    defaults: Mapping[str, Any]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, conversion)


class HotQuery:
    """A SELECT whose SQL is built once and compiled once per dialect."""

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return found


def _compile(statement: AnySelect, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
        raise TypeError(f"{dialect.name}: a hot query needs plain positional parameters")
    binds = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup
    )
    processors = (
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    results = tuple((i, p) for i, p in enumerate(processors) if p is not None)
    return _Compiled(compiled.string, binds, compiled.params, results)


@dataclass
class _Lease:
    driver: Any  # the driver's own connection
    owner: AsyncConnection  # SQLAlchemy's, which keeps it checked out of the pool
    kept: bool = False  # it waited idle in the reader since its last query


class FastReader:
    """Runs hot queries on one autocommit engine's pooled connections.

    With ``keep_idle``, up to that many connections stay checked out between queries and are
    handed out again directly: a checkout from SQLAlchemy's pool (a greenlet hop) cost as much
    as the query. Only for an engine of its own: kept connections are missing from its pool.
    """

    def __init__(self, engine: AsyncEngine, *, keep_idle: int = 0) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._fetch = _FETCHERS[self.dialect.driver]
        self._keep_idle = keep_idle
        self._idle: list[_Lease] = []

    async def close(self) -> None:
        """Give the kept connections back to the pool (before the engine is disposed)."""
        idle, self._idle = self._idle, []
        for lease in idle:
            await lease.owner.close()

    async def rows(self, query: HotQuery, params: Mapping[str, Any]) -> list[Row]:
        compiled = query.compiled(self.dialect)
        values = []
        for name, process in compiled.binds:
            value = params[name] if name in params else compiled.defaults[name]
            values.append(process(value) if process is not None else value)
        raw = await self._run(compiled.sql, values)
        if not compiled.results:
            return [tuple(row) for row in raw]
        rows = []
        for row in raw:
            converted = list(row)
            for index, process in compiled.results:
                converted[index] = process(converted[index])
            rows.append(tuple(converted))
        return rows

    async def _run(self, sql: str, values: Sequence[Any]) -> list[Sequence[Any]]:
        # A pooled connection may have died with the server since its last use (there is no
        # ping before each checkout here): such a failure is retried once on a new connection.
        # On a connection kept idle, any failure counts: the server may have ended it at any
        # moment, and drivers report that in many ways (asyncpg, if the termination notice
        # arrived while idle: "another operation is in progress"). A read is safe to repeat.
        for attempt in (1, 2):
            lease = await self._acquire()
            try:
                rows = await self._fetch(lease.driver, sql, values)
            except Exception as exc:
                await _discard(lease)
                if attempt == 2 or not (lease.kept or _is_connection_error(exc)):
                    raise ServiceUnavailable(
                        "The metadata store is unavailable; try again shortly."
                    ) from exc
                continue
            except BaseException:
                # Cancelled mid-query: the connection may still owe a result, never reuse it.
                await asyncio.shield(_discard(lease))
                raise
            await self._release(lease)
            return rows
        raise AssertionError("unreachable")

    async def _acquire(self) -> _Lease:
        if self._idle:
            lease = self._idle.pop()
            lease.kept = True
            return lease
        owner = await self.engine.connect()
        raw = await owner.get_raw_connection()
        return _Lease(raw.driver_connection, owner)

    async def _release(self, lease: _Lease) -> None:
        if len(self._idle) < self._keep_idle:
            self._idle.append(lease)
        else:
            await lease.owner.close()


async def _discard(lease: _Lease) -> None:
    """Close the connection for good (SQLAlchemy's pool opens a new one when needed)."""
    await lease.owner.invalidate()
    await lease.owner.close()


def _is_connection_error(exc: Exception) -> bool:
    text = f"{type(exc).__module__}.{type(exc).__name__} {exc}".lower()
    return any(
        hint in text
        for hint in ("connection", "operationalerror", "interfaceerror", "gone away", "lost")
    )


async def _fetch_asyncmy(connection: Any, sql: str, values: Sequence[Any]) -> list[Any]:
    async with connection.cursor() as cursor:
        await cursor.execute(sql, values)
        return list(await cursor.fetchall())


async def _fetch_asyncpg(connection: Any, sql: str, values: Sequence[Any]) -> list[Any]:
    return list(await connection.fetch(sql, *values))


async def _fetch_aiosqlite(connection: Any, sql: str, values: Sequence[Any]) -> list[Any]:
    async with connection.execute(sql, values) as cursor:
        return list(await cursor.fetchall())


_FETCHERS = {"asyncmy": _fetch_asyncmy, "asyncpg": _fetch_asyncpg, "aiosqlite": _fetch_aiosqlite}


def supports(engine: AsyncEngine) -> bool:
    return engine.dialect.driver in _FETCHERS


async def hot_rows(session: AsyncSession, query: HotQuery, **params: Any) -> list[Row]:
    """``query``'s rows: on the fast reader of the session's ``Database``, else through the
    session itself (sessions made elsewhere, e.g. by tests)."""
    reader: FastReader | None = session.info.get(READER_KEY)
    if reader is None:
        result = await session.execute(query.statement, params)
        return [tuple(row) for row in result]
    return await reader.rows(query, params)
