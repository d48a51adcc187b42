"""The backup history as CSV: RFC 4180 quoting, formula injection, the list's filters and
order, auth, headers, a 100,000-row export at flat memory, and the CLI writing the same bytes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import (
    String,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.exc import SAWarning

import app.backups.repository as repository
from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.config import Settings
from app.db import Database
from tests.api.conftest import (
    BackupFactory,
    TokenClient,
    assert_failure,
    insert_backups,
)
from tests.api.test_backups_list import STATUSES, all_pages
from tests.test_cli import cli_env

BACKUPS = "/admin/api/database-backups"
EXPORT = f"{BACKUPS}/export.csv"
DBKEEP = str(Path(sys.executable).with_name("dbkeep"))
HEADER = (
    "id,filename,source_id,source,database,status,cancelled,status_before_trash,trigger,size_bytes,"
    "checksum_sha256,backup_date,created_at,started_at,completed_at,duration_ms,created_by,"
    "error_message,trashed_at"
)


def parse(text: str) -> list[dict[str, str]]:
    """The export read back the way a CSV reader does."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def export(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    response = await client.get(EXPORT, params=params)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
async def many(database: Database) -> list[DatabaseBackup]:
    """60 rows: every status, distinct dates, sizes that collide in pairs, some cancelled."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "status": STATUSES[i % len(STATUSES)],
            "backup_date": base + timedelta(hours=(i * 37) % 60),
            "file_size": 5000 + (i // 2) * 7 % 311,
            "filename": f"shop_{i:03d}.sql.zst" if i % 4 else f"crm_{i:03d}.sql.zst",
        }
        for i in range(60)
    ]
    return await insert_backups(database, rows)


# ---- format ------------------------------------------------------------------------------


async def test_one_row_has_every_column_in_iso_utc(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, admin_user: Any
) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    backup = await make_backup(
        filename="shop_2026.sql.zst",
        backup_date=at,
        created_at=at,
        started_at=at + timedelta(seconds=1),
        completed_at=at + timedelta(seconds=61),
        duration_ms=60_000,
        file_size=123_456_789_012,
        checksum_sha256="ab" * 32,
        created_by=admin_user.id,
        trigger=BackupTrigger.scheduled,
    )
    response = await export(admin_client)
    lines = response.text.split("\r\n")
    assert lines[0] == HEADER
    assert lines[1] == (
        f"{backup.id},shop_2026.sql.zst,,,shop,completed,false,,scheduled,123456789012,{'ab' * 32},"
        "2026-03-04T05:06:07Z,2026-03-04T05:06:07Z,2026-03-04T05:06:08Z,2026-03-04T05:07:08Z,"
        "60000,admin@example.com,,"
    )
    assert lines[2:] == [""]  # every line ends with CRLF, the last one too


async def test_cancelled_and_trashed_rows_read_as_the_api_shows_them(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    now = datetime.now(UTC)
    cancelled = await make_backup(
        status=BackupStatus.failed, cancelled_at=now, error_message="Cancelled by a user."
    )
    trashed = await make_backup(status=BackupStatus.in_trash, trashed_at=now)
    rows = {r["id"]: r for r in parse((await export(admin_client)).text)}
    assert rows[str(cancelled.id)]["status"] == "failed"
    assert rows[str(cancelled.id)]["cancelled"] == "true"
    api = (await admin_client.get(f"{BACKUPS}/{cancelled.id}")).json()["data"]
    assert (api["status"], api["cancelled"]) == ("failed", True)
    [in_trash] = parse((await export(admin_client, view="trash")).text)
    assert in_trash["id"] == str(trashed.id)
    assert (in_trash["status"], in_trash["status_before_trash"]) == ("in_trash", "completed")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", in_trash["trashed_at"])


@pytest.mark.parametrize(
    "message,field",
    [
        ("disk full, giving up", '"disk full, giving up"'),
        ('the "dump" broke', '"the ""dump"" broke"'),
        ("line one\nline two", '"line one\nline two"'),
        ("line one\r\nline two", '"line one\r\nline two"'),
        ("carriage\rreturn", '"carriage\rreturn"'),
        ('a, "b"\n', '"a, ""b""\n"'),
        ("Zürich — 日本語 ✓", "Zürich — 日本語 ✓"),
        ("plain", "plain"),
    ],
)
async def test_fields_are_quoted_per_rfc_4180(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, message: str, field: str
) -> None:
    await make_backup(status=BackupStatus.failed, error_message=message)
    response = await export(admin_client)
    # error_message is the next-to-last column; trashed_at (empty) is the last.
    assert response.text.endswith(f",{field},\r\n")
    assert response.content.decode("utf-8") == response.text
    [row] = parse(response.text)
    assert row["error_message"] == message


async def test_unicode_filename_survives_as_utf8(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup(filename="données_€_日本.sql.zst")
    response = await export(admin_client)
    assert "données_€_日本.sql.zst".encode() in response.content
    assert parse(response.text)[0]["filename"] == "données_€_日本.sql.zst"


@pytest.mark.parametrize(
    "message",
    ['=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd", "=1,2"],
)
async def test_formula_like_text_is_prefixed_with_a_quote(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory, message: str
) -> None:
    await make_backup(status=BackupStatus.failed, error_message=message, filename=f"{message}.sql")
    [row] = parse((await export(admin_client)).text)
    assert row["error_message"] == f"'{message}"
    assert row["filename"] == f"'{message}.sql"


async def test_numbers_and_harmless_text_are_left_alone(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup(
        status=BackupStatus.failed, error_message="exit 2: a - b = c", file_size=0, duration_ms=0
    )
    [row] = parse((await export(admin_client)).text)
    assert row["error_message"] == "exit 2: a - b = c"
    assert (row["size_bytes"], row["duration_ms"]) == ("0", "0")


# ---- the list's filters, order and validation ----------------------------------------------


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    return [int(r["id"]) for r in parse((await export(client, **params)).text)]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "oldest"},
        {"sort": "name_asc"},
        {"sort": "name_desc"},
        {"sort": "size_asc"},
        {"sort": "size_desc"},
        {"status": "completed"},
        {"status": "failed", "sort": "size_desc"},
        {"view": "trash"},
        {"view": "trash", "status": "completed"},
        {"search": "crm_"},
        {"search": "  shop_0  ", "status": "pending"},
        {"search": "nothing-like-this"},
    ],
)
async def test_rows_and_order_are_the_lists(
    admin_client: httpx.AsyncClient, many: list[DatabaseBackup], params: dict[str, str]
) -> None:
    listed = [item["id"] for item in await all_pages(admin_client, **params)]
    assert await _ids(admin_client, **params) == listed
    if params.get("search") != "nothing-like-this":
        assert listed


async def test_batches_join_without_a_gap_or_a_repeat(
    admin_client: httpx.AsyncClient,
    many: list[DatabaseBackup],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batches of 7 over 50 active rows whose sizes collide in pairs: every batch boundary, ties
    # on the sort key included, is crossed by the keyset condition.
    original = repository.BackupRepository.iter_batches

    def small(self: Any, **kwargs: Any) -> Any:
        return original(self, **{**kwargs, "batch_size": 7})

    monkeypatch.setattr(repository.BackupRepository, "iter_batches", small)
    for sort in ("latest", "oldest", "name_asc", "name_desc", "size_asc", "size_desc"):
        listed = [item["id"] for item in await all_pages(admin_client, sort=sort)]
        assert await _ids(admin_client, sort=sort) == listed, sort
    assert len(listed) == 50


@pytest.mark.parametrize(
    "params,field",
    [
        ({"sort": "bogus"}, "sort"),
        ({"sort": "name_asc; DROP TABLE database_backups"}, "sort"),
        ({"status": "in_trash"}, "status"),
        ({"status": "cancelled"}, "status"),
        ({"view": "all"}, "view"),
        ({"view": ""}, "view"),
        ({"search": "x" * 201}, "search"),
        ({"search": "a\x00b"}, "search"),
    ],
)
async def test_bad_filters_are_the_lists_422(
    admin_client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    body = assert_failure(await admin_client.get(EXPORT, params=params), 422)
    assert field in body["errors"]
    assert body == (await admin_client.get(BACKUPS, params=params)).json()


async def test_other_methods_are_405(admin_client: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await admin_client.request(method, EXPORT)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET"


# ---- access and headers ----------------------------------------------------------------------


async def test_anonymous_is_401_and_a_viewer_403_like_the_list(
    client: httpx.AsyncClient, viewer_client: httpx.AsyncClient, many: list[DatabaseBackup]
) -> None:
    assert_failure(await client.get(EXPORT), 401)
    assert_failure(await viewer_client.get(EXPORT), 403)
    assert (await viewer_client.get(BACKUPS)).status_code == 403


async def test_an_api_token_works_and_the_download_headers_are_set(
    admin_token: TokenClient, many: list[DatabaseBackup]
) -> None:
    response = await export(admin_token.client)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="dbkeep-backups-\d{8}-\d{6}\.csv"',
        response.headers["content-disposition"],
    )
    assert len(parse(response.text)) == 50


async def test_an_empty_history_is_the_header_alone(admin_client: httpx.AsyncClient) -> None:
    assert (await export(admin_client)).text == HEADER + "\r\n"


# ---- 100,000 rows at flat memory -------------------------------------------------------------


def _seconds_after_2025(n: Any, dialect: str) -> Any:
    """2025-01-01 plus ``n`` seconds, in SQL (naive UTC, as UTCDateTime stores it)."""
    if dialect == "sqlite":
        # In SQLAlchemy's text format, microseconds included: SQLite compares dates as text.
        seconds = literal("+") + cast(n, String) + " seconds"
        return func.datetime("2025-01-01", seconds) + ".000000"
    if dialect == "mysql":
        return func.timestampadd(text("SECOND"), n, literal("2025-01-01"))
    return literal_column("TIMESTAMP '2025-01-01'") + n * literal_column("INTERVAL '1 second'")


async def _seed(database: Database, count: int, *, start: int = 0) -> None:
    """Backups ``start`` to ``start + count - 1`` made by the server in one INSERT ... SELECT
    (no Python row objects): every 20th failed with an error that needs quoting."""
    digits = union_all(*(select(literal(d).label("d")) for d in range(10))).subquery()
    # Just enough decimal places for the highest number: each adds a factor of ten to the join.
    places = [digits.alias(f"p{k}") for k in range(len(str(start + count - 1)))]
    joined = places[0]
    for place in places[1:]:
        joined = joined.join(place, true())  # type: ignore[assignment]
    n = sum((p.c.d * 10**k for k, p in enumerate(places)), start=literal(start))
    name = cast(n, String)
    dialect = database.engine.dialect.name
    at = _seconds_after_2025(n, dialect)
    failed = (n % 20) == 0
    rows = (
        select(
            literal("backup_shop_") + name + ".sql.zst",
            literal("u") + name,
            literal("2025/b") + name,
            (n * 7919) % 50_000_000,
            case((failed, "failed"), else_="completed"),
            case((failed, 'exit 2, "dump" broke'), else_=None),
            at,
            at,
            at,
            at,
            literal("zstd"),
            literal("scheduled"),
            literal("shop"),
            literal(0),
            literal(1),
        )
        .select_from(joined)
        .where(n < start + count)
    )
    columns = [
        "filename", "unique_identifier", "path", "file_size", "status", "error_message",
        "backup_date", "completed_at", "created_at", "updated_at", "compression", "trigger",
        "target_database", "bytes_processed", "attempts",
    ]  # fmt: skip
    async with database.engine.begin() as conn:
        with _cross_join_intended():
            await conn.execute(insert(DatabaseBackup.__table__).from_select(columns, rows))


@contextlib.contextmanager
def _cross_join_intended() -> Iterator[None]:
    """The digits' cross join is the point: SQLAlchemy's warning about it is not for us."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "SELECT statement has a cartesian product", SAWarning)
        yield


