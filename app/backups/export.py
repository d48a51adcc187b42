"""The backup history as CSV (RFC 4180), for the API's export and ``dbkeep backup:export-csv``.

One row per backup with the columns of docs/export.md. Text a user or a database could have
chosen (names, error messages, e-mails) is guarded against formula injection: a spreadsheet runs
a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula, so
such a cell gets a leading ``'`` (OWASP's advice). Numbers, dates and enum values are written by
dbkeep itself and left as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.backups.repository import BackupRecord

# Starlette adds "; charset=utf-8" to a text/ type on the wire; the OpenAPI key stays plain.
MEDIA_TYPE = "text/csv"

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = frozenset(',"\r\n')


def guard_formula(text: str) -> str:
    """``text`` as a spreadsheet shows it and never evaluates it."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def quote_field(text: str) -> str:
    """One RFC 4180 field: quoted (quotes doubled) when it holds a comma, a quote, CR or LF."""
    if _NEEDS_QUOTES.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def csv_line(fields: Iterable[str]) -> str:
    return ",".join(quote_field(f) for f in fields) + "\r\n"


def _text(value: Any) -> str:
    return "" if value is None else guard_formula(str(value))


def _number(value: Any) -> str:
    return "" if value is None else str(int(value))


def _enum(value: Any) -> str:
    return "" if value is None else str(getattr(value, "value", value))


def _timestamp(value: datetime | None) -> str:
    """ISO 8601 in UTC, to the second, with a ``Z``."""
    if value is None:
        return ""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _boolean(value: Any) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[BackupRecord], str]


def _field(key: str, render: Callable[[Any], str]) -> Callable[[BackupRecord], str]:
    return lambda record: render(record[key])


COLUMNS: tuple[Column, ...] = (
    Column("id", _field("id", _number)),
    Column("filename", _field("filename", _text)),
    Column("source_id", _field("source_id", _number)),
    Column("source", _field("source_name", _text)),
    Column("database", _field("target_database", _text)),
    # As the API shows it: a cancelled backup's status is "failed", with cancelled = true.
    Column("status", _field("status", _enum)),
    Column("cancelled", lambda r: _boolean(r["cancelled_at"] is not None)),
    Column("status_before_trash", _field("status_before_trash", _enum)),
    Column("trigger", _field("trigger", _enum)),
    Column("size_bytes", _field("file_size", _number)),
    Column("checksum_sha256", _field("checksum_sha256", _text)),
    Column("backup_date", _field("backup_date", _timestamp)),
    Column("created_at", _field("created_at", _timestamp)),
    Column("started_at", _field("started_at", _timestamp)),
    Column("completed_at", _field("completed_at", _timestamp)),
    Column("duration_ms", _field("duration_ms", _number)),
    Column("created_by", _field("created_by_email", _text)),
    Column("error_message", _field("error_message", _text)),
    Column("trashed_at", _field("trashed_at", _timestamp)),
)

HEADER = csv_line(c.header for c in COLUMNS)


def csv_row(record: BackupRecord) -> str:
    return csv_line(c.cell(record) for c in COLUMNS)


async def csv_chunks(batches: AsyncIterable[list[BackupRecord]]) -> AsyncIterator[bytes]:
    """The header, then one UTF-8 chunk per batch of records."""
    yield HEADER.encode()
    async for batch in batches:
        yield "".join(csv_row(record) for record in batch).encode()


def export_filename(now: datetime) -> str:
    """``dbkeep-backups-YYYYMMDD-HHMMSS.csv``, the time in UTC."""
    return f"dbkeep-backups-{now.astimezone(UTC):%Y%m%d-%H%M%S}.csv"
