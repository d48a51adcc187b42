"""PostgreSQL: dump with ``pg_dump -Fc``, restore with ``pg_restore``, administer with ``psql``.

* Credentials reach the tools through a private passfile (``PGPASSFILE``), never argv or
  ``PGPASSWORD``; where to connect goes in ``PG*`` environment variables, the database as a
  validated ``--dbname`` (a name with no ``=`` can't be read as a connection string).
* The dump is the custom format uncompressed (``-Z0``): dbkeep's pipeline compresses it (zstd in
  a second process beside pg_dump, measured in docs/benchmarks.md). It is complete when pg_dump
  exited 0 *and* ``pg_restore --list`` read the archive's table of contents back, fed from the
  same stream as it went by (pg_restore stops reading once it has the TOC).
* A restore spools the archive to local scratch space (pg_restore needs a seekable file for
  ``-j``), then runs ``pg_restore --clean --if-exists --exit-on-error`` with ``-j N``, or
  ``--single-transaction`` when it runs alone (``-j 1``, and every rollback). The source URL's
  ``?no_owner=true`` / ``?no_privileges=true`` add ``--no-owner`` / ``--no-privileges``: for a
  server where the dump's roles don't exist or the account may not assign them.
* A server newer than every pg_dump here is refused before any work, naming the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engines.base import (
    ConnectionReport,
    DatabaseOptions,
    DbObject,
    DumpVerdict,
    EngineError,
    FailureKind,
    ProgressCallback,
    RunningDump,
    SchemaState,
    TargetSpec,
    ToolStatus,
    validate_database_name,
)
from app.engines.postgres.credentials import (
    passfile,
    plain_env,
    remove_stale_passfiles,
    tool_env,
)
from app.engines.postgres.errors import classify
from app.engines.postgres.inventory import INVENTORY_SQL, parse_inventory, parse_toc
from app.engines.postgres.manifest import PostgresManifestObserver
from app.engines.postgres.target import flag
from app.engines.postgres.tools import (
    ClientSet,
    choose,
    discover,
    missing_message,
    too_old_message,
)
from app.pipeline.codecs import CorruptStream, decoder
from app.pipeline.compression import Compression
from app.pipeline.fdio import fd_io
from app.pipeline.process import DEVNULL, PIPE, Child, ToolNotFound, close_stdin, spawn
from app.pipeline.splice import PipeSource
from app.pipeline.streams import ProgressThrottle, RawStats
from app.storage.base import StorageError

log = logging.getLogger(__name__)

MAGIC = b"PGDMP"
# Never part of a server-wide ("*") source.
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})
# The database admin statements (CREATE/DROP DATABASE, listing) connect to.
MAINTENANCE_DATABASE = "postgres"
DUMP_OPTIONS = ("--format=custom", "--compress=0")
DUMP_PRIVILEGES = ("CONNECT", "USAGE on every schema", "SELECT on every table and sequence")
_ADMIN_TIME_LIMIT = 120.0
_DROP_TIME_LIMIT = 900.0
_LOCALE = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")
_ENCODING = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_CHUNK = 1024 * 1024


def _ident(name: str) -> str:
    return '"' + validate_database_name(name) + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Server:
    version: str  # "15.20"
    version_num: int  # 150020

    @property
    def major(self) -> int:
        return self.version_num // 10000


def build_dump_argv(binary: str, database: str) -> list[str]:
    return [binary, *DUMP_OPTIONS, f"--dbname={validate_database_name(database)}"]


def build_restore_argv(
    binary: str,
    database: str,
    archive: str,
    *,
    jobs: int,
    no_owner: bool = False,
    no_privileges: bool = False,
) -> list[str]:
    argv = [binary, "--clean", "--if-exists", "--exit-on-error"]
    argv += [f"--jobs={jobs}"] if jobs > 1 else ["--single-transaction"]
    if no_owner:
        argv.append("--no-owner")
    if no_privileges:
        argv.append("--no-privileges")
    return [*argv, f"--dbname={validate_database_name(database)}", archive]


class PostgresEngine:
    """The ``DatabaseEngine`` for PostgreSQL servers."""

    name = "postgresql"

    def __init__(
        self,
        *,
        bin_dirs: Sequence[str] | None = None,
        restore_parallelism: int = 1,
        spool_dir: Path | None = None,
    ) -> None:
        # None: the versioned directories (/usr/lib/postgresql/N/bin ...) and PATH.
        self._bin_dirs = bin_dirs
        self._restore_parallelism = max(1, restore_parallelism)
        self._spool_dir = spool_dir

    # ---- tools -----------------------------------------------------------------------------

    async def client_sets(self) -> list[ClientSet]:
        """The installed tools (looked up each time: a package may be installed meanwhile);
        also the moment to sweep passfiles a killed worker could not delete."""
        await asyncio.to_thread(remove_stale_passfiles)
        return await discover(self._bin_dirs)

    async def probe(self) -> ToolStatus:
        sets = await self.client_sets()
        best = choose(sets, None)
        if best is None:
            return ToolStatus(
                ok=False, dump_tool=None, client_tool=None, dump_version=None,
                client_version=None, sandbox_supported=False, message=missing_message(sets),
            )  # fmt: skip
        others = sorted(
            {s.major for s in sets if s.complete and s.major is not None and s.major != best.major}
        )
        message = "ok" if not others else f"ok (also found majors {', '.join(map(str, others))})"
        return ToolStatus(
            ok=True,
            dump_tool="pg_dump",
            client_tool="pg_restore",
            dump_version=best.version,
            client_version=best.version,
            sandbox_supported=True,  # pg_restore runs no shell commands from an archive
            message=message,
        )

    async def _tools_for(
        self, target: TargetSpec, *, dump: bool = True
    ) -> tuple[ClientSet, _Server]:
        """The tools suited to ``target``'s server; ``EngineError`` when none can dump it
        (``dump``; pg_restore and psql only send SQL, an older one serves a newer server)."""
        sets = await self.client_sets()
        any_set = choose(sets, None)
        if any_set is None:
            raise EngineError(missing_message(sets), kind=FailureKind.permanent)
        server = await self._server(target, any_set)
        chosen = choose(sets, server.major)
        assert chosen is not None and chosen.major is not None
        if dump and chosen.major < server.major:
            raise EngineError(too_old_message(chosen, server.major), kind=FailureKind.permanent)
        return chosen, server

    async def _server(self, target: TargetSpec, tools: ClientSet) -> _Server:
        sql = "SELECT current_setting('server_version_num'), current_setting('server_version');"
        out = await self._psql(target, sql, tools=tools)
        for line in out.splitlines():
            num, sep, version = line.partition("|")
            if sep and num.strip().isdigit():
                return _Server(version=version.split()[0], version_num=int(num))
        raise EngineError("the server did not say its version", kind=FailureKind.transient)

    # ---- running the tools -------------------------------------------------------------------

    async def _psql(
        self,
        target: TargetSpec,
        sql: str,
        *,
        tools: ClientSet | None = None,
        database: str | None = None,
        time_limit: float = _ADMIN_TIME_LIMIT,
    ) -> str:
        """Run ``sql`` (built from validated names and literals only) with psql; its stdout."""
        if tools is None:
            sets = await self.client_sets()
            tools = choose(sets, None)
            if tools is None:
                raise EngineError(missing_message(sets), kind=FailureKind.permanent)
        assert tools.psql is not None
        db = validate_database_name(database or target.database)
        argv = [tools.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", f"--dbname={db}"]
        with passfile(target) as path:
            env = tool_env(target, path)
            try:
                code, out, stderr = await _run(argv, env, sql.encode(), time_limit)
            except ToolNotFound:
                raise EngineError(missing_message(await self.client_sets())) from None
            except TimeoutError:
                raise EngineError(
                    f"psql did not answer within {time_limit:.0f} s", kind=FailureKind.transient
                ) from None
        if code != 0:
            raise classify(code, stderr, tool="psql", user=target.user, password=target.password)
        return out.decode("utf-8", errors="replace")

    # ---- dumps -------------------------------------------------------------------------------

    def manifest_observer(self) -> PostgresManifestObserver:
        """A fresh manifest stage for one dump (rows per table from the archive, objects from
        its TOC, the server version)."""
        return PostgresManifestObserver()

    def judge_upload(self, raw: RawStats) -> DumpVerdict:
        """An uploaded archive: the custom format's magic and header (its TOC is read back
        when it is restored)."""
        if not bytes(raw.head).startswith(MAGIC):
            raise EngineError("not a PostgreSQL custom-format archive (pg_dump -Fc)")
        return DumpVerdict(tool_version="pg_dump (custom format)", server_version=None)

    @contextlib.asynccontextmanager
    async def open_dump(self, target: TargetSpec) -> AsyncIterator[RunningDump]:
        """Start ``pg_dump -Fc -Z0`` of ``target``; yield its raw output. Leaving the block
        kills pg_dump (and the TOC reader) if they still run."""
        tools, server = await self._tools_for(target)
        assert tools.pg_dump is not None and tools.pg_restore is not None
        argv = build_dump_argv(tools.pg_dump, target.database)
        with passfile(target) as path:
            env = tool_env(target, path)
            async with fd_io() as io:
                read_end, write_end = io.pipe()
                try:
                    async with (
                        spawn(argv, stdout=write_end, env=env) as child,
                        spawn(
                            [tools.pg_restore, "--list"], stdin=PIPE, stdout=PIPE, env=env
                        ) as lister,
                    ):
                        io.close(write_end)
                        dump = _PostgresDump(
                            PipeSource(io, read_end), child, lister, tools, server, target
                        )
                        try:
                            yield dump
                        finally:
                            dump.stop_listing()
                except ToolNotFound:
                    raise EngineError(missing_message(await self.client_sets())) from None

    # ---- restores ----------------------------------------------------------------------------

    async def restore(
        self,
        target: TargetSpec,
        source: AsyncIterator[bytes],
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
        single_stream: bool = False,
    ) -> None:
        """Spool the archive to local scratch space, then ``pg_restore`` it into ``target``
        (``-j N``, or ``--single-transaction`` alone); ``EngineError`` with the server's reason."""
        tools, _server = await self._tools_for(target, dump=False)
        assert tools.pg_restore is not None
        jobs = 1 if single_stream else self._restore_parallelism
        spool_root = self._spool_dir or Path(tempfile.gettempdir())
        spool_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory = tempfile.mkdtemp(prefix="dbkeep-pg-restore-", dir=spool_root)
        try:
            archive = os.path.join(directory, "archive.dump")
            await _spool(source, archive, compression=compression, on_progress=on_progress)
            argv = build_restore_argv(
                tools.pg_restore,
                target.database,
                archive,
                jobs=jobs,
                no_owner=flag(target, "no_owner"),
                no_privileges=flag(target, "no_privileges"),
            )
            with passfile(target) as path:
                env = tool_env(target, path)
                try:
                    async with spawn(argv, stdin=DEVNULL, stdout=DEVNULL, env=env) as child:
                        code = await child.wait()
                        stderr = child.stderr_tail.text()
                except ToolNotFound:
                    raise EngineError(missing_message(await self.client_sets())) from None
            if code != 0:
                stderr = stderr.replace(directory, "<spool>")
                raise classify(
                    code, stderr, tool="pg_restore", user=target.user, password=target.password
                )
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, True)

    async def declared_objects(
        self, source: AsyncIterator[bytes], *, compression: Compression
    ) -> set[DbObject]:
        """The objects the archive creates, from its table of contents (read to its end)."""
        sets = await self.client_sets()
        tools = choose(sets, None)
        if tools is None or tools.pg_restore is None:
            raise EngineError(missing_message(sets))
        try:
            async with (
                decoder(compression)(source) as raw,
                spawn(
                    [tools.pg_restore, "--list"], stdin=PIPE, stdout=PIPE,
                    env=plain_env(),
                ) as lister,
            ):  # fmt: skip
                reader = asyncio.create_task(lister.stdout.read())
                feeding = True
                async for chunk in raw:
                    if feeding:
                        feeding = await _feed(lister, chunk)
                await close_stdin(lister)
                listing = await reader
                code = await lister.wait()
        except CorruptStream as exc:
            raise EngineError(f"the backup file is damaged ({exc})") from None
        except StorageError as exc:
            raise EngineError(exc.message) from None
        if code != 0:
            raise EngineError(
                "the backup is not a readable PostgreSQL archive: pg_restore could not read "
                "its table of contents"
            )
        return parse_toc(listing.decode("utf-8", errors="replace"))

    # ---- databases ---------------------------------------------------------------------------

    async def _exists(self, target: TargetSpec) -> bool:
        out = await self._psql(
            target,
            # a validated name, quoted as a literal
            f"SELECT 1 FROM pg_catalog.pg_database WHERE datname = {_literal(target.database)};",  # noqa: S608
            database=MAINTENANCE_DATABASE,
        )
        return out.strip() == "1"

    async def inspect(self, target: TargetSpec) -> SchemaState:
        """The database's encoding and locale, and every object in it (None if it is absent)."""
        if not await self._exists(target):
            return SchemaState(options=None, objects=frozenset())
        out = await self._psql(target, INVENTORY_SQL)
        try:
            database, objects = parse_inventory(out)
        except (ValueError, KeyError, TypeError):
            raise EngineError("the server's list of objects could not be read") from None
        options = None
        if database is not None:
            collation = database["collate"]
            if database["ctype"] != collation:
                collation = f"{collation};{database['ctype']}"
            options = DatabaseOptions(character_set=database["encoding"], collation=collation)
        return SchemaState(options=options, objects=frozenset(objects))

    async def recreate_database(
        self, target: TargetSpec, *, options: DatabaseOptions | None = None
    ) -> None:
        """Drop ``target.database`` (closing its sessions) and create it empty from template0,
        with ``options``' encoding and locale (the server's defaults without)."""
        create = f"CREATE DATABASE {_ident(target.database)} TEMPLATE template0"
        if options is not None:
            collate, _, ctype = options.collation.partition(";")
            ctype = ctype or collate
            if not (
                _ENCODING.match(options.character_set)
                and _LOCALE.match(collate)
                and _LOCALE.match(ctype)
            ):
                raise EngineError(f"unexpected encoding {options.character_set!r} or locale")
            create += (
                f" ENCODING {_literal(options.character_set)}"
                f" LC_COLLATE {_literal(collate)} LC_CTYPE {_literal(ctype)}"
            )
        await self._psql(
            target,
            f"{await self._drop_sql(target)}\n{create};\n",
            database=MAINTENANCE_DATABASE,
            time_limit=_DROP_TIME_LIMIT,
        )

    async def _drop_sql(self, target: TargetSpec) -> str:
        """DROP DATABASE, closing the database's sessions first (``WITH (FORCE)``, PG >= 13)."""
        _tools, server = await self._tools_for(
            target.with_database(MAINTENANCE_DATABASE), dump=False
        )
        force = " WITH (FORCE)" if server.major >= 13 else ""
        return f"DROP DATABASE IF EXISTS {_ident(target.database)}{force};"

    async def drop_database(self, target: TargetSpec) -> None:
        await self._psql(
            target, await self._drop_sql(target), database=MAINTENANCE_DATABASE,
            time_limit=_DROP_TIME_LIMIT,
        )  # fmt: skip

    async def count_rows(self, target: TargetSpec) -> dict[str, int]:
        """The exact number of rows (``count(*)``) of every table of ``target.database`` that
        holds rows (partitions, not their parents), keyed ``schema.table`` as the manifest is."""
        out = await self._psql(target, _COUNT_ROWS_SQL, time_limit=_DROP_TIME_LIMIT)
        try:
            return {str(name): int(rows) for name, rows in _json_line(out)}
        except (ValueError, TypeError):
            raise EngineError("the server's row counts could not be read") from None

    async def count_objects(self, target: TargetSpec) -> dict[str, int]:
        """The objects of ``target.database`` by the manifest's kinds (extension members left
        out: pg_dump dumps the extension, not them)."""
        out = await self._psql(target, _COUNT_OBJECTS_SQL)
        try:
            return {str(kind): int(count) for kind, count in _json_line(out)}
        except (ValueError, TypeError):
            raise EngineError("the server's list of objects could not be read") from None

    async def estimate_size(self, target: TargetSpec) -> int | None:
        try:
            out = await self._psql(
                target, "SELECT pg_catalog.pg_database_size(pg_catalog.current_database());"
            )
            return int(out.strip().splitlines()[-1])
        except (EngineError, ValueError, IndexError) as exc:
            log.warning("estimate_size failed: %s", getattr(exc, "message", exc))
            return None

    async def list_databases(self, target: TargetSpec) -> list[str]:
        """Every database the account may connect to, system ones left out, sorted."""
        out = await self._psql(
            target,
            "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate "
            "AND has_database_privilege(datname, 'CONNECT') ORDER BY datname;",
        )
        names = [line for line in out.splitlines() if line]
        return [name for name in names if name not in SYSTEM_DATABASES]

    async def check_connection(self, target: TargetSpec) -> ConnectionReport:
        """Connect as the source's account: the server version, the tools chosen for it, what
        the account may not read in ``target.database``, the databases it sees."""
        try:
            tools, server = await self._tools_for(target)
            out = await self._psql(target, _PRIVILEGES_SQL, tools=tools)
            databases = await self.list_databases(target)
        except EngineError as exc:
            return ConnectionReport(ok=False, message=exc.message)
        missing: list[str] = []
        for line in out.splitlines():
            what, sep, count = line.partition("|")
            if sep and count.strip().isdigit() and int(count) > 0:
                missing.append(f"{what} ({count.strip()})")
        message = f"ok: {tools.version} for PostgreSQL {server.version}"
        if missing:
            message = (
                f"the account lacks {', '.join(missing)} on {target.database}; a dump needs "
                f"{', '.join(DUMP_PRIVILEGES)} (GRANT USAGE ON SCHEMA ..., GRANT SELECT ON ALL "
                "TABLES IN SCHEMA ..., or the pg_read_all_data role)"
            )
        return ConnectionReport(
            ok=not missing,
            message=message,
            server_version=server.version,
            databases=tuple(databases),
            missing_privileges=tuple(missing),
            required_privileges=DUMP_PRIVILEGES,
        )


