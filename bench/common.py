"""What the benchmark scripts share: the MariaDB server they talk to, and a bench account.

The administrator (schema creation, checksums) is root over the Unix socket, as in the tests. The
dump and restore tools being measured — dbkeep and the plain tools alike — connect as a dedicated
``dbkeep_bench`` account with a password over TCP, like a real deployment; its password lives in
a 0600 file and reaches the plain tools through a 0600 ``--defaults-extra-file``.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOCKET = os.environ.get("DBKEEP_BENCH_SOCKET", "/run/mysqld/mysqld.sock")
HOST = os.environ.get("DBKEEP_BENCH_HOST", "127.0.0.1")
PORT = int(os.environ.get("DBKEEP_BENCH_PORT", "3306"))
STATE_DIR = Path(os.environ.get("DBKEEP_BENCH_STATE", "/tmp/dbkeep-bench-state"))
BENCH_USER = "dbkeep_bench"
DATABASE_PREFIX = "dbkeep_bench_"
_NAME = re.compile(r"^dbkeep_bench_[A-Za-z0-9_]{1,40}$")


def check_database_name(name: str) -> str:
    """Benchmarks only ever touch databases named ``dbkeep_bench_*``."""
    if not _NAME.match(name):
        raise SystemExit(f"database name must match {_NAME.pattern}: {name!r}")
    return name


def admin_sql(sql: str, *, database: str | None = None, timeout: float = 3600) -> str:
    """Run SQL as root over the socket; return the tab-separated output."""
    argv = ["mariadb", "--protocol=socket", f"--socket={SOCKET}", "-uroot", "-N", "-B"]
    if database:
        argv.append(f"--database={database}")
    result = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"admin SQL failed: {result.stderr.strip()[:500]}")
    return result.stdout


def private_dir() -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    STATE_DIR.chmod(0o700)
    return STATE_DIR


def bench_password() -> str:
    """The bench account's password, made once per machine state, kept out of argv."""
    path = private_dir() / "password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("bench-" + secrets.token_urlsafe(18))
    return path.read_text().strip()


def ensure_bench_account() -> str:
    """Create (or refresh) the ``dbkeep_bench`` account; return its password."""
    password = bench_password()
    statements = []
    for host in ("localhost", "127.0.0.1", "::1"):
        statements.append(
            f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"ALTER USER '{BENCH_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"GRANT ALL PRIVILEGES ON `dbkeep\\_bench\\_%`.* TO '{BENCH_USER}'@'{host}';"
            # Dumping routine bodies reads mysql.proc; restoring objects whose definer is
            # root (the generator's) needs SET USER.
            f"GRANT SELECT ON mysql.proc TO '{BENCH_USER}'@'{host}';"
            f"GRANT SET USER ON *.* TO '{BENCH_USER}'@'{host}';"
        )
    admin_sql("".join(statements))
    return password


@dataclass(frozen=True)
class BenchTarget:
    database: str
    password: str

    def url(self) -> str:
        """The ``DBKEEP_TARGET_URL`` dbkeep is given."""
        return f"mysql://{BENCH_USER}:{self.password}@{HOST}:{PORT}/{self.database}"

    def defaults_file(self) -> Path:
        """A 0600 option file giving the plain tools the same account and transport."""
        path = private_dir() / "client.cnf"
        text = (
            "[client]\n"
            f'user="{BENCH_USER}"\n'
            f'password="{self.password}"\n'
            f'host="{HOST}"\nport={PORT}\nprotocol=TCP\n'
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path


def table_checksums(database: str) -> dict[str, str]:
    """``CHECKSUM TABLE`` of every base table (a content hash for tables with virtual columns).

    MariaDB 10.11's CHECKSUM TABLE of a table with a VIRTUAL column is not stable: it changes
    after ``FLUSH TABLES`` on the very same data. Those tables get an order-independent hash of
    every column's value instead.
    """
    tables = admin_sql(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema='{database}' AND table_type='BASE TABLE' ORDER BY table_name"
    ).split()
    if not tables:
        return {}
    virtual = set(
        admin_sql(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            f"WHERE table_schema='{database}' AND extra LIKE '%VIRTUAL%'"
        ).split()
    )
    plain = [t for t in tables if t not in virtual]
    found: dict[str, str] = {}
    if plain:
        out = admin_sql("CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in plain))
        for line in out.strip().splitlines():
            name, value = line.split("\t")[:2]
            found[name.split(".", 1)[1]] = value
    for table in sorted(virtual):
        found[table] = _content_hash(database, table)
    return found


def _content_hash(database: str, table: str) -> str:
    columns = admin_sql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema='{database}' AND table_name='{table}' ORDER BY ordinal_position"
    ).split()
    # CONCAT_WS skips NULLs: the ISNULL() flags keep NULL and '' apart.
    row = ", ".join(f"HEX(`{c}`), ISNULL(`{c}`)" for c in columns)
    return admin_sql(
        f"SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS(0x1f, {row}))), 0), ':', "
        f"COALESCE(BIT_XOR(CRC32(CONCAT_WS(0x1e, {row}))), 0)) FROM `{database}`.`{table}`"
    ).strip()


def schema_objects(database: str) -> dict[str, str]:
    """Routines, views, triggers and events with their definitions, for equality checks."""
    queries = {
        "routine": "SELECT CONCAT(routine_type, ' ', routine_name), routine_definition "
        f"FROM information_schema.routines WHERE routine_schema='{database}'",
        "view": "SELECT table_name, view_definition FROM information_schema.views "
        f"WHERE table_schema='{database}'",
        "trigger": "SELECT trigger_name, CONCAT(event_object_table, ' ', action_timing, ' ', "
        "event_manipulation, ' ', action_statement) FROM information_schema.triggers "
        f"WHERE trigger_schema='{database}'",
        "event": "SELECT event_name, CONCAT(event_definition, ' ', status, ' ', "
        "IFNULL(interval_value, ''), IFNULL(interval_field, '')) "
        f"FROM information_schema.events WHERE event_schema='{database}'",
    }
    found: dict[str, str] = {}
    for kind, query in queries.items():
        for line in admin_sql(query).splitlines():
            name, _, definition = line.partition("\t")
            # Views name their own schema in the definition: compare them schema-free.
            found[f"{kind} {name}"] = definition.replace(f"`{database}`.", "")
    return found


def fingerprint(database: str) -> dict[str, str]:
    """Everything a restore must reproduce: table checksums and schema objects."""
    found = {f"table {name}": value for name, value in table_checksums(database).items()}
    found.update(schema_objects(database))
    return found


def recreate_database(database: str) -> None:
    check_database_name(database)
    admin_sql(
        f"DROP DATABASE IF EXISTS `{database}`; "
        f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )


def drop_database(database: str) -> None:
    check_database_name(database)
    admin_sql(f"DROP DATABASE IF EXISTS `{database}`")
