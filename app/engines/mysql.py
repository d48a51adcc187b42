"""MySQL/MariaDB: dump with mariadb-dump/mysqldump, restore and recreate with the mariadb client.

Credentials reach the tools only through a private option file passed as the first argument; the
database name is validated and placed after ``--`` so it can never be read as an option.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from app.config import Compression, Settings
from app.engines.base import (
    DumpOutcome,
    EngineError,
    FailureKind,
    ProgressCallback,
    TargetSpec,
    ToolStatus,
    validate_database_name,
)
from app.engines.credentials import (
    defaults_argument,
    defaults_file,
    remove_stale_defaults_files,
)
from app.engines.mysql_errors import classify
from app.engines.mysql_tools import ClientTools, detect
from app.pipeline.codecs import CorruptStream, PipelineError
from app.pipeline.fdio import fd_io
from app.pipeline.process import DEVNULL, PIPE, ToolNotFound, close_stdin, run_capture, spawn
from app.pipeline.splice import PipeSource
from app.pipeline.streams import RawStats, StoredStats, load_dump, store_dump
from app.storage.base import StorageError, StorageWriter

log = logging.getLogger(__name__)

DUMP_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1G",
)
CLIENT_OPTIONS = ("--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--batch")
_ADMIN_TIME_LIMIT = 120.0
_SIZE_QUERY = "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables"


def build_dump_argv(
    binary: str, defaults_path: str, database: str, *, flavour: str = "mariadb"
) -> list[str]:
    """The dump command: option file first, fixed options, ``--``, then the validated name."""
    argv = [binary, defaults_argument(defaults_path), *DUMP_OPTIONS]
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


class MySQLEngine:
    """The ``DatabaseEngine`` for MySQL and MariaDB servers."""

    name = "mysql"

    def __init__(
        self,
        *,
        dump_binary: str | None = None,
        client_binary: str | None = None,
        zstd_level: int = 3,
        gzip_level: int = 6,
        restore_parallelism: int = 1,
        spool_dir: Path | None = None,
    ) -> None:
        self._dump_binary = dump_binary
        self._client_binary = client_binary
        self._levels = {Compression.zstd: zstd_level, Compression.gzip: gzip_level}
        # Above 1, restores load tables in that many sessions (app.engines.parallel_restore),
        # spooling the dump under ``spool_dir``.
        self._restore_parallelism = restore_parallelism
        self._spool_dir = spool_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> MySQLEngine:
        return cls(
            dump_binary=settings.dump_binary,
            client_binary=settings.client_binary,
            zstd_level=settings.zstd_level,
            gzip_level=settings.gzip_level,
            restore_parallelism=settings.restore_parallelism,
            spool_dir=settings.var_dir / "restore-spool",
        )

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

    async def dump(
        self,
        target: TargetSpec,
        writer: StorageWriter,
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
    ) -> DumpOutcome:
        """Stream a complete dump into ``writer``; raise ``EngineError`` unless it is complete."""
        tools = await self.tools()
        if tools.dump is None:
            raise EngineError(tools.missing_dump_message(), kind=FailureKind.permanent)
        with defaults_file(target) as defaults:
            argv = build_dump_argv(tools.dump, defaults, target.database, flavour=tools.flavour)
            try:
                code, stderr, raw, stored = await self._run_dump(
                    argv, writer, compression=compression, on_progress=on_progress
                )
            except ToolNotFound:
                raise EngineError(tools.missing_dump_message()) from None
        if code != 0:
            raise classify(
                code,
                stderr,
                tool=tools.dump_name.split()[0],
                user=target.user,
                password=target.password,
            )
        if not raw.has_trailer():
            raise EngineError(
                "incomplete dump: the dump tool stopped before its completion line",
                kind=FailureKind.permanent,
            )
        return DumpOutcome(
            raw_bytes=raw.raw_bytes,
            stored_bytes=stored.stored_bytes,
            sha256=stored.sha256,
            tool_version=tools.dump_version or tools.dump_name,
            server_version=raw.server_version(),
        )

    async def _run_dump(
        self,
        argv: list[str],
        writer: StorageWriter,
        *,
        compression: Compression,
        on_progress: ProgressCallback | None,
    ) -> tuple[int, str, RawStats, StoredStats]:
        """Run the dump into the pipeline; return (exit status, stderr tail, stats)."""
        # Nesting order matters: the dump is dead (spawn exited) before fd_io joins its threads.
        async with fd_io() as io:
            read_end, write_end = io.pipe()
            async with spawn(argv, stdout=write_end) as child:
                io.close(write_end)
                try:
                    raw, stored = await store_dump(
                        PipeSource(io, read_end),
                        writer,
                        compression=compression,
                        level=self._levels.get(compression, 0),
                        on_progress=on_progress,
                    )
                except StorageError as exc:
                    # Leaving ``spawn`` kills the dump; the storage reason is the one to show.
                    kind = FailureKind.transient if exc.transient else FailureKind.permanent
                    raise EngineError(exc.message, kind=kind) from None
                except PipelineError as exc:
                    raise EngineError(str(exc), kind=FailureKind.permanent) from None
                code = await child.wait()
                return code, child.stderr_tail.text(), raw, stored

    async def restore(
        self,
        target: TargetSpec,
        source: AsyncIterator[bytes],
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Load a stored dump into ``target``; raise ``EngineError`` with the server's reason."""
        tools = await self.tools()
        if tools.client is None:
            raise EngineError(tools.missing_client_message(), kind=FailureKind.permanent)
        tool = tools.client_name.split()[0]
        with defaults_file(target) as defaults:
            argv = build_client_argv(
                tools.client, defaults, database=target.database, sandbox=tools.sandbox
            )
            try:
                if self._restore_parallelism > 1:
                    # Imported here: a process that only takes backups never loads it.
                    from app.engines.parallel_restore import restore_parallel

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

    async def _admin_sql(self, target: TargetSpec, sql: str, *, extra: tuple[str, ...] = ()) -> str:
        """Run ``sql`` (built from validated names only) with the client; return its stdout."""
        tools = await self.tools()
        if tools.client is None:
            raise EngineError(tools.missing_client_message(), kind=FailureKind.permanent)
        tool = tools.client_name.split()[0]
        with defaults_file(target) as defaults:
            argv = build_client_argv(tools.client, defaults, sandbox=tools.sandbox, extra=extra)
            try:
                code, out, stderr = await run_capture(
                    argv, input_bytes=sql.encode(), time_limit=_ADMIN_TIME_LIMIT
                )
            except ToolNotFound:
                raise EngineError(tools.missing_client_message()) from None
            except TimeoutError:
                raise EngineError(
                    f"{tool} did not answer within {_ADMIN_TIME_LIMIT:.0f} s",
                    kind=FailureKind.transient,
                ) from None
        if code != 0:
            raise classify(code, stderr, tool=tool, user=target.user, password=target.password)
        return out.decode("utf-8", errors="replace")

    async def recreate_database(self, target: TargetSpec) -> None:
        """Drop ``target.database`` if it exists and create it empty (utf8mb4)."""
        name = _quoted(target.database)
        await self._admin_sql(
            target,
            f"DROP DATABASE IF EXISTS {name};\nCREATE DATABASE {name} CHARACTER SET utf8mb4;\n",
        )

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