# What a dump reads and the account may not (counts per kind; 0 everywhere when it may).
_PRIVILEGES_SQL = r"""
SELECT 'USAGE on schemas', count(*) FROM pg_catalog.pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND NOT has_schema_privilege(n.oid, 'USAGE');
SELECT 'SELECT on tables', count(*) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%' AND NOT has_table_privilege(c.oid, 'SELECT');
SELECT 'SELECT on sequences', count(*) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%'
   AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(c.oid, 'SELECT') END;
"""


_USER_NAMESPACES = r"""
    SELECT oid FROM pg_catalog.pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
"""
_NOT_EXTENSION_MEMBER = """NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = '{catalog}'::regclass AND d.objid = {oid} AND d.deptype = 'e')"""
# One count(*) per table, run by the server (query_to_xml), answered as one JSON line.
_COUNT_ROWS_SQL = rf"""
SET search_path = '';
SELECT COALESCE(json_agg(json_build_array(n.nspname || '.' || c.relname,
    (xpath('/row/c/text()', query_to_xml(
        format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')
    ))[1]::text::bigint)), '[]')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.oid IN ({_USER_NAMESPACES})
  -- an extension's tables are its own, but for its configuration tables (pg_dump dumps those)
  AND ({_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")}
       OR c.oid IN (SELECT unnest(extconfig) FROM pg_catalog.pg_extension));
"""  # noqa: S608 (built from constants only)
_COUNT_OBJECTS_SQL = rf"""
SET search_path = '';
SELECT COALESCE(json_agg(json_build_array(kind, n)), '[]') FROM (
  SELECT kind, count(*) AS n FROM (
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
           ELSE 'sequence' END AS kind
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('v', 'm', 'S') AND c.relnamespace IN ({_USER_NAMESPACES})
      AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")}
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END
    FROM pg_catalog.pg_proc p
    WHERE p.prokind IN ('f', 'p', 'w') AND p.pronamespace IN ({_USER_NAMESPACES})
      AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_proc", oid="p.oid")}
    UNION ALL
    SELECT 'trigger' FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal AND c.relnamespace IN ({_USER_NAMESPACES})
      AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")}
    UNION ALL
    SELECT 'type' FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
    WHERE t.typtype IN ('b', 'c', 'e', 'r') AND (t.typrelid = 0 OR c.relkind = 'c')
      AND NOT (t.typelem <> 0 AND t.typlen = -1 AND t.typcategory = 'A')
      AND t.typnamespace IN ({_USER_NAMESPACES})
      AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_type", oid="t.oid")}
  ) objects GROUP BY kind
) kinds;
"""  # noqa: S608 (built from constants only)


