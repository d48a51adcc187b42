"""API benchmark: list, statistics and search over 100,000 backup rows in a MariaDB store.

Seeds a MariaDB metadata store (``dbkeep_bench_api``) with N backup rows server-side, serves the
real app with uvicorn (one process), and measures, beside a trivial route of the same app:
latency one request at a time (p50/p95/p99) and throughput at 16 connections (wrk).

    .venv/bin/python -m bench.api --rows 100000           # the full run
    .venv/bin/python -m bench.api --rows 2000 --quick     # the CI smoke run
    .venv/bin/python -m bench.api --rows 100000 --sources 50   # 50 sources: all and one
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import (
    BENCH_USER,
    HOST,
    PORT,
    admin_sql,
    check_database_name,
    ensure_bench_account,
)

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = {
    "trivial route (same app)": "/__bench/trivial",
    "list (page 1, meta.total)": "/admin/api/database-backups",
    "list page 50, sort size_desc": "/admin/api/database-backups?page=50&sort=size_desc",
    "list status=failed": "/admin/api/database-backups?status=failed",
    "statistics": "/admin/api/database-backups/statistics",
    "search (literal substring)": "/admin/api/database-backups?search=4242",
    "search (a term in every name)": "/admin/api/database-backups?search=backup",
}
# A search's total is kept while the backups don't change (app/backups/totals.py), so the
# rows above measure a search asked again (the dashboard's poll, the next page). A search's first
# ask counts: measured with a new term for each request, alike in cost: other numbers for the
# literal substring, other spellings in upper and lower case for the term in every name (the
# total is kept by the exact term; MariaDB's collation finds the same rows).
FIRST_ASK_TERM = "backup_shop"

# With ``--sources N``: the backups spread over N sources (round robin) and 3 databases each;
# "all sources" is the list above, these read one source's (or database's) rows.
ONE_SOURCE = {
    "list, one source": "/admin/api/database-backups?source_id=7",
    "list, one source, page 50": "/admin/api/database-backups?source_id=7&page=50&sort=size_desc",
    "list, one source + database": "/admin/api/database-backups?source_id=7&database=db1",
    "list, one database": "/admin/api/database-backups?database=db1",
    "list, one source, status=failed": "/admin/api/database-backups?source_id=7&status=failed",
    "statistics, one source": "/admin/api/database-backups/statistics?source_id=7",
    "search, one source": "/admin/api/database-backups?source_id=7&search=4242",
}


def literal_first_asks() -> Iterator[str]:
    """Four-digit numbers, like ``4242`` (each matches 40 to 80 of the 100,000 backups)."""
    for number in range(1000, 10_000):
        yield f"/admin/api/database-backups?search={number}"


def every_name_first_asks() -> Iterator[str]:
    """``FIRST_ASK_TERM`` in every spelling of upper and lower case letters (1,024 of them)."""
    letters = [i for i, char in enumerate(FIRST_ASK_TERM) if char.isalpha()]
    for uppers in itertools.product((False, True), repeat=len(letters)):
        term = list(FIRST_ASK_TERM)
        for index, upper in zip(letters, uppers, strict=True):
            term[index] = term[index].upper() if upper else term[index]
        yield "/admin/api/database-backups?search=" + "".join(term)


FIRST_ASKS = {
    "search (literal), 1st ask": literal_first_asks,
    "search (every name), 1st ask": every_name_first_asks,
}


def seed(database: str, rows: int, password: str, sources: int = 0) -> str:
    admin_sql(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`")
    url = f"mysql+asyncmy://{BENCH_USER}:{password}@{HOST}:{PORT}/{database}"
    env = _env(url)
    subprocess.run([_bin("dbkeep"), "migrate"], env=env, check=True, capture_output=True)
    if sources:
        # The API never reads a source's URL for these routes (only its name is joined), so a
        # placeholder stands in for the encrypted text.
        admin_sql(
            "INSERT INTO sources (name, engine, url, `databases`, `exclude`, timezone, retention, "
            "enabled, from_environment, created_at, updated_at) "
            "SELECT CONCAT('source-', seq), 'mysql', 'bench: never read', '[\"*\"]', '[]', "
            f"'UTC', '{{}}', 1, 0, NOW(6), NOW(6) FROM seq_1_to_{sources}",
            database=database,
        )
    # Server-side generation: statuses mostly completed, some failed and trashed, dates spread
    # over a year, sizes varied, names unique; with sources, round robin over them (ids 1..N)
    # and three databases each.
    source_id = f"1 + seq % {sources}" if sources else "NULL"
    database_name = f"CONCAT('db', (seq DIV {sources}) % 3)" if sources else "'shop'"
    admin_sql(
        "INSERT INTO database_backups (filename, unique_identifier, path, file_size, status, "
        "backup_date, completed_at, created_at, updated_at, compression, `trigger`, "
        "bytes_processed, attempts, status_before_trash, trashed_at, source_id, "
        "target_database) "
        "SELECT CONCAT('backup_shop_', seq, '.sql.zst'), MD5(seq), CONCAT('2026/01/b', seq), "
        "(seq * 7919) % 50000000, "
        "CASE WHEN seq % 20 = 0 THEN 'failed' WHEN seq % 10 = 0 THEN 'in_trash' "
        "ELSE 'completed' END, "
        "NOW(6) - INTERVAL seq MINUTE, NOW(6) - INTERVAL seq MINUTE, NOW(6), NOW(6), 'zstd', "
        "'scheduled', 0, 1, IF(seq % 10 = 0 AND seq % 20 <> 0, 'completed', NULL), "
        f"IF(seq % 10 = 0 AND seq % 20 <> 0, NOW(6), NULL), {source_id}, {database_name} "
        f"FROM seq_1_to_{rows}",
        database=database,
    )
    admin_sql("ANALYZE TABLE database_backups", database=database)
    return url


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    env.update(
        DBKEEP_DATABASE_URL=url,
        DBKEEP_ENV="dev",
        DBKEEP_VAR_DIR=tempfile.mkdtemp(prefix="dbkeep-bench-api-"),
        DBKEEP_LOG_LEVEL="WARNING",
        DBKEEP_SCHEDULE_ENABLED="false",
    )
    return env


def make_token(env: dict[str, str]) -> str:
    email = "bench-admin@example.com"
    subprocess.run(
        [_bin("dbkeep"), "user:create", email, "--role", "admin", "--password-stdin"],
        input="bench-password-123456\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    out = subprocess.run(
        [_bin("dbkeep"), "token:create", email, "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"dbk_[A-Za-z0-9_\-]+", out)
    assert match, out
    return match.group(0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            _bin("uvicorn"),
            "--factory",
            "bench.api_app:create",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/__bench/trivial", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the API did not start")


def latency(client: httpx.Client, path: str | Iterator[str], n: int) -> tuple[float, float, float]:
    """p50, p95 and p99 of ``n`` requests after a warm-up; ``path`` may give a new path to
    each request."""
    paths = itertools.repeat(path) if isinstance(path, str) else path
    for _ in range(max(5, n // 10)):
        client.get(next(paths)).raise_for_status()
    samples = []
    for _ in range(n):
        current = next(paths)
        start = time.perf_counter()
        response = client.get(current)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    return q[49], q[94], q[98]


def throughput(url: str, token: str, seconds: int) -> float | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} failed responses for {url}")
    return float(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--requests", type=int, default=500, help="sequential requests per endpoint"
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    parser.add_argument("--quick", action="store_true", help="smoke run: few requests, 2 s of wrk")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--database", default="dbkeep_bench_api", help="dbkeep_bench_* name")
    parser.add_argument(
        "--sources", type=int, default=0, help="spread the backups over N sources (and measure one)"
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds = 30, 2

    password = ensure_bench_account()
    database = check_database_name(args.database)
    url = seed(database, args.rows, password, args.sources)
    env = _env(url)
    token = make_token(env)
    port = free_port()
    server = start_server(env, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        spread = f" over {args.sources} sources" if args.sources else ""
        print(
            f"API benchmark: {args.rows:,} backup rows{spread} in MariaDB, "
            f"uvicorn ({args.workers} process(es))"
        )
        print(f"{'endpoint':32} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s @16':>10}")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            endpoints = {**ENDPOINTS, **(ONE_SOURCE if args.sources else {})}
            for label, path in endpoints.items():
                p50, p95, p99 = latency(client, path, args.requests)
                rps = throughput(base + path, token, args.seconds)
                rate = f"{rps:10.0f}" if rps is not None else f"{'n/a':>10}"
                print(f"{label:32} {p50:8.2f} {p95:8.2f} {p99:8.2f} {rate}")
            # No throughput: wrk asks for one URL, whose total is kept after its first request.
            for label, paths in FIRST_ASKS.items():
                p50, p95, p99 = latency(client, paths(), min(args.requests, 900))
                print(f"{label:32} {p50:8.2f} {p95:8.2f} {p99:8.2f} {'n/a':>10}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(env["DBKEEP_VAR_DIR"], ignore_errors=True)
        if not args.keep:
            admin_sql(f"DROP DATABASE IF EXISTS `{database}`")


if __name__ == "__main__":
    main()
