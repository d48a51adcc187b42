"""Helpers the tests share: talking to the real MariaDB as an administrator, unique names."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARIADB_HOST = os.environ.get("DBKEEP_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("DBKEEP_TEST_MARIADB_PORT", "3306"))
MARIADB_SOCKET = os.environ.get("DBKEEP_TEST_MARIADB_SOCKET", "/run/mysqld/mysqld.sock")
# A dedicated account with a password, so tests can prove the password never leaks.
TEST_USER = "dbkeep_test"
TEST_PASSWORD_FILE = Path(os.environ.get("DBKEEP_TEST_STATE", "/tmp/dbkeep-test-state")) / "pw"
REDIS_URL = os.environ.get("DBKEEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "DBKEEP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432"
)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(5)}"


def admin_sql(sql: str, *, database: str | None = None) -> str:
    """Run SQL as the MariaDB root account over the socket; return tab-separated output."""
    argv = ["mariadb", "--protocol=socket", f"--socket={MARIADB_SOCKET}", "-uroot", "-N", "-B"]
    if database:
        argv.append(f"--database={database}")
    result = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"admin SQL failed: {result.stderr.strip()}")
    return result.stdout


def test_password() -> str:
    """The test account's password, created once per machine state and kept out of argv."""
    TEST_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not TEST_PASSWORD_FILE.exists():
        TEST_PASSWORD_FILE.write_text("pw-" + secrets.token_urlsafe(18))
    return TEST_PASSWORD_FILE.read_text().strip()


def ensure_test_account() -> str:
    password = test_password()
    grants = []
    for host in ("localhost", "127.0.0.1", "%"):
        grants.append(
            f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"ALTER USER '{TEST_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'{host}' WITH GRANT OPTION;"
        )
    admin_sql("".join(grants) + "FLUSH PRIVILEGES;")
    return password


@contextmanager
def mariadb_account(
    prefix: str,
    *,
    on: str = "*.*",
    privileges: str = "ALL PRIVILEGES",
    password_prefix: str = "Pw-",
) -> Iterator[tuple[str, str]]:
    """A MariaDB account of the test's own (user, password), granted ``privileges`` on ``on``,
    with a password no other text contains (so a leak check can search for it); dropped after."""
    user = unique_name(prefix)[:32]
    password = password_prefix + secrets.token_hex(12)
    admin_sql(
        "".join(
            f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';"
            f"GRANT {privileges} ON {on} TO '{user}'@'{host}';"
            for host in ("%", "localhost")
        )
    )
    try:
        yield user, password
    finally:
        admin_sql(f"DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost';")


def account_url(account: tuple[str, str], database: str = "") -> str:
    """A source URL (over TCP) for ``account``, naming ``database`` or none (server-wide)."""
    user, password = account
    return f"mysql://{user}:{password}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"


@contextmanager
def scratch_database(prefix: str = "dbkeep_second") -> Iterator[str]:
    """A database with one table ``t`` holding one row, dropped after."""
    name = unique_name(prefix)
    admin_sql(f"CREATE DATABASE `{name}`")
    try:
        admin_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);", database=name)
        yield name
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


def target_url(database: str, *, user: str = TEST_USER, password: str | None = None) -> str:
    pw = test_password() if password is None else password
    return f"mysql://{user}:{pw}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"


def table_checksums(database: str) -> dict[str, str]:
    """``CHECKSUM TABLE`` of every base table: equal dicts mean equal data."""
    tables = admin_sql(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema='{database}' AND table_type='BASE TABLE' ORDER BY table_name"
    ).split()
    if not tables:
        return {}
    out = admin_sql("CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in tables))
    # Keyed by table name alone, so two databases with the same data compare equal.
    pairs = (line.split("\t")[:2] for line in out.strip().splitlines())
    return {name.split(".", 1)[1]: checksum for name, checksum in pairs}