def _json_line(out: str) -> list[list[Any]]:
    """The JSON array psql -At printed (its last line starting with ``[``)."""
    lines = [line for line in out.splitlines() if line.startswith("[")]
    if not lines:
        raise ValueError("no answer")
    value = json.loads(lines[-1])
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


class _PostgresDump:
    """A running dump: its raw output (fed to the TOC reader on its way), then the verdict."""

    def __init__(
        self,
        pipe: PipeSource,
        child: Child,
        lister: Child,
        tools: ClientSet,
        server: _Server,
        target: TargetSpec,
    ) -> None:
        self._pipe = pipe
        self._child = child
        self._lister = lister
        self._tools = tools
        self._server = server
        self._target = target
        self._feeding = True
        self._listing = asyncio.create_task(lister.stdout.read())
        self.source: PipeSource | AsyncIterator[bytes] = self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._pipe.io.chunks(self._pipe.fd):
            if self._feeding:
                self._feeding = await _feed(self._lister, chunk)
            yield chunk

    def stop_listing(self) -> None:
        if not self._listing.done():
            self._listing.cancel()

    async def finish(self, raw: RawStats) -> DumpVerdict:
        """Complete: pg_dump exited 0 and pg_restore read the archive's TOC back."""
        code = await self._child.wait()
        if code != 0:
            raise classify(
                code,
                self._child.stderr_tail.text(),
                tool="pg_dump",
                user=self._target.user,
                password=self._target.password,
            )
        await close_stdin(self._lister)
        try:
            async with asyncio.timeout(60):
                listing = await self._listing
                listed = await self._lister.wait()
        except TimeoutError:
            listed, listing = -1, b""
        if listed != 0 or not bytes(raw.head).startswith(MAGIC) or b"TOC Entries:" not in listing:
            raise EngineError(
                "incomplete dump: pg_restore could not read the archive's table of contents back",
                kind=FailureKind.permanent,
            )
        return DumpVerdict(
            tool_version=self._tools.version or "pg_dump",
            server_version=self._server.version,
        )


