"""Restore a mysqldump/mariadb-dump stream with several client sessions at once.

One ``mariadb`` session replaying a dump keeps one server core busy; tables are independent, so
they can load side by side. The dump is read once, as a stream, and cut at its per-table comment
markers (``-- Table structure for table `t```, ``-- Dumping data for table `t```):

* the header's ``SET`` lines (character set, time zone, ``UNIQUE_CHECKS=0``,
  ``FOREIGN_KEY_CHECKS=0``, SQL mode) open every session;
* each table section (structure, rows, triggers) is spooled to its own 0600 file in a private 0700
  directory and loaded by one of ``parallelism`` client processes, which starts while the file is
  still being written (it follows the file as it grows), so loading overlaps reading;
* InnoDB tables are created with their primary key and the keys the load needs; the other
  secondary indexes (the last ones of each kind, so that ``SHOW CREATE TABLE`` keeps its order)
  are added by one ``ALTER TABLE`` after the rows (a sorted index build, far cheaper than
  inserting every row into every index once an index outgrows the buffer pool) and foreign keys
  at the very end;
* everything else — view placeholders and final views, events, routines — runs last, in dump
  order, in one session, once every table is loaded.

The dump is cut only where the ``mariadb`` client itself would be between two statements: the
splitter reads it with the client's lexing rules (``SqlLexer``), so a marker or ``DELIMITER`` line
inside a literal is text. A dump that can't be split — one that doesn't look like a
single-database mysqldump (other statements in its header, a sequence before the first table, no
``FOREIGN_KEY_CHECKS=0``), or whose header the lexer is unsure of — is loaded from its raw
bytes, exactly as written, in one session: the decision is taken before the first section, and
nothing the splitter rewrote is used. Where the lexer is unsure later on, the rest of the dump
runs as written, in the session of the section it was in, once everything before it has
loaded. Memory stays bounded whatever the dump size (the temporary files hold up to the whole
uncompressed dump on disk). Any failure — a client error, a damaged or truncated backup — kills
every session and raises ``EngineError`` with the server's reason and the line of the dump it
refers to; what was loaded stays, and the caller rolls back.

The parts: ``splitter`` (the lexer and the dump's events, pure byte parsing), ``spool`` (the
private files and the threads doing their I/O), ``loader`` (the reader and the session slots)
and, here, the entry point that runs them together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from app.engines.base import EngineError, FailureKind, ProgressCallback, TargetSpec
from app.engines.mysql.parallel.loader import ParallelLoad
from app.engines.mysql.parallel.splitter import (
    Begin,
    Data,
    DeferredIndexes,
    DumpSplitter,
    End,
    Event,
    Header,
    SqlLexer,
    defer_indexes,
)
from app.engines.mysql.parallel.spool import Spool
from app.pipeline.codecs import CorruptStream, PipelineError, decoder
from app.pipeline.compression import Compression
from app.pipeline.process import ToolNotFound
from app.storage.base import StorageError

__all__ = [
    "Begin",
    "Data",
    "DeferredIndexes",
    "DumpSplitter",
    "End",
    "Event",
    "Header",
    "SqlLexer",
    "defer_indexes",
    "restore_parallel",
]


async def restore_parallel(
    target: TargetSpec,
    source: AsyncIterator[bytes],
    *,
    compression: Compression,
    client_argv: Sequence[str],
    parallelism: int,
    tool: str,
    spool_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Load a stored dump with up to ``parallelism`` concurrent ``client_argv`` sessions.

    ``source`` yields the stored (possibly compressed) bytes; ``client_argv`` is one complete
    client command (credentials file first, target database last). Temporary files go to a
    private directory under ``spool_dir`` (the system's temporary directory if None) and are
    removed before returning. Raises ``EngineError``; cancelling kills every client.
    """
    parallelism = max(1, parallelism)
    spool: Spool | None = None
    try:
        spool = Spool(spool_dir, threads=parallelism + 2)
        job = ParallelLoad(
            spool,
            client_argv=client_argv,
            parallelism=parallelism,
            target=target,
            tool=tool,
            on_progress=on_progress,
        )
        async with decoder(compression)(source) as raw:
            await _run_all(job, _guarded(raw))
        finishing = job.finishing_script()
        if finishing is not None:
            await spool.flush(finishing)
            finishing.complete = True
            await job.load(finishing)
    except (ToolNotFound, TimeoutError):
        raise
    except OSError as exc:
        # Spool trouble (permissions, I/O error): the reason without the path.
        reason = (exc.strerror or type(exc).__name__).lower()
        raise EngineError(
            f"the restore's temporary files failed: {reason}", kind=FailureKind.permanent
        ) from None
    finally:
        if spool is not None:
            await spool.aclose()


async def _guarded(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The decoded stream, with its failures as ``EngineError`` (the engine's messages)."""
    try:
        async for chunk in raw:
            yield chunk
    except CorruptStream as exc:
        raise EngineError(
            f"the backup file is damaged ({exc}); nothing more was loaded",
            kind=FailureKind.permanent,
        ) from None
    except PipelineError as exc:
        raise EngineError(str(exc), kind=FailureKind.permanent) from None
    except FileNotFoundError:
        raise EngineError("the backup file is missing") from None
    except StorageError as exc:
        raise EngineError(exc.message) from None


async def _run_all(job: ParallelLoad, raw: AsyncIterator[bytes]) -> None:
    """The reader and the session slots together; the first failure stops all of them."""
    try:
        async with asyncio.TaskGroup() as group:
            job.group = group
            group.create_task(job.read(raw))
            for _ in range(job.parallelism):
                group.create_task(job.work())
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report: an ``EngineError`` (the server's reason) before anything else."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for error in leaves:
        if isinstance(error, EngineError):
            return error
    return leaves[0]
