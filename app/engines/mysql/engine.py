"""MySQL/MariaDB: dump with mariadb-dump/mysqldump, restore and recreate with the mariadb client.

Credentials reach the tools only through a private option file passed as the first argument; the
database name is validated and placed after ``--`` so it can never be read as an option.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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
from app.engines.mysql.credentials import (
    defaults_argument,
    defaults_file,
    remove_stale_defaults_files,
)
from app.engines.mysql.errors import classify
from app.engines.mysql.inventory import (
    declared_objects,
    inventory_sql,
    parse_inventory,
    unescape_batch,
)
from app.engines.mysql.manifest import MySQLManifestObserver
from app.engines.mysql.tools import ClientTools, detect
from app.pipeline.codecs import CorruptStream
from app.pipeline.compression import Compression
from app.pipeline.fdio import fd_io
from app.pipeline.process import (
    DEVNULL,
    PIPE,
    Child,
    ToolNotFound,
    close_stdin,
    run_capture,
    spawn,
)
from app.pipeline.splice import PipeSource
from app.pipeline.streams import DUMP_TRAILER, RawStats, load_dump
from app.storage.base import StorageError

log = logging.getLogger(__name__)

# The header's first comment names the tool: "-- MariaDB dump 10.19-11.4.2-MariaDB, for ...".
_DUMP_TOOL_LINE = re.compile(r"^-- ((?:MariaDB|MySQL) dump .*)$", re.MULTILINE)

# Chosen so that what the server accepted restores:
# * no --hex-blob: it doubles every binary value, so a row of more than half the server's
#   max_allowed_packet could not be inserted again; binary strings are escaped byte-exactly
#   without it (the dump and the restore both talk utf8mb4; escapes are single bytes);
# * --skip-add-locks: LOCK TABLES around a table's rows fails (1100) when a column's DEFAULT
#   is NEXTVAL() of a sequence, which LOCK TABLES did not name;
# * --dump-history (added when the tools and server support it, see ``_dump_history``): the
#   rows of system-versioned tables' history, with their row_start/row_end.
DUMP_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    "--skip-add-locks",
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1G",
)
# What mariadb-dump with DUMP_OPTIONS reads: rows, views' definitions, triggers, events (the
# routines come with SELECT on MariaDB).
DUMP_PRIVILEGES = ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT")
# Never part of a server-wide ("*") source.
SYSTEM_DATABASES = frozenset({"information_schema", "performance_schema", "mysql", "sys"})
# The connected account's rows in information_schema's privilege tables (GRANTEE is quoted).
_MINE = (
    "WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
)
CLIENT_OPTIONS = ("--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--batch")
_ADMIN_TIME_LIMIT = 120.0
# Dropping a big database deletes its files: allow longer than a query.
_DROP_TIME_LIMIT = 900.0
# A DROP DATABASE waiting on another session's metadata lock gives up instead of hanging on.
_LOCK_WAIT_SECONDS = 60
_CHARSET_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# The row size check (``_oversized_rows``): each table's query may run this long on the server;
# after the dump ends, its answer is awaited this much longer at most.
_PACKET_CHECK_SECONDS = 300
_PACKET_CHECK_GRACE = 60.0
# INSERT INTO `t` VALUES (...); and the row's other columns, roughly.
_ROW_OVERHEAD = 64 * 1024
# The bytes mysqldump escapes with a backslash in a string (mysql_real_escape_string), as a
# PCRE class in an SQL literal.
_ESCAPED = r"""'[\\x00\\n\\r\\x1a"''\\\\]'"""
_SIZE_QUERY = "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables"


def build_dump_argv(
    binary: str,
    defaults_path: str,
    database: str,
    *,
    flavour: str = "mariadb",
    dump_history: bool = False,
) -> list[str]:
    """The dump command: option file first, fixed options, ``--``, then the validated name."""
    argv = [binary, defaults_argument(defaults_path), *DUMP_OPTIONS]
    if dump_history:
        argv.append("--dump-history")
    if flavour == "mysql":
        # MySQL >= 8.0.21 needs PROCESS for tablespace info that single-database dumps don't use.
        argv.append("--no-tablespaces")
    return [*argv, "--", validate_database_name(database)]


def build_client_argv(
    binary: str,
    defaults_path: str,
    *,
    database: str | None = None,
    sandbox: bool,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The client command; ``--sandbox`` refuses ``\\!`` shell lines hidden in a dump."""
    argv = [binary, defaults_argument(defaults_path)]
    if sandbox:
        argv.append("--sandbox")
    argv += [*CLIENT_OPTIONS, *extra]
    if database is not None:
        argv += ["--", validate_database_name(database)]
    return argv