async def _feed(child: Child, chunk: bytes) -> bool:
    """Write ``chunk`` to the child's stdin; False once it stopped reading."""
    stdin = child.proc.stdin
    if stdin is None or stdin.is_closing() or child.proc.returncode is not None:
        return False
    try:
        stdin.write(chunk)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


async def _spool(
    source: AsyncIterator[bytes],
    path: str,
    *,
    compression: Compression,
    on_progress: ProgressCallback | None,
) -> None:
    """Decompress ``source`` into the file ``path`` (0600), reporting the bytes written."""
    progress = ProgressThrottle(on_progress)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    total = 0
    first = True
    try:
        async with decoder(compression)(source) as raw:
            async for chunk in raw:
                if first:
                    if not chunk.startswith(MAGIC[: len(chunk)]):
                        raise EngineError(
                            "the backup is not a PostgreSQL custom-format archive; nothing was "
                            "loaded"
                        )
                    first = False
                await asyncio.to_thread(_write_all, fd, chunk)
                total += len(chunk)
                await progress.update(total)
    except CorruptStream as exc:
        raise EngineError(
            f"the backup file is damaged ({exc}); nothing was loaded", kind=FailureKind.permanent
        ) from None
    except FileNotFoundError:
        raise EngineError("the backup file is missing") from None
    except StorageError as exc:
        raise EngineError(exc.message) from None
    finally:
        os.close(fd)
    if total == 0:
        raise EngineError("the backup is empty; nothing was loaded")
    if on_progress is not None:
        with contextlib.suppress(Exception):
            await on_progress(total)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _run(
    argv: Sequence[str], env: Mapping[str, str], input_bytes: bytes, time_limit: float
) -> tuple[int, bytes, str]:
    async with spawn(argv, stdin=PIPE, stdout=PIPE, env=env) as child:
        async with asyncio.timeout(time_limit):

            async def write() -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    child.stdin.write(input_bytes)
                    await child.stdin.drain()
                await close_stdin(child)

            out, _ = await asyncio.gather(child.stdout.read(), write())
            code = await child.wait()
        return code, out, child.stderr_tail.text()
