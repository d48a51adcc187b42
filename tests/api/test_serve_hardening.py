"""Issue 11 against a real ``dbkeep migrate`` + ``dbkeep serve`` (uvicorn, SQLite store in its
var directory): file modes, parallel logins over HTTP, X-Forwarded-For from a loopback peer, and
secrets in the access log."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import support

DBKEEP = str(Path(sys.executable).parent / "dbkeep")
ADMIN = "admin@example.com"
PASSWORD = "correct-horse-battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    env.update(
        DBKEEP_ENV="test",
        DBKEEP_REDIS_URL=support.REDIS_URL,
        DBKEEP_QUEUE_NAME=support.unique_name("dbkeep:test:queue"),
        DBKEEP_SCHEDULE_ENABLED="false",
        DBKEEP_ADMIN_EMAIL=ADMIN,
        DBKEEP_ADMIN_PASSWORD=PASSWORD,
        DBKEEP_PORT=str(port),
        DBKEEP_LOG_FORMAT="json",
    )
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """``dbkeep migrate`` then ``dbkeep serve --no-worker`` in ``tmp_path`` with the defaults:
    the store is ./var/dbkeep.sqlite3. Yields the URL, the var directory and the log."""
    port = _free_port()
    env = _env(tmp_path, port)
    migrated = subprocess.run(
        [DBKEEP, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [DBKEEP, "serve", "--no-worker"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code in {200, 503}:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield url, tmp_path / "var", log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_what_dbkeep_makes_in_its_var_dir_are_private(
    served: tuple[str, Path, Path],
) -> None:
    url, var, _log = served
    # A login writes: the WAL and its index exist now.
    assert (
        httpx.post(f"{url}/api/auth/login", json={"email": ADMIN, "password": PASSWORD}).status_code
        == 200
    )
    store = var / "dbkeep.sqlite3"
    assert _mode(var) == 0o700
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        assert path.exists(), path
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
    for path in var.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)), oct(expected))


def test_parallel_logins_over_http_check_no_more_than_the_limit(
    served: tuple[str, Path, Path],
) -> None:
    url, var, _log = served

    def attempt(_: int) -> int:
        response = httpx.post(
            f"{url}/api/auth/login",
            json={"email": ADMIN, "password": "wrong-password"},
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = sorted(pool.map(attempt, range(30)))
    assert statuses == [401] * 5 + [429] * 25
    with sqlite3.connect(var / "dbkeep.sqlite3") as conn:
        (checked,) = conn.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'auth.login_failed'"
        ).fetchone()
    assert checked == 5


def test_a_loopback_peer_cannot_choose_the_audited_address(
    served: tuple[str, Path, Path],
) -> None:
    url, var, _log = served
    httpx.post(
        f"{url}/api/auth/login",
        json={"email": ADMIN, "password": "wrong-password"},
        headers={"X-Forwarded-For": "6.6.6.6"},
    )
    with sqlite3.connect(var / "dbkeep.sqlite3") as conn:
        addresses = [
            row[0]
            for row in conn.execute(
                "SELECT client_ip FROM audit_events WHERE action = 'auth.login_failed'"
            )
        ]
    assert addresses == ["127.0.0.1"]


def test_secrets_in_query_strings_never_reach_the_access_log(
    served: tuple[str, Path, Path],
) -> None:
    url, _var, log_path = served
    marker = "s3cr3t-value-xyz"
    query = f"token={marker}&password={marker}&api_key={marker}&csrf={marker}&page=2"
    httpx.get(f"{url}/health?{query}")
    deadline = time.monotonic() + 10
    while "/health?" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")
    assert marker not in log
    assert "token=***" in log and "page=2" in log
