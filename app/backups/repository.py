"""All SQL for backups and restore operations. Never commits: the service owns the transaction."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.backups.models import (
    BackupCounter,
    BackupListVersion,
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    RestoreOperation,
    RestoreStatus,
    TargetActivity,
)
from app.backups.search import candidates, gram_counts, narrowed, search_grams
from app.backups.totals import TOTALS_KEY, SearchTotals
from app.fastread import HotQuery, Row, hot_rows
from app.sources.models import Source

RUNNING_BACKUP = (BackupStatus.pending, BackupStatus.in_progress)
RUNNING_RESTORE = (RestoreStatus.pending, RestoreStatus.in_progress)


class SortKey(StrEnum):
    latest = "latest"
    oldest = "oldest"
    name_asc = "name_asc"
    name_desc = "name_desc"
    size_asc = "size_asc"
    size_desc = "size_desc"


class View(StrEnum):
    active = "active"
    trash = "trash"


_ORDER: dict[SortKey, tuple[Any, ...]] = {
    SortKey.latest: (DatabaseBackup.backup_date.desc(), DatabaseBackup.id.desc()),
    SortKey.oldest: (DatabaseBackup.backup_date.asc(), DatabaseBackup.id.asc()),
    SortKey.name_asc: (DatabaseBackup.filename.asc(), DatabaseBackup.id.asc()),
    SortKey.name_desc: (DatabaseBackup.filename.desc(), DatabaseBackup.id.desc()),
    SortKey.size_asc: (DatabaseBackup.file_size.asc(), DatabaseBackup.id.asc()),
    SortKey.size_desc: (DatabaseBackup.file_size.desc(), DatabaseBackup.id.desc()),
}

_SORT_COLUMN: dict[SortKey, Any] = {
    SortKey.latest: DatabaseBackup.backup_date,
    SortKey.oldest: DatabaseBackup.backup_date,
    SortKey.name_asc: DatabaseBackup.filename,
    SortKey.name_desc: DatabaseBackup.filename,
    SortKey.size_asc: DatabaseBackup.file_size,
    SortKey.size_desc: DatabaseBackup.file_size,
}
_DESCENDING = frozenset({SortKey.latest, SortKey.name_desc, SortKey.size_desc})


# A backup as the list and the statistics read it: every column by attribute name, plus
# ``created_by_email`` and ``source_name`` (read on the fast reader, never an ORM instance: see
# app/fastread.py).
BackupRecord = Mapping[str, Any]

_RECORD_COLUMNS = (
    *DatabaseBackup.__table__.c,
    User.email.label("created_by_email"),
    Source.name.label("source_name"),
)
_RECORD_KEYS = tuple(column.key for column in _RECORD_COLUMNS)


@dataclass(frozen=True)
class ListFilters:
    """What narrows a list besides its view: each None when not asked for. Hashable: the
    search-totals cache keys on it (with the view), so no total serves other filters."""

    status: BackupStatus | None = None
    search: str | None = None
    source_id: int | None = None
    database: str | None = None

    @property
    def counted_from_rows(self) -> bool:
        """Whether the total needs the rows read: the trigger-kept counters know only
        statuses, not names, sources or databases."""
        return any(v is not None for v in (self.search, self.source_id, self.database))

    def params(self) -> dict[str, Any]:
        """The bind parameters of the filters given (the search's are added by the caller)."""
        params: dict[str, Any] = {}
        if self.status is not None:
            params["status"] = self.status.value
        if self.source_id is not None:
            params["source_id"] = self.source_id
        if self.database is not None:
            params["database"] = self.database
        return params


@dataclass(frozen=True)
class _Shape:
    """Which filters a statement has bind parameters for: the key of a built query."""

    sort: SortKey
    view: View
    by_status: bool
    by_source: bool
    by_database: bool
    searching: str  # "no", "scan" or "grams" (the prefilter of app/backups/search.py first)

    @property
    def from_rows(self) -> bool:
        return self.searching != "no" or self.by_source or self.by_database


def _shape(filters: ListFilters, *, sort: SortKey, view: View, searching: str) -> _Shape:
    return _Shape(
        sort=sort,
        view=view,
        by_status=filters.status is not None,
        by_source=filters.source_id is not None,
        by_database=filters.database is not None,
        searching=searching,
    )


def _records_select(*extra: Any, only: Any = None) -> Select[Any]:
    """Records (and ``extra`` columns); with ``only``, just the backups it holds the ids of."""
    stmt = select(*_RECORD_COLUMNS, *extra)
    if only is not None:
        stmt = stmt.select_from(only).join(DatabaseBackup, DatabaseBackup.id == only.c.backup_id)
    return stmt.outerjoin(User, User.id == DatabaseBackup.created_by).outerjoin(
        Source, Source.id == DatabaseBackup.source_id
    )


def _record(row: Sequence[Any]) -> BackupRecord:
    return dict(zip(_RECORD_KEYS, row, strict=False))


def _by_source_and_database(stmt: Select[Any], shape: _Shape) -> Select[Any]:
    """``stmt`` restricted to one source and/or database (bind parameters)."""
    if shape.by_source:
        stmt = stmt.where(
            DatabaseBackup.source_id == bindparam("source_id", type_=DatabaseBackup.source_id.type)
        )
    if shape.by_database:
        column = DatabaseBackup.target_database
        stmt = stmt.where(column == bindparam("database", type_=column.type))
    return stmt


def _edge_query(*, newest: bool, by_source: bool = False, by_database: bool = False) -> HotQuery:
    order = DatabaseBackup.backup_date.desc() if newest else DatabaseBackup.backup_date.asc()
    tie = DatabaseBackup.id.desc() if newest else DatabaseBackup.id.asc()
    shape = _Shape(SortKey.latest, View.active, False, by_source, by_database, "no")
    return HotQuery(
        _by_source_and_database(
            _records_select().where(DatabaseBackup.status == BackupStatus.completed), shape
        )
        .order_by(order, tie)
        .limit(1)
    )


_GRAM_COUNTS = HotQuery(gram_counts())
# Newest and oldest completed backup by (newest, by source, by database).
_EDGE_COMPLETED = {
    (newest, by_source, by_database): _edge_query(
        newest=newest, by_source=by_source, by_database=by_database
    )
    for newest in (True, False)
    for by_source in (True, False)
    for by_database in (True, False)
}
_COUNTERS = HotQuery(
    select(
        BackupCounter.status,
        BackupCounter.cancelled,
        func.sum(BackupCounter.row_count),
        func.sum(BackupCounter.size_sum),
    ).group_by(BackupCounter.status, BackupCounter.cancelled)
)


def _rows_by_status(*, by_source: bool, by_database: bool) -> HotQuery:
    """The counters' numbers counted from the rows of one source and/or database: an index
    range on (source_id, backup_date) or (target_database, backup_date), that part only."""
    cancelled = DatabaseBackup.cancelled_at.is_not(None)
    shape = _Shape(SortKey.latest, View.active, False, by_source, by_database, "no")
    stmt: Any = select(
        DatabaseBackup.status,
        cancelled,
        func.count(),
        func.coalesce(func.sum(DatabaseBackup.file_size), 0),
    ).select_from(DatabaseBackup)
    return HotQuery(_by_source_and_database(stmt, shape).group_by(DatabaseBackup.status, cancelled))


_ROWS_BY_STATUS = {
    (by_source, by_database): _rows_by_status(by_source=by_source, by_database=by_database)
    for by_source, by_database in ((True, False), (False, True), (True, True))
}
_LIST_VERSION = select(BackupListVersion.version).where(BackupListVersion.id == 1).scalar_subquery()


@dataclass(frozen=True)
class _PageQueries:
    """A list's queries. ``counted``: the page with its total (and, when counted from the
    rows, the lists' version); ``versioned``: that page with the version only (unused when the
    counters count); ``count``: the total (and version) alone."""

    counted: HotQuery
    versioned: HotQuery
    count: HotQuery


# Page queries by (dialect, shape): built on first use.
_PAGE_QUERIES: dict[tuple[str, _Shape], _PageQueries] = {}

# Rows per keyset batch of a full read (the CSV export): memory stays at one batch.
EXPORT_BATCH = 1000


@dataclass(frozen=True)
class _BatchQueries:
    """A full read's queries: ``first`` batch, and each ``next`` after the last row seen."""

    first: HotQuery
    next: HotQuery


# Batch queries by (dialect, shape): built on first use.
_BATCH_QUERIES: dict[tuple[str, _Shape], _BatchQueries] = {}


def _after_last_row(sort: SortKey) -> Any:
    """Rows past ``(after_value, after_id)`` in ``sort``'s order (binds ``after_value`` and
    ``after_id``). Written as ``col <= v AND (col < v OR id < i)`` rather than as a row-value
    comparison: the first term is a plain index range on every dialect."""
    column = _SORT_COLUMN[sort]
    value = bindparam("after_value", type_=column.type)
    last_id = bindparam("after_id", type_=DatabaseBackup.id.type)
    if sort in _DESCENDING:
        return and_(column <= value, or_(column < value, DatabaseBackup.id < last_id))
    return and_(column >= value, or_(column > value, DatabaseBackup.id > last_id))


def escape_like(text: str) -> str:
    """Make ``text`` a literal inside LIKE: ``%`` and ``_`` are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class StatisticsRow:
    total_backups: int
    completed_backups: int
    failed_backups: int
    cancelled_backups: int
    trashed_backups: int
    total_size: int
    average_size: int


class BackupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, backup: DatabaseBackup) -> None:
        self.session.add(backup)

    async def get(self, backup_id: int) -> DatabaseBackup | None:
        return await self.session.get(DatabaseBackup, backup_id, populate_existing=True)

    async def get_many(self, ids: Sequence[int]) -> dict[int, DatabaseBackup]:
        if not ids:
            return {}
        rows = await self.session.scalars(
            select(DatabaseBackup)
            .where(DatabaseBackup.id.in_(ids))
            .execution_options(populate_existing=True)
        )
        return {row.id: row for row in rows}

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _filtered(self, stmt: Select[Any], shape: _Shape) -> Select[Any]:
        """``stmt`` restricted to ``shape``'s view and filters (bind parameters)."""
        by_status: Any = bindparam("status") if shape.by_status else None
        if shape.view is View.trash:
            stmt = stmt.where(DatabaseBackup.status == BackupStatus.in_trash)
            if by_status is not None:
                stmt = stmt.where(DatabaseBackup.status_before_trash == by_status)
        else:
            stmt = stmt.where(DatabaseBackup.status != BackupStatus.in_trash)
            if by_status is not None:
                stmt = stmt.where(DatabaseBackup.status == by_status)
        stmt = _by_source_and_database(stmt, shape)
        if shape.searching != "no":
            stmt = stmt.where(self._matches(bindparam("pattern")))
        return stmt

    def _matches(self, pattern: Any) -> Any:
        """Case-insensitive LIKE ``pattern`` on the filename or the unique identifier."""
        columns = (DatabaseBackup.filename, DatabaseBackup.unique_identifier)
        if self._dialect == "postgresql":
            return or_(*(column.ilike(pattern, escape="\\") for column in columns))
        # MySQL's default collations and SQLite's LIKE already ignore case; lower() on both
        # sides (what ilike renders there) would only cost a function call per row.
        return or_(*(column.like(pattern, escape="\\") for column in columns))

    async def list_page(
        self,
        *,
        page: int,
        per_page: int,
        filters: ListFilters,
        sort: SortKey,
        view: View,
    ) -> tuple[list[BackupRecord], int]:
        """One page of backups and the total number matching the filters, in one round trip
        (a total counted from the rows may have been kept: app/backups/totals.py)."""
        params = {**filters.params(), "limit": per_page, "offset": (page - 1) * per_page}
        if filters.counted_from_rows:
            return await self._counted_page(params, filters=filters, sort=sort, view=view)
        queries = self._page_queries(_shape(filters, sort=sort, view=view, searching="no"))
        rows = await hot_rows(self.session, queries.counted, **params)
        if rows:
            return [_record(row) for row in rows], int(rows[0][-1] or 0)
        return [], int((await self._count_row(queries, params))[0] or 0)

    async def _counted_page(
        self, filter_params: dict[str, Any], *, filters: ListFilters, sort: SortKey, view: View
    ) -> tuple[list[BackupRecord], int]:
        """A page whose total is counted from the rows (a search, a source, a database), with
        the total kept for the same view and filters if it was counted at the lists' version
        the page is read at (app/backups/totals.py), else counted and kept.

        A kept search total also keeps the prefilter's choice of grams, which decides the speed
        of the search and never its result; it is chosen again whenever the lists have changed.
        """
        totals: SearchTotals | None = self.session.info.get(TOTALS_KEY)
        key = (view, filters)
        kept = totals.get(key) if totals is not None else None
        rows: list[Row] = []
        if kept is not None:
            queries, params = self._row_count_queries(
                filter_params, filters, sort, view, kept.grams
            )
            rows = await hot_rows(self.session, queries.versioned, **params)
            if rows and rows[0][-1] == kept.version:
                return [_record(row) for row in rows], kept.total
        if kept is None or rows:  # never counted, or the lists changed since
            grams = await self._useful_grams(filters.search) if filters.search else None
        else:  # past the last page no row carries a version: count with the same prefilter
            grams = kept.grams
        queries, params = self._row_count_queries(filter_params, filters, sort, view, grams)
        # The columns end with the total and the version, both of the page's own snapshot.
        rows = await hot_rows(self.session, queries.counted, **params)
        total_and_version = rows[0][-2:] if rows else await self._count_row(queries, params)
        total = int(total_and_version[0] or 0)
        if totals is not None:
            totals.keep(key, version=total_and_version[1], total=total, grams=grams)
        return [_record(row) for row in rows], total

    def _row_count_queries(
        self,
        filter_params: dict[str, Any],
        filters: ListFilters,
        sort: SortKey,
        view: View,
        grams: dict[str, Any] | None,
    ) -> tuple[_PageQueries, dict[str, Any]]:
        """The queries of a page counted from the rows, and their parameters (a search's with
        the prefilter's ``grams`` or none)."""
        params = dict(filter_params)
        searching = "no"
        if filters.search:
            params.update(pattern=f"%{escape_like(filters.search)}%", **(grams or {}))
            searching = "scan" if grams is None else "grams"
        queries = self._page_queries(_shape(filters, sort=sort, view=view, searching=searching))
        return queries, params

    async def _count_row(self, queries: _PageQueries, params: dict[str, Any]) -> Sequence[Any]:
        """The total alone (and, counted from the rows, the lists' version): past the last page
        the page query has no row to carry it."""
        del params["limit"], params["offset"]
        [row] = await hot_rows(self.session, queries.count, **params)  # an aggregate: one row
        return row

    async def _useful_grams(self, search: str) -> dict[str, Any] | None:
        """The search prefilter's parameters (app/backups/search.py), or None to scan."""
        grams = search_grams(search) if self._dialect == "mysql" else None
        if grams is None:
            return None
        [counts] = await hot_rows(
            self.session,
            _GRAM_COUNTS,
            gram_first=grams["gram_first"],
            gram_last=grams["gram_last"],
        )
        return narrowed(grams, (int(counts[0]), int(counts[1])))

    def _page_queries(self, shape: _Shape) -> _PageQueries:
        """The page and count queries of ``shape``."""
        key = (self._dialect, shape)
        found = _PAGE_QUERIES.get(key)
        if found is None:
            only = candidates() if shape.searching == "grams" else None
            count = self._count_statement(shape, only=only)
            # A total counted from the rows comes with the lists' version, in one statement.
            version = (_LIST_VERSION,) if shape.from_rows else ()

            def page(*extra: Any) -> HotQuery:
                return HotQuery(
                    self._filtered(_records_select(*extra, only=only), shape)
                    .order_by(*_ORDER[shape.sort])
                    .limit(bindparam("limit", type_=Integer))
                    .offset(bindparam("offset", type_=Integer))
                )

            found = _PAGE_QUERIES[key] = _PageQueries(
                counted=page(count.scalar_subquery(), *version),
                versioned=page(*version),
                count=HotQuery(count.add_columns(*version)),
            )
        return found

    async def iter_batches(
        self,
        *,
        filters: ListFilters,
        sort: SortKey,
        view: View,
        batch_size: int = EXPORT_BATCH,
    ) -> AsyncGenerator[list[BackupRecord], None]:
        """Every backup matching the list's filters, in the list's order, ``batch_size`` at a
        time: each batch is one keyset query (``WHERE (key, id)`` past the last row seen), so
        memory stays at one batch and no connection is held between batches.

        Not a snapshot: a backup created, changed or deleted meanwhile may be in or out; none
        is read twice, since every batch starts strictly after the last row of the one before.
        """
        params: dict[str, Any] = {**filters.params(), "limit": batch_size}
        grams: dict[str, Any] | None = None
        if filters.search:
            grams = await self._useful_grams(filters.search)
            params.update(pattern=f"%{escape_like(filters.search)}%", **(grams or {}))
        searching = "no" if not filters.search else "scan" if grams is None else "grams"
        queries = self._batch_queries(_shape(filters, sort=sort, view=view, searching=searching))
        column = _SORT_COLUMN[sort].key
        rows = await hot_rows(self.session, queries.first, **params)
        while rows:
            batch = [_record(row) for row in rows]
            yield batch
            if len(rows) < batch_size:
                return
            last = batch[-1]
            params.update(after_value=last[column], after_id=last["id"])
            rows = await hot_rows(self.session, queries.next, **params)

    def _batch_queries(self, shape: _Shape) -> _BatchQueries:
        key = (self._dialect, shape)
        found = _BATCH_QUERIES.get(key)
        if found is None:
            only = candidates() if shape.searching == "grams" else None
            first = self._filtered(_records_select(only=only), shape)

            def batch(stmt: Select[Any]) -> HotQuery:
                limit = bindparam("limit", type_=Integer)
                return HotQuery(stmt.order_by(*_ORDER[shape.sort]).limit(limit))

            found = _BATCH_QUERIES[key] = _BatchQueries(
                first=batch(first), next=batch(first.where(_after_last_row(shape.sort)))
            )
        return found

    def _count_statement(self, shape: _Shape, *, only: Any = None) -> Select[Any]:
        """Counting: from the trigger-kept counters unless a search, a source or a database
        needs the table itself (one source's or database's rows: an index range)."""
        if shape.from_rows:
            rows: Any = DatabaseBackup
            if only is not None:
                rows = only.join(DatabaseBackup, DatabaseBackup.id == only.c.backup_id)
            return self._filtered(select(func.count()).select_from(rows), shape)
        status: Any = bindparam("status") if shape.by_status else None
        stmt = select(func.coalesce(func.sum(BackupCounter.row_count), 0))
        if shape.view is View.trash:
            stmt = stmt.where(BackupCounter.status == BackupStatus.in_trash.value)
            if status is not None:
                stmt = stmt.where(BackupCounter.status_before_trash == status)
        elif status is not None:
            stmt = stmt.where(BackupCounter.status == status)
        else:
            stmt = stmt.where(BackupCounter.status != BackupStatus.in_trash.value)
        return stmt

    async def statistics(
        self, *, source_id: int | None = None, database: str | None = None
    ) -> StatisticsRow:
        """Counts and sizes by status: from the trigger-kept counters, or, for one source
        and/or database, counted from that source's (database's) rows alone by index."""
        if source_id is None and database is None:
            rows = await hot_rows(self.session, _COUNTERS)
        else:
            query = _ROWS_BY_STATUS[(source_id is not None, database is not None)]
            filters = ListFilters(source_id=source_id, database=database)
            rows = await hot_rows(self.session, query, **filters.params())
        count: dict[str, int] = {}
        size: dict[str, int] = {}
        cancelled = 0
        for raw_status, was_cancelled, n, total in rows:
            status = str(getattr(raw_status, "value", raw_status))
            count[status] = count.get(status, 0) + int(n or 0)
            size[status] = size.get(status, 0) + int(total or 0)
            if was_cancelled and status == BackupStatus.failed.value:
                cancelled += int(n or 0)
        completed = count.get(BackupStatus.completed.value, 0)
        return StatisticsRow(
            total_backups=sum(count.values()),
            completed_backups=completed,
            # A cancel is the user's choice, not a failure (status "failed" all the same).
            failed_backups=count.get(BackupStatus.failed.value, 0) - cancelled,
            cancelled_backups=cancelled,
            trashed_backups=count.get(BackupStatus.in_trash.value, 0),
            total_size=sum(size.values()),
            average_size=round(size.get(BackupStatus.completed.value, 0) / completed)
            if completed
            else 0,
        )

    async def edge_completed_record(
        self, *, newest: bool, source_id: int | None = None, database: str | None = None
    ) -> BackupRecord | None:
        """``edge_completed`` as a record, on the fast reader (for the statistics), of one
        source and/or database when given."""
        query = _EDGE_COMPLETED[(newest, source_id is not None, database is not None)]
        filters = ListFilters(source_id=source_id, database=database)
        rows = await hot_rows(self.session, query, **filters.params())
        return _record(rows[0]) if rows else None

    async def edge_completed(self, *, newest: bool) -> DatabaseBackup | None:
        """The newest (or oldest) completed backup that is not in the trash."""
        order = DatabaseBackup.backup_date.desc() if newest else DatabaseBackup.backup_date.asc()
        tie = DatabaseBackup.id.desc() if newest else DatabaseBackup.id.asc()
        return await self.session.scalar(
            select(DatabaseBackup)
            .where(DatabaseBackup.status == BackupStatus.completed)
            .order_by(order, tie)
            .limit(1)
        )

    async def count_by_status(self) -> list[tuple[BackupStatus, bool, int]]:
        """How many backups there are by status and whether they were cancelled, counted from
        the rows themselves (not the trigger-kept counters)."""
        cancelled = DatabaseBackup.cancelled_at.is_not(None)
        rows = await self.session.execute(
            select(DatabaseBackup.status, cancelled, func.count()).group_by(
                DatabaseBackup.status, cancelled
            )
        )
        return [
            (BackupStatus(status), bool(was_cancelled), int(count))
            for status, was_cancelled, count in rows
        ]

    async def transition(
        self,
        backup_id: int,
        *,
        from_statuses: Sequence[BackupStatus],
        values: dict[str, Any],
        extra: Any = None,
    ) -> bool:
        """Atomically change a row only if it is still in one of ``from_statuses``."""
        condition = and_(DatabaseBackup.id == backup_id, DatabaseBackup.status.in_(from_statuses))
        if extra is not None:
            condition = and_(condition, extra)
        result = await self.session.execute(
            update(DatabaseBackup)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def update_progress(
        self, backup_id: int, *, bytes_processed: int, heartbeat_at: datetime
    ) -> DatabaseBackup | None:
        await self.session.execute(
            update(DatabaseBackup)
            .where(
                DatabaseBackup.id == backup_id, DatabaseBackup.status == BackupStatus.in_progress
            )
            .values(bytes_processed=bytes_processed, heartbeat_at=heartbeat_at)
            .execution_options(synchronize_session=False)
        )
        return await self.get(backup_id)

    async def delete_row(self, backup_id: int, *, from_statuses: Sequence[BackupStatus]) -> bool:
        result = await self.session.execute(
            delete(DatabaseBackup)
            .where(DatabaseBackup.id == backup_id, DatabaseBackup.status.in_(from_statuses))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def slot_taken(self, slot: str) -> bool:
        """Whether a scheduled backup was recorded for ``slot``."""
        found = await self.session.scalar(
            select(DatabaseBackup.id).where(DatabaseBackup.schedule_slot == slot).limit(1)
        )
        return found is not None

    async def running_backups(self, target_database: str | None) -> list[DatabaseBackup]:
        return list(
            await self.session.scalars(
                select(DatabaseBackup).where(
                    DatabaseBackup.status.in_(RUNNING_BACKUP),
                    DatabaseBackup.target_database == target_database,
                )
            )
        )

    async def running_restores(self, target_database: str | None) -> list[RestoreOperation]:
        return list(
            await self.session.scalars(
                select(RestoreOperation).where(
                    RestoreOperation.status.in_(RUNNING_RESTORE),
                    RestoreOperation.target_database == target_database,
                )
            )
        )


class RestoreRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, operation: RestoreOperation) -> None:
        self.session.add(operation)

    async def get(self, restore_id: int) -> RestoreOperation | None:
        return await self.session.get(RestoreOperation, restore_id, populate_existing=True)

    async def active_for_backup(self, backup_id: int) -> RestoreOperation | None:
        """A pending or running restore of ``backup_id``, if there is one."""
        return await self.session.scalar(
            select(RestoreOperation)
            .where(
                RestoreOperation.backup_id == backup_id,
                RestoreOperation.status.in_(RUNNING_RESTORE),
            )
            .limit(1)
        )

    async def for_backup(self, backup_id: int) -> list[RestoreOperation]:
        return list(
            await self.session.scalars(
                select(RestoreOperation)
                .where(RestoreOperation.backup_id == backup_id)
                .order_by(RestoreOperation.created_at.desc(), RestoreOperation.id.desc())
            )
        )

    async def transition(
        self,
        restore_id: int,
        *,
        from_statuses: Sequence[RestoreStatus],
        values: dict[str, Any],
        extra: Any = None,
    ) -> bool:
        condition = and_(
            RestoreOperation.id == restore_id, RestoreOperation.status.in_(from_statuses)
        )
        if extra is not None:
            condition = and_(condition, extra)
        result = await self.session.execute(
            update(RestoreOperation)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class TargetActivityRepository:
    """The per-target counters of migration 0007, for the reconciler's repair.

    The triggers keep them in every transaction; only a change that fires no trigger can leave
    one wrong: on MariaDB a foreign-key cascade (a backup row deleted by hand with its restores)
    runs no triggers. ``recount`` sets one target's counters from the rows, holding the counter
    row's lock so no request can claim or release the target meanwhile.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def held(self) -> list[str]:
        """Targets whose counters say something is active."""
        rows = await self.session.scalars(
            select(TargetActivity.target_database).where(
                or_(TargetActivity.restores > 0, TargetActivity.backups > 0)
            )
        )
        return list(rows)

    async def recount(self, target: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """Set ``target``'s counters from the rows; (old, new) when they were wrong."""
        # A write first: it takes the row's lock (SQLite: the store's write lock), and on
        # MariaDB the counts below then read a snapshot taken after it, not before.
        await self.session.execute(
            update(TargetActivity)
            .where(TargetActivity.target_database == target)
            .values(restores=TargetActivity.restores)
            .execution_options(synchronize_session=False)
        )
        row = await self.session.get(TargetActivity, target, populate_existing=True)
        if row is None:
            return None
        restores = await self.session.scalar(
            select(func.count())
            .select_from(RestoreOperation)
            .where(
                RestoreOperation.target_database == target,
                RestoreOperation.status.in_(RUNNING_RESTORE),
            )
        )
        backups = await self.session.scalar(
            select(func.count())
            .select_from(DatabaseBackup)
            .where(
                DatabaseBackup.target_database == target,
                DatabaseBackup.status.in_(RUNNING_BACKUP),
                DatabaseBackup.trigger != BackupTrigger.pre_restore,
            )
        )
        old, new = (row.restores, row.backups), (int(restores or 0), int(backups or 0))
        if old == new:
            return None
        row.restores, row.backups = new
        await self.session.flush()
        return old, new