def _quoted(database: str) -> str:
    return f"`{validate_database_name(database)}`"


@contextlib.contextmanager
def _client_failures(tools: ClientTools, tool: str, time_limit: float) -> Iterator[None]:
    """Turn a missing client or one that did not answer in time into an ``EngineError``."""
    try:
        yield
    except ToolNotFound:
        raise EngineError(tools.missing_client_message()) from None
    except TimeoutError:
        raise EngineError(
            f"{tool} did not answer within {time_limit:.0f} s", kind=FailureKind.transient
        ) from None


class MySQLEngine:
    """The ``DatabaseEngine`` for MySQL and MariaDB servers."""

    name = "mysql"

    def __init__(
        self,
        *,
        dump_binary: str | None = None,
        client_binary: str | None = None,
        restore_parallelism: int = 1,
        spool_dir: Path | None = None,
    ) -> None:
        self._dump_binary = dump_binary
        self._client_binary = client_binary
        # Above 1, restores load tables in that many sessions (app.engines.mysql.parallel),
        # spooling the dump under ``spool_dir``.
        self._restore_parallelism = restore_parallelism
        self._spool_dir = spool_dir

    async def tools(self) -> ClientTools:
        """The installed tools (looked up each time: a package may be installed meanwhile)."""
        # Also the moment to sweep option files a killed worker could not delete.
        await asyncio.to_thread(remove_stale_defaults_files)
        return await detect(self._dump_binary, self._client_binary)

    async def probe(self) -> ToolStatus:
        """Which dump/restore tools are installed and usable, and what is missing."""
        tools = await self.tools()
        missing = []
        if tools.dump is None:
            missing.append(tools.dump_name)
        if tools.client is None:
            missing.append(tools.client_name)
        if missing:
            message = (
                " and ".join(missing) + " not found: install with apt-get install mariadb-client"
            )
        elif not tools.sandbox:
            message = "ok, but the client has no --sandbox (MariaDB >= 10.5.25 or 10.6.18 has it)"
        else:
            message = "ok"
        return ToolStatus(
            ok=not missing,
            dump_tool=os.path.basename(tools.dump) if tools.dump else None,
            client_tool=os.path.basename(tools.client) if tools.client else None,
            dump_version=tools.dump_version,
            client_version=tools.client_version,
            sandbox_supported=tools.sandbox,
            message=message,
        )

    def manifest_observer(self) -> MySQLManifestObserver:
        """A fresh manifest stage for one dump (rows per table, objects, server version)."""
        return MySQLManifestObserver()

    def judge_upload(self, raw: RawStats) -> DumpVerdict:
        """Complete means what it means for a dump taken here: the dump tool's completion line
        is its last non-empty line (a dump cut short, or edited after, has none)."""
        if not raw.has_trailer():
            raise EngineError(
                "incomplete dump: its last line is not the dump tool's completion line "
                f"({DUMP_TRAILER!r})",
                kind=FailureKind.permanent,
            )
        match = _DUMP_TOOL_LINE.search(raw.head.decode("utf-8", errors="replace"))
        return DumpVerdict(
            tool_version=match.group(1).strip() if match else "",
            server_version=raw.server_version(),
        )

    @contextlib.asynccontextmanager
    async def open_dump(self, target: TargetSpec) -> AsyncIterator[RunningDump]:
        """Start ``mariadb-dump`` (or ``mysqldump``) of ``target``; yield its raw output.

        Leaving the block kills the dump's process group if it still runs. ``finish`` waits for
        it and raises ``EngineError`` unless the dump is complete.
        """
        tools = await self.tools()
        if tools.dump is None:
            raise EngineError(tools.missing_dump_message(), kind=FailureKind.permanent)
        history = await self._dump_history(target, tools)
        # Read beside the dump: whether every row, as dumped, fits the server's packet limit.
        check = asyncio.create_task(self._oversized_rows(target))
        try:
            with defaults_file(target) as defaults:
                argv = build_dump_argv(
                    tools.dump, defaults, target.database, flavour=tools.flavour,
                    dump_history=history,
                )  # fmt: skip
                # Nesting order matters: the dump is dead (spawn exited) before fd_io joins
                # its threads.
                async with fd_io() as io:
                    read_end, write_end = io.pipe()
                    try:
                        async with spawn(argv, stdout=write_end) as child:
                            io.close(write_end)
                            yield _MySQLDump(PipeSource(io, read_end), child, tools, target, check)
                    except ToolNotFound:  # raised by spawn itself, before the yield
                        raise EngineError(tools.missing_dump_message()) from None
        finally:
            if not check.done():
                check.cancel()
            with contextlib.suppress(asyncio.CancelledError, EngineError):
                await check

    async def _oversized_rows(self, target: TargetSpec) -> str | None:
        """A warning when a row, as the dump writes it, is over the server's max_allowed_packet:
        that dump restores only into a server whose limit is raised, so it is said now, not on
        the day of the restore. None when every row fits or the check can't run.

        Only tables with a column that can hold half the limit are read (MEDIUM/LONG BLOB/TEXT):
        a smaller row can't reach the limit even with every byte escaped. Each table's query is
        stopped by the server after ``_PACKET_CHECK_SECONDS``.
        """
        name = validate_database_name(target.database)
        sql = (  # a validated name: no quote can appear in it
            "SELECT '=limit', @@max_allowed_packet;\n"  # noqa: S608
            "SELECT c.table_name, c.column_name, c.data_type "
            "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            f"WHERE c.table_schema = '{name}' "
            "AND t.table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') "
            "AND c.data_type IN ('tinyblob', 'blob', 'mediumblob', 'longblob', 'tinytext', "
            "'text', 'mediumtext', 'longtext') AND c.table_name IN ("
            "SELECT table_name FROM information_schema.COLUMNS "
            f"WHERE table_schema = '{name}' "
            "AND character_octet_length >= @@max_allowed_packet DIV 2) "
            "ORDER BY c.table_name, c.ordinal_position;\n"
        )
        try:
            out = await self._admin_sql(target, sql, extra=("--skip-column-names",))
        except EngineError:
            return None  # the dump reports what is wrong with the connection
        limit = 0
        columns: dict[str, list[tuple[str, bool]]] = {}
        for line in out.splitlines():
            fields = line.split("\t")
            if fields[0] == "=limit":
                limit = int(fields[1])
            elif len(fields) == 3:
                table, column, data_type = (unescape_batch(f) for f in fields)
                columns.setdefault(table, []).append((column, data_type.endswith("text")))
        worst: tuple[int, str] | None = None
        for table, cols in columns.items():
            size = await self._largest_dumped_row(target, table, cols, limit)
            if size is not None and (worst is None or size > worst[0]):
                worst = (size, table)
        if worst is None or worst[0] + _ROW_OVERHEAD <= limit:
            return None
        size, table = worst
        needed = -(-(size + _ROW_OVERHEAD) // (1024 * 1024)) + 1
        return (
            f"Table `{table}` has a row of {size / 1024 / 1024:.1f} MiB as dumped, more than this "
            f"server's max_allowed_packet ({limit / 1024 / 1024:.1f} MiB): the backup restores "
            f"only into a server with max_allowed_packet of at least {needed} MiB "
            f"(SET GLOBAL max_allowed_packet = {needed * 1024 * 1024})."
        )

    async def _largest_dumped_row(
        self, target: TargetSpec, table: str, columns: list[tuple[str, bool]], limit: int
    ) -> int | None:
        """Bytes of ``table``'s largest row of these columns as the dump writes them (the
        utf8mb4 text of each value, NUL, LF, CR, Ctrl-Z, quotes and backslash escaped to two
        bytes), counted only for rows that could come near ``limit``; 0 when none can."""
        raw_terms, dumped_terms = [], []
        for column, is_text in columns:
            quoted = "`" + column.replace("`", "``") + "`"
            value = f"CAST(CONVERT({quoted} USING utf8mb4) AS BINARY)" if is_text else quoted
            raw_terms.append(f"COALESCE(LENGTH({value}), 0)")
            # REGEXP_REPLACE is linear; REPLACE is quadratic in the matches on a long value.
            unescaped = f"LENGTH(REGEXP_REPLACE({value}, {_ESCAPED}, ''))"
            dumped_terms.append(f"COALESCE(2 * LENGTH({value}) - {unescaped}, 0)")
        quoted_table = "`" + table.replace("`", "``") + "`"
        threshold = max(0, limit // 2 - _ROW_OVERHEAD)
        sql = (
            # Names from information_schema, backtick-quoted.
            f"SET STATEMENT max_statement_time = {_PACKET_CHECK_SECONDS} FOR "  # noqa: S608
            f"SELECT COALESCE(MAX({' + '.join(dumped_terms)}), 0) FROM "
            f"{_quoted(target.database)}.{quoted_table} "
            f"WHERE {' + '.join(raw_terms)} > {threshold};\n"
        )
        try:
            out = await self._admin_sql(
                target,
                sql,
                extra=("--skip-column-names",),
                time_limit=_PACKET_CHECK_SECONDS + 30,
            )
            return int(out.split()[-1])
        except (EngineError, ValueError, IndexError) as exc:
            log.warning("could not measure the rows of %s: %s", table, exc)
            return None

    async def _dump_history(self, target: TargetSpec, tools: ClientTools) -> bool:
        """Whether to dump system-versioned tables' history (``--dump-history``).

        Only MariaDB has it; the server must accept history rows back
        (``system_versioning_insert_history``, 10.11+), and the tool refuses tables with
        transaction-precise history (row_start/row_end BIGINT): those are dumped without history.
        """
        if not tools.dump_history or tools.flavour != "mariadb" or tools.client is None:
            return False
        name = validate_database_name(target.database)
        sql = (
            "SELECT (SELECT COUNT(*) FROM information_schema.SYSTEM_VARIABLES "  # noqa: S608
            "WHERE variable_name = 'SYSTEM_VERSIONING_INSERT_HISTORY'), "
            "(SELECT COUNT(*) FROM information_schema.COLUMNS "
            f"WHERE table_schema = '{name}' AND generation_expression = 'ROW START' "
            "AND data_type = 'bigint');\n"
        )
        try:
            out = await self._admin_sql(target, sql, extra=("--skip-column-names",))
            insert_history, trx_precise = (int(v) for v in out.split()[-2:])
        except (EngineError, ValueError):
            return False  # the dump itself reports a connection problem
        if trx_precise:
            log.warning(
                "%s has tables with transaction-precise history: dumped without history",
                target.database,
            )
        return insert_history > 0 and trx_precise == 0

    async def restore(
        self,
        target: TargetSpec,
        source: AsyncIterator[bytes],
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
        single_stream: bool = False,
    ) -> None:
        """Load a stored dump into ``target``; raise ``EngineError`` with the server's reason.

        Parallel when configured, unless ``single_stream``: then the dump is replayed as written
        by one client, as the plain ``mariadb`` command would.
        """
        tools = await self.tools()
        if tools.client is None:
            raise EngineError(tools.missing_client_message(), kind=FailureKind.permanent)
        tool = tools.client_name.split()[0]
        with defaults_file(target) as defaults:
            argv = build_client_argv(
                tools.client, defaults, database=target.database, sandbox=tools.sandbox
            )
            try:
                if self._restore_parallelism > 1 and not single_stream:
                    # Imported here: a process that only takes backups never loads it.
                    from app.engines.mysql.parallel import restore_parallel

                    await restore_parallel(
                        target,
                        source,
                        compression=compression,
                        client_argv=argv,
                        parallelism=self._restore_parallelism,
                        tool=tool,
                        spool_dir=self._spool_dir,
                        on_progress=on_progress,
                    )
                    return
                async with spawn(argv, stdin=PIPE, stdout=DEVNULL) as child:
                    try:
                        raw = await load_dump(
                            source, child, compression=compression, on_progress=on_progress
                        )
                    except (BrokenPipeError, ConnectionResetError):
                        raw = None  # the client stopped reading: its exit status says why
                    except CorruptStream as exc:
                        # Leaving ``spawn`` kills the client before it runs a cut-off statement.
                        raise EngineError(
                            f"the backup file is damaged ({exc}); nothing more was loaded",
                            kind=FailureKind.permanent,
                        ) from None
                    except FileNotFoundError:
                        raise EngineError("the backup file is missing") from None
                    except StorageError as exc:
                        raise EngineError(exc.message) from None
                    if raw is not None and not raw.has_trailer():
                        raise EngineError(
                            "incomplete dump: the backup ends before the dump's completion line",
                            kind=FailureKind.permanent,
                        )
                    await close_stdin(child)
                    code = await child.wait()
                    stderr = child.stderr_tail.text()
            except ToolNotFound:
                raise EngineError(tools.missing_client_message()) from None
        if code != 0:
            raise classify(code, stderr, tool=tool, user=target.user, password=target.password)

    async def _admin_sql(
        self,
        target: TargetSpec,
        sql: str,
        *,
        extra: tuple[str, ...] = (),
        time_limit: float = _ADMIN_TIME_LIMIT,
    ) -> str:
        """Run ``sql`` (built from validated names only) with the client; return its stdout."""
        tools, client, tool = await self._client()
        with defaults_file(target) as defaults, _client_failures(tools, tool, time_limit):
            argv = build_client_argv(client, defaults, sandbox=tools.sandbox, extra=extra)
            stdin = sql.encode()
            code, out, stderr = await run_capture(argv, input_bytes=stdin, time_limit=time_limit)
        if code != 0:
            raise classify(code, stderr, tool=tool, user=target.user, password=target.password)
        return out.decode("utf-8", errors="replace")

    async def _client(self) -> tuple[ClientTools, str, str]:
        """The tools, the client's path, and its short name for messages; refuses without one."""
        tools = await self.tools()
        if tools.client is None:
            raise EngineError(tools.missing_client_message(), kind=FailureKind.permanent)
        return tools, tools.client, tools.client_name.split()[0]

    async def recreate_database(
        self, target: TargetSpec, *, options: DatabaseOptions | None = None
    ) -> None:
        """Drop ``target.database`` if it exists and create it empty, with ``options``' character
        set and collation (utf8mb4 and the server's default collation for it without)."""
        name = _quoted(target.database)
        create = f"CREATE DATABASE {name} CHARACTER SET utf8mb4"
        if options is not None:
            charset, collation = options.character_set, options.collation
            if not (_CHARSET_NAME.match(charset) and _CHARSET_NAME.match(collation)):
                raise EngineError(f"unexpected character set {charset!r} or collation")
            create = f"CREATE DATABASE {name} CHARACTER SET {charset} COLLATE {collation}"
        await self._killable_sql(
            target,
            f"SET SESSION lock_wait_timeout = {_LOCK_WAIT_SECONDS};\n"
            f"DROP DATABASE IF EXISTS {name};\n{create};\n",
            time_limit=_DROP_TIME_LIMIT,
        )

    async def _killable_sql(self, target: TargetSpec, sql: str, *, time_limit: float) -> None:
        """``_admin_sql`` whose statement dies with it: killing a client does not stop what the
        server runs for it (a DROP DATABASE waiting on a lock would run once the lock is gone,
        after the restore was cancelled), so a cancel or timeout also KILLs its connection."""
        tools, client, tool = await self._client()
        connection: int | None = None
        with defaults_file(target) as defaults, _client_failures(tools, tool, time_limit):
            argv = build_client_argv(
                client,
                defaults,
                sandbox=tools.sandbox,
                extra=("--skip-column-names", "--unbuffered"),
            )
            async with spawn(argv, stdin=PIPE, stdout=PIPE) as child:
                try:
                    async with asyncio.timeout(time_limit):
                        child.stdin.write(b"SELECT CONNECTION_ID();\n" + sql.encode())
                        await close_stdin(child)
                        first = (await child.stdout.readline()).strip()
                        connection = int(first) if first.isdigit() else None
                        await child.stdout.read()
                        code = await child.wait()
                except (asyncio.CancelledError, TimeoutError):
                    if connection is not None:
                        await asyncio.shield(self._kill_connection(target, connection))
                    raise
                stderr = child.stderr_tail.text()
        if code != 0:
            raise classify(code, stderr, tool=tool, user=target.user, password=target.password)

    async def _kill_connection(self, target: TargetSpec, connection: int) -> None:
        try:
            await self._admin_sql(target, f"KILL CONNECTION {int(connection)};\n", time_limit=15)
        except EngineError as exc:
            if "Unknown thread id" not in exc.message:
                log.warning("could not stop connection %d: %s", connection, exc.message)

    async def inspect(self, target: TargetSpec) -> SchemaState:
        """``target.database``'s character set and collation and every object in it."""
        name = validate_database_name(target.database)  # no quote can appear in a valid name
        sql = (
            "SELECT '=database', default_character_set_name, default_collation_name "  # noqa: S608
            f"FROM information_schema.SCHEMATA WHERE schema_name = '{name}';\n"
            + inventory_sql(name)
        )
        out = await self._admin_sql(target, sql, extra=("--skip-column-names",))
        options = None
        rows = []
        for line in out.splitlines():
            if line.startswith("=database\t"):
                _, charset, collation = line.split("\t")[:3]
                options = DatabaseOptions(character_set=charset, collation=collation)
            else:
                rows.append(line)
        return SchemaState(options=options, objects=frozenset(parse_inventory("\n".join(rows))))

    async def declared_objects(
        self, source: AsyncIterator[bytes], *, compression: Compression
    ) -> set[DbObject]:
        """The objects a stored dump creates (its tables, views, routines ...)."""
        try:
            return await declared_objects(source, compression)
        except CorruptStream as exc:
            raise EngineError(f"the backup file is damaged ({exc})") from None
        except StorageError as exc:
            raise EngineError(exc.message) from None

    async def count_rows(self, target: TargetSpec) -> dict[str, int]:
        """The exact number of rows of every base table of ``target.database`` (COUNT(*)); a
        system-versioned table's history rows count too, as its dump holds them."""
        name = validate_database_name(target.database)  # no quote can appear in a valid name
        listing = await self._admin_sql(
            target,
            "SELECT table_name, table_type FROM information_schema.TABLES "  # noqa: S608
            f"WHERE table_schema = '{name}' "
            "AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY table_name;\n",
            extra=("--skip-column-names",),
        )
        tables: list[tuple[str, bool]] = []
        for line in listing.splitlines():
            if "\t" in line:
                table, kind = line.rsplit("\t", 1)
                tables.append((unescape_batch(table), kind == "SYSTEM VERSIONED"))
        counts: dict[str, int] = {}
        for start in range(0, len(tables), 200):
            batch = tables[start : start + 200]
            selects = [
                # The index into ``batch``, not the name: nothing to unescape in the answer.
                f"SELECT {i}, COUNT(*) FROM {_quoted(name)}.`{t.replace('`', '``')}`"  # noqa: S608
                + (" FOR SYSTEM_TIME ALL" if versioned else "")
                for i, (t, versioned) in enumerate(batch)
            ]
            out = await self._admin_sql(
                target,
                " UNION ALL ".join(selects) + ";\n",
                extra=("--skip-column-names",),
                time_limit=_DROP_TIME_LIMIT,
            )
            for line in out.splitlines():
                index, _, rows = line.partition("\t")
                counts[batch[int(index)][0]] = int(rows)
        return counts

    async def drop_database(self, target: TargetSpec) -> None:
        """Drop ``target.database`` if it exists (e.g. a scratch copy)."""
        await self._admin_sql(target, f"DROP DATABASE IF EXISTS {_quoted(target.database)};\n")

    async def estimate_size(self, target: TargetSpec) -> int | None:
        """Data plus index bytes of ``target.database`` per information_schema, or None."""
        name = validate_database_name(target.database)  # no quote can appear in a valid name
        sql = f"{_SIZE_QUERY} WHERE table_schema = '{name}';\n"
        try:
            out = await self._admin_sql(target, sql, extra=("--skip-column-names",))
        except EngineError as exc:
            log.warning("estimate_size failed: %s", exc.message)
            return None
        with contextlib.suppress(ValueError):
            return int(out.strip().splitlines()[-1])
        return None

    async def list_databases(self, target: TargetSpec) -> list[str]:
        """Every database on the server but the system ones, sorted."""
        out = await self._admin_sql(
            target,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME;\n",
            extra=("--skip-column-names",),
        )
        names = (unescape_batch(line) for line in out.splitlines() if line)
        return [name for name in names if name.casefold() not in SYSTEM_DATABASES]

    async def check_connection(self, target: TargetSpec) -> ConnectionReport:
        """Connect as the source's account; what the server is, which of the privileges a
        dump needs it lacks on ``target.database``, and which databases it sees."""
        name = validate_database_name(target.database)  # no quote can appear in a valid name
        sql = (  # built from a validated name only
            "SELECT '=version', VERSION();\n"  # noqa: S608
            f"SELECT '=priv', PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES {_MINE};\n"
            "SELECT '=priv', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            f"{_MINE} AND '{name}' LIKE TABLE_SCHEMA;\n"
        )
        try:
            out = await self._admin_sql(target, sql, extra=("--skip-column-names",))
            databases = await self.list_databases(target)
        except EngineError as exc:
            return ConnectionReport(ok=False, message=exc.message)
        version = None
        granted: set[str] = set()
        for line in out.splitlines():
            tag, _, value = line.partition("\t")
            if tag == "=version":
                version = value.strip()
            elif tag == "=priv":
                granted.add(value.strip().upper())
        missing = tuple(p for p in DUMP_PRIVILEGES if p not in granted)
        message = "ok"
        if missing:
            message = (
                f"the account lacks {', '.join(missing)} on {target.database}; a dump needs "
                f"{', '.join(DUMP_PRIVILEGES)} (GRANT {', '.join(missing)} ON "
                f"`{target.database}`.* TO the account)"
            )
        return ConnectionReport(
            ok=not missing,
            message=message,
            server_version=version,
            databases=tuple(databases),
            missing_privileges=missing,
            required_privileges=DUMP_PRIVILEGES,
        )


class _MySQLDump:
    """A running dump: its raw output, then the verdict (``RunningDump``)."""

    def __init__(
        self,
        source: PipeSource,
        child: Child,
        tools: ClientTools,
        target: TargetSpec,
        check: asyncio.Task[str | None],
    ) -> None:
        self.source: PipeSource | AsyncIterator[bytes] = source
        self._child = child
        self._tools = tools
        self._target = target
        self._check = check

    async def finish(self, raw: RawStats) -> DumpVerdict:
        """Wait for the dump tool; complete means exit status 0 and its completion line last."""
        code = await self._child.wait()
        if code != 0:
            raise classify(
                code,
                self._child.stderr_tail.text(),
                tool=self._tools.dump_name.split()[0],
                user=self._target.user,
                password=self._target.password,
            )
        if not raw.has_trailer():
            raise EngineError(
                "incomplete dump: the dump tool stopped before its completion line",
                kind=FailureKind.permanent,
            )
        try:
            async with asyncio.timeout(_PACKET_CHECK_GRACE):
                warning = await self._check
        except TimeoutError:
            log.warning(
                "the row size check did not finish with the dump of %s", self._target.database
            )
            warning = None
        if warning:
            log.warning("backup of %s: %s", self._target.database, warning)
        return DumpVerdict(
            tool_version=self._tools.dump_version or self._tools.dump_name,
            server_version=raw.server_version(),
            warning=warning,
        )
