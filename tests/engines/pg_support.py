"""PostgreSQL test helpers: the local server (127.0.0.1:5432, trust) as an administrator, a
fingerprint that compares two databases exactly, and a private password-checking server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_HOST = os.environ.get("DBKEEP_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DBKEEP_TEST_PG_PORT", "5432"))
FIXTURE = Path(__file__).with_name("pg_fixture.sql")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_url(database: str, *, user: str = "postgres", password: str = "", query: str = "") -> str:
    auth = f"{user}:{password}" if password else user
    tail = f"?{query}" if query else ""
    return f"postgresql://{auth}@{PG_HOST}:{PG_PORT}/{database}{tail}"


def pg_sql(
    sql: str, *, database: str = "postgres", host: str = PG_HOST, port: int = PG_PORT
) -> str:
    """Run SQL as the postgres superuser; psql -At output."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
         "-U", "postgres", "-d", database],
        input=sql, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PGCLIENTENCODING": "UTF8"},
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout


def create_database(name: str, **where: object) -> None:
    pg_sql(f'CREATE DATABASE "{name}"', **where)  # type: ignore[arg-type]


def drop_database(name: str, **where: object) -> None:
    pg_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', **where)  # type: ignore[arg-type]


def load_fixture(name: str, **where: object) -> None:
    pg_sql(FIXTURE.read_text(), database=name, **where)  # type: ignore[arg-type]


_TABLES = r"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1
"""
_SEQUENCES = r"""
SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1
"""
_COUNTS = r"""
SELECT kind, count(*) FROM (
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
         WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
         WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index' ELSE c.relkind::text END AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  UNION ALL SELECT 'schema' FROM pg_namespace
   WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'
  UNION ALL SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
  UNION ALL SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'trigger' FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'constraint ' || contype::text FROM pg_constraint c
   JOIN pg_namespace n ON n.oid = c.connamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'enum label' FROM pg_enum
  UNION ALL SELECT 'type ' || typtype::text FROM pg_type t
   JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  UNION ALL SELECT 'large object' FROM pg_largeobject_metadata
  UNION ALL SELECT 'comment' FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
) k GROUP BY kind ORDER BY kind
"""
_DEFINITIONS = r"""
SELECT 'view ' || format('%I.%I', schemaname, viewname) || ': ' || md5(definition)
  FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'matview ' || matviewname || ': ' || md5(definition) FROM pg_matviews
UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ': ' || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p')
UNION ALL SELECT 'trigger ' || tgname || ': ' || md5(pg_get_triggerdef(oid))
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'enum ' || enumtypid::regtype::text || ': '
  || string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum GROUP BY enumtypid
UNION ALL SELECT 'index ' || indexrelid::regclass::text || ': ' || md5(pg_get_indexdef(indexrelid))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
UNION ALL SELECT 'lo ' || oid || ': ' || md5(lo_get(oid)) FROM pg_largeobject_metadata
ORDER BY 1
"""


def fingerprint(database: str, **where: object) -> dict[str, object]:
    """Per-table ordered md5 of the rows, each sequence's last_value and is_called, the objects
    counted by kind, and each definition's md5: equal fingerprints mean equal databases."""

    def run(sql: str) -> list[str]:
        out = pg_sql("SET search_path = public;\n" + sql, database=database, **where)  # type: ignore[arg-type]
        return [line for line in out.splitlines() if line]

    tables = {}
    for table in run(_TABLES):
        (digest,) = run(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
            f"|| ' ' || count(*) FROM {table} t"
        )
        tables[table] = digest
    sequences = {seq: run(f"SELECT last_value, is_called FROM {seq}")[0] for seq in run(_SEQUENCES)}
    return {
        "tables": tables,
        "sequences": sequences,
        "counts": run(_COUNTS),
        "definitions": run(_DEFINITIONS),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateServer:
    """A PostgreSQL server of this test run only, checking passwords (scram-sha-256)."""

    port: int
    data: Path
    host: str = "127.0.0.1"

    def sql(self, sql: str, database: str = "postgres") -> str:
        return pg_sql(sql, database=database, host=self.socket_dir, port=self.port)

    @property
    def socket_dir(self) -> str:
        return str(self.data)

    def stop(self) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])


def _as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + argv, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    """initdb + start on a free port: local connections trusted (to set up), TCP by password."""
    if not (PG_BIN / "initdb").exists() or (os.geteuid() == 0 and not shutil.which("runuser")):
        import pytest

        pytest.skip("no initdb/runuser to start a private PostgreSQL server")
    root = Path(tempfile.mkdtemp(prefix="dbkeep-pgsrv-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    done = _as_postgres(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    server = PrivateServer(port=free_port(), data=data)
    options = f"-p {server.port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = _as_postgres(
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
         str(data / "log"), "start"]
    )  # fmt: skip
    if started.returncode != 0:
        raise RuntimeError(started.stderr + started.stdout)
    try:
        for _ in range(50):
            with contextlib.suppress(RuntimeError):
                server.sql("SELECT 1")
                break
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---- fixtures (imported by the test modules) ----------------------------------------------------

import pytest  # noqa: E402

from app.engines.base import TargetSpec  # noqa: E402
from app.engines.postgres import PostgresEngine  # noqa: E402
from app.storage.local import LocalStorage  # noqa: E402
from tests import support  # noqa: E402


@pytest.fixture
def pg_engine(tmp_path: Path) -> PostgresEngine:
    return PostgresEngine(restore_parallelism=2, spool_dir=tmp_path / "spool")


@pytest.fixture
def pg_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups")


@pytest.fixture
def pg_names() -> Iterator[list[str]]:
    """Databases a test creates by name; every one is dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        drop_database(name)


@pytest.fixture
def pg_source(pg_names: list[str]) -> str:
    """A database with every hard case of pg_fixture.sql."""
    name = support.unique_name("dbkeep_pg")
    pg_names.append(name)
    create_database(name)
    load_fixture(name)
    return name


def target(database: str, **kwargs: str) -> TargetSpec:
    return TargetSpec.from_url(pg_url(database, **kwargs))


def live_children(program: str) -> list[int]:
    """This process's living descendants running ``program`` (zombies are dead)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and program in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found