def _rss() -> int:
    """This process's resident memory in bytes (the app runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Streamed:
    status: int = 0
    size: int = 0
    chunks: int = 0
    rss_growth: int = 0  # the most resident memory grew over its level before the request


async def _stream_through_asgi(app: FastAPI, token: str) -> Streamed:
    """GET the export straight through the ASGI app, dropping each body chunk as it is sent
    (httpx's ASGI transport would keep the whole body in this process) and sampling resident
    memory at each one."""
    out = Streamed()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": EXPORT,
        "raw_path": EXPORT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("198.51.100.7", 40000),
        "server": ("testserver", 80),
    }
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the end
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            out.size += len(message["body"])
            out.chunks += 1
            out.rss_growth = max(out.rss_growth, _rss() - before)

    gc.collect()
    before = _rss()
    await app(scope, receive, send)
    assert out.status == 200
    return out


async def test_100k_rows_stream_in_flat_memory(
    app: FastAPI, database: Database, admin_token: TokenClient
) -> None:
    await _seed(database, 10_000)
    await _stream_through_asgi(app, admin_token.token)  # warm up: queries compiled, caches filled
    small = await _stream_through_asgi(app, admin_token.token)
    await _seed(database, 90_000, start=10_000)
    large = await _stream_through_asgi(app, admin_token.token)

    # The header, then one chunk per batch of 1,000 rows, each sent as soon as it is read.
    assert (small.chunks, large.chunks) == (1 + 10, 1 + 100)
    assert large.size > 9 * small.size > 0
    # Ten times the rows (~21 MB of CSV, ~150 MB as records), the same memory: one batch at a
    # time. Holding the file or the rows would grow the process by tens of megabytes.
    assert large.rss_growth < small.rss_growth + 8 * 2**20, (small, large)
    assert large.rss_growth < large.size / 2, (small, large)


# ---- the CLI --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"status": "failed", "sort": "size_asc"}, {"view": "trash"}, {"search": "crm_"}],
)
async def test_cli_writes_the_same_bytes_as_the_api(
    admin_client: httpx.AsyncClient,
    many: list[DatabaseBackup],
    database: Database,
    settings: Settings,
    params: dict[str, str],
) -> None:
    awkward = {"status": BackupStatus.failed, "error_message": '=cmd, "quoted"\r\nnext é'}
    await insert_backups(database, [awkward])
    api = (await export(admin_client, **params)).content
    options = [arg for key, value in params.items() for arg in (f"--{key}", value)]
    result = subprocess.run(
        [DBKEEP, "backup:export-csv", *options],
        env=cli_env(settings),
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == api
    assert len(parse(api.decode())) >= 1


def test_cli_refuses_bad_filters_in_one_line(settings: Settings, database: Database) -> None:
    env = cli_env(settings)
    for options, expected in (
        (["--status", "in_trash"], "in_trash"),
        (["--view", "all"], "all"),
        (["--search", "x" * 201], "at most 200 characters"),
    ):
        result = subprocess.run(
            [DBKEEP, "backup:export-csv", *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode != 0, options
        assert result.stdout == ""
        assert expected in result.stderr, result.stderr
