"""The original's three commands, plus restore, verify, import, export and migrate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.backups.filters import (
    MAX_SEARCH_LENGTH,
    StatusFilter,
    search_problem,
    search_term,
    status_value,
)
from app.backups.imports import compression_from_name
from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    RestoreOperation,
    RestorePhase,
    RestoreStatus,
)
from app.backups.repository import BackupRepository, SortKey, View
from app.backups.runner import TransientBackupFailure
from app.backups.service import BackupService
from app.bootstrap import Bootstrap, open_bootstrap
from app.cli import app
from app.cli.common import fail, load_settings, migrate_or_fail, run
from app.cli.progress import ProgressReporter, format_size
from app.config import Settings
from app.engines.base import validate_database_name
from app.errors import AppError, Conflict, NotFound
from app.queue import JobQueue
from app.sources.models import DEFAULT_SOURCE
from app.sources.service import SourceService

CLI_ACTOR = Actor.system("cli")


def _queue(settings: Settings) -> JobQueue:
    # Imported only for --queue: arq and the Redis client are not part of a backup process's
    # memory (docs/benchmarks.md).
    from app.jobs.queue import ArqJobQueue

    return ArqJobQueue.from_settings(settings)


def _service(rt: Bootstrap, session: AsyncSession, *, queue: bool) -> BackupService:
    """The backup service as the CLI uses it: acting as "cli", queueing only with --queue."""
    return BackupService(
        session,
        settings=rt.settings,
        storage=rt.storage,
        queue=_queue(rt.settings) if queue else None,
        actor=CLI_ACTOR,
    )


@app.command("backup:database")
def backup_database(
    queue: Annotated[
        bool, typer.Option("--queue", help="Queue the backup for the worker and return at once.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            help="Back up this source (dbkeep source:list): every one of its databases, one "
            "backup each (default: the target, DBKEEP_TARGET_URL)."
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(help="Only this database of the source (default: every one)."),
    ] = None,
) -> None:
    """Back up now and wait (or --queue it for the worker): the target database, or with
    --source every database of that source, one backup each."""
    settings = load_settings()
    if source is None and database is None:
        _report([run(_back_up_target(settings, queue=queue))], queue=queue)
        return
    outcomes = run(_back_up_source(settings, source or DEFAULT_SOURCE, database, queue=queue))
    _report(outcomes, queue=queue)


async def _back_up_target(settings: Settings, *, queue: bool) -> DatabaseBackup:
    """Part 1's backup: the database DBKEEP_TARGET_URL names."""
    async with open_bootstrap(settings) as rt:
        async with rt.database.sessionmaker() as session:
            service = _service(rt, session, queue=queue)
            backup = await service.create(trigger=BackupTrigger.cli, enqueue=queue)
        if queue:
            return backup
        return await _run_with_retries(rt, backup)


async def _back_up_source(
    settings: Settings, name: str, database: str | None, *, queue: bool
) -> list[DatabaseBackup | AppError]:
    """One backup per database of source ``name`` (or of ``database``), one after the other;
    a database that can't be backed up (a restore holds it) is reported and the rest go on."""
    async with open_bootstrap(settings) as rt:
        async with rt.database.sessionmaker() as session:
            sources = SourceService(
                session, settings=rt.settings, engines=rt.engines, actor=CLI_ACTOR
            )
            try:
                row = await sources.by_name(name)
            except NotFound:
                if name != DEFAULT_SOURCE:
                    raise
                raise NotFound(
                    "--database without --source backs up the 'default' source, and there is "
                    "none: set DBKEEP_TARGET_URL or name a source (dbkeep source:list)"
                ) from None
            names = await sources.databases_to_back_up(row, database)
        if not names:
            raise Conflict(f"Source {name!r} has no database to back up.")
        outcomes: list[DatabaseBackup | AppError] = []
        for each in names:
            try:
                async with rt.database.sessionmaker() as session:
                    backup = await _service(rt, session, queue=queue).create(
                        trigger=BackupTrigger.cli, enqueue=queue, source=row, database=each
                    )
            except AppError as exc:
                outcomes.append(AppError(f"database {each!r}: {exc.message}"))
                continue
            outcomes.append(backup if queue else await _run_with_retries(rt, backup))
        return outcomes


def _report(outcomes: list[DatabaseBackup | AppError], *, queue: bool) -> None:
    """A line per backup (stdout when it completed or was queued, stderr otherwise); exit 1
    unless every one did."""
    failed = 0
    for outcome in outcomes:
        if isinstance(outcome, AppError):
            failed += 1
            typer.echo(f"dbkeep: error: {outcome.message}", err=True)
        elif queue:
            typer.echo(f"Backup {outcome.id} queued: {outcome.filename}")
        elif outcome.status is not BackupStatus.completed:
            failed += 1
            typer.echo(
                f"dbkeep: error: backup {outcome.id} failed: {outcome.error_message}", err=True
            )
        else:
            typer.echo(
                f"Backup {outcome.id} completed: {outcome.filename} "
                f"({format_size(outcome.file_size)}, {(outcome.duration_ms or 0) / 1000:.1f} s, "
                f"sha256 {outcome.checksum_sha256})"
            )
    if failed:
        raise typer.Exit(1)


async def _run_with_retries(rt: Bootstrap, backup: DatabaseBackup) -> DatabaseBackup:
    runner = rt.backup_runner()
    attempts = rt.settings.transient_retries + 1
    with ProgressReporter(f"Backing up {backup.target_database}", backup.estimated_bytes) as bar:
        for attempt in range(1, attempts + 1):
            try:
                return await runner.run_backup(
                    backup.id,
                    attempt=attempt,
                    max_attempts=attempts,
                    on_progress=bar,
                    on_estimate=bar.set_total,
                )
            except TransientBackupFailure as exc:
                delay = min(60, 5 * 2 ** (attempt - 1))
                typer.echo(
                    f"Attempt {attempt} failed ({exc.message}); retrying in {delay} s", err=True
                )
                await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt never raises TransientBackupFailure")


async def _retention(settings: Settings, *, purge: bool) -> list[int]:
    async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
        service = _service(rt, session, queue=False)
        return await (service.cleanup_trash() if purge else service.auto_trash())


@app.command("backup:auto-trash")
def auto_trash() -> None:
    """Move backups older than the trash age (15 days) to the trash; never the newest completed."""
    moved = run(_retention(load_settings(), purge=False))
    typer.echo(f"Moved {len(moved)} backup(s) to the trash" + (f": {moved}" if moved else "."))


@app.command("backup:cleanup-trash")
def cleanup_trash() -> None:
    """Permanently delete trash items trashed longer ago than the purge age (7 days)."""
    purged = run(_retention(load_settings(), purge=True))
    typer.echo(f"Deleted {len(purged)} trashed backup(s)" + (f": {purged}" if purged else "."))


# What the bar says a restore does in each phase.
PHASE_LABELS = {
    RestorePhase.queued: "starting",
    RestorePhase.safety_backup: "safety backup",
    RestorePhase.loading: "loading",
    RestorePhase.rolling_back: "rolling back",
    RestorePhase.finished: "finishing",
}
RESTORE_POLL_SECONDS = 0.25


@app.command("backup:restore")
def restore(
    backup_id: Annotated[int, typer.Argument(min=1, help="The id of a completed backup.")],
    queue: Annotated[bool, typer.Option("--queue", help="Queue it for the worker.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Don't ask: replace the target database's data.")
    ] = False,
    no_safety_backup: Annotated[
        bool,
        typer.Option(
            "--no-safety-backup",
            help="Skip the safety backup taken first (for scratch databases: no rollback then).",
        ),
    ] = False,
    keep_existing_objects: Annotated[
        bool,
        typer.Option(
            "--keep-existing-objects",
            help="Keep tables, views and routines the backup does not have (by default the "
            "restore leaves exactly the backup's database).",
        ),
    ] = False,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            metavar="SOURCE",
            help="The source (by name) to restore into, of the backup's engine; default: the "
            "one the backup came from.",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="DB",
            help="The database to restore into (created when it doesn't exist); default: the "
            "backup's own, or the --into source's only one.",
        ),
    ] = None,
) -> None:
    """Restore a completed backup where it came from, or --into another source and/or
    --database (replaces that database's data; a safety backup of it is taken first)."""
    settings = load_settings()
    if not yes:
        if not sys.stdin.isatty():
            fail("restoring replaces the target database's data: pass --yes to confirm")
        where = run(_restore_target(settings, backup_id, into, database))
        if not typer.confirm(f"Replace {where} with backup {backup_id}?"):
            typer.echo("Nothing was changed.", err=True)
            raise typer.Exit(1)

    async def main() -> tuple[int, RestoreStatus, str | None]:
        async with open_bootstrap(settings) as rt:
            async with rt.database.sessionmaker() as session:
                service = _service(rt, session, queue=queue)
                operation = await service.request_restore(
                    backup_id,
                    use_safety_backup=not no_safety_backup,
                    keep_existing_objects=keep_existing_objects,
                    target_source_id=await _source_id(rt, session, into),
                    database=database,
                )
            if queue:
                return operation.id, operation.status, None
            done = await _run_restore(rt, operation)
            return done.id, done.status, done.error_message

    restore_id, status, error = run(main())
    if queue:
        typer.echo(f"Restore {restore_id} of backup {backup_id} queued.")
        return
    if status is not RestoreStatus.completed:
        fail(f"restore {restore_id} {status.value.replace('_', ' ')}: {error}")
    typer.echo(f"Restore {restore_id} of backup {backup_id} completed.")


async def _source_id(rt: Bootstrap, session: AsyncSession, name: str | None) -> int | None:
    """The id of the source named ``name`` (None for None); a NotFound the CLI prints."""
    if name is None:
        return None
    sources = SourceService(session, settings=rt.settings, engines=rt.engines, actor=CLI_ACTOR)
    return (await sources.by_name(name)).id


async def _restore_target(
    settings: Settings, backup_id: int, into: str | None, database: str | None
) -> str:
    """What the prompt names: "database 'shop'", with "on source 'x'" but for the default."""
    async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
        target = await _service(rt, session, queue=False).restore_target(
            backup_id, target_source_id=await _source_id(rt, session, into), database=database
        )
    where = f"database '{target.database}'"
    if target.source is not None and target.source.name != DEFAULT_SOURCE:
        where += f" on source '{target.source.name}'"
    return where


async def _run_restore(rt: Bootstrap, operation: RestoreOperation) -> RestoreOperation:
    """Run the restore here, its phase and bytes of the phase's total on the progress bar."""
    from app.backups.restores import RestoreRunner

    label = f"Restoring {operation.target_database}"
    with ProgressReporter(label, None) as bar:

        def entered(phase: RestorePhase, total: int | None) -> None:
            bar.set_phase(_phase_label(phase))
            bar.show(0, total)

        bar.set_phase(_phase_label(operation.phase))
        watch = asyncio.create_task(_watch_restore(rt, operation.id, bar))
        try:
            runner = RestoreRunner.from_runtime(rt, on_phase=entered)
            return await runner.run_restore(operation.id)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch


def _phase_label(phase: RestorePhase) -> str:
    return PHASE_LABELS.get(phase, phase.value)


async def _watch_restore(rt: Bootstrap, restore_id: int, bar: ProgressReporter) -> None:
    """Follow the restore's bytes in its row (written at each heartbeat); the phases come from
    the runner as they are entered, so a row read just before a phase began is not shown."""
    from app.backups.repository import RestoreRepository

    while True:
        with contextlib.suppress(Exception):  # a missed look is not worth stopping for
            async with rt.database.sessionmaker() as session:
                row = await RestoreRepository(session).get(restore_id)
            if row is not None and _phase_label(row.phase) == bar.phase:
                bar.show(row.bytes_processed, row.total_bytes)
        await asyncio.sleep(RESTORE_POLL_SECONDS)


@app.command("backup:verify")
def verify(
    backup_id: Annotated[int, typer.Argument(min=1)],
    restore: Annotated[
        bool,
        typer.Option(
            "--restore",
            help="Also test-restore it into a scratch database on its source's verify_url "
            "and compare every table's rows with the backup's manifest.",
        ),
    ] = False,
) -> None:
    """Re-read a backup's file and check its size and SHA-256 against the record."""
    settings = load_settings()
    if restore:
        _verify_by_restore(settings, backup_id)
        return

    async def main() -> str:
        async with open_bootstrap(settings) as rt:
            async with rt.database.sessionmaker() as session:
                row = await BackupRepository(session).get(backup_id)
            reason = _no_file_reason(row) if row is not None else None
            if reason is not None:  # nothing to verify: never "missing", never flagged so
                fail(f"backup {backup_id} has no file: {reason}; there is nothing to verify")
            return (await rt.backup_runner().verify(backup_id)).value

    status = run(main())
    if status != "ok":
        fail(f"backup {backup_id} is {status}")
    typer.echo(f"Backup {backup_id} is intact.")


def _verify_by_restore(settings: Settings, backup_id: int) -> None:
    from app.verifications.cli import VerifyCommandError, describe, verify_by_restore

    async def main() -> tuple[bool, str]:
        async with open_bootstrap(settings) as rt:
            try:
                done = await verify_by_restore(rt, backup_id)
            except VerifyCommandError as exc:
                fail(exc.message)
            return done.status.value == "passed", describe(done)

    passed, text = run(main())
    if not passed:
        fail(text.replace("\n", "; "))
    typer.echo(text)


def _no_file_reason(backup: DatabaseBackup) -> str | None:
    """Why a backup never had a file (failed, cancelled or unfinished), or None if it has one."""
    status = backup.status
    if status is BackupStatus.in_trash:
        status = backup.status_before_trash or BackupStatus.completed
    if status in (BackupStatus.pending, BackupStatus.in_progress):
        return f"it is {status.value.replace('_', ' ')}"
    if status is BackupStatus.failed:
        if getattr(backup, "cancelled_at", None) or backup.cancel_requested_at:
            return "it was cancelled before one was written"
        return "it failed before one was written"
    return None


@app.command("backup:export-csv")
def export_csv(
    search: Annotated[
        str | None,
        typer.Option(
            help=f"Literal text (at most {MAX_SEARCH_LENGTH} characters) in the filename or the "
            "unique identifier."
        ),
    ] = None,
    status: Annotated[
        StatusFilter | None, typer.Option(help="Only backups with this status.")
    ] = None,
    view: Annotated[
        View, typer.Option(help="active: everything but the trash; trash: only the trash.")
    ] = View.active,
    sort: Annotated[SortKey, typer.Option(help="The list's order.")] = SortKey.latest,
    source_id: Annotated[
        int | None, typer.Option(min=1, help="Only backups of the source with this id.")
    ] = None,
    database: Annotated[str | None, typer.Option(help="Only backups of this database.")] = None,
) -> None:
    """Write the backup history as CSV to stdout (the same file as the dashboard's export)."""
    problem = search_problem(search) if search is not None else None
    if problem is not None:
        fail(f"--search: {problem}")
    if database is not None:
        try:
            validate_database_name(database)
        except ValueError as exc:
            fail(f"--database: {exc}")
    settings = load_settings()

    async def main() -> None:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            export = await _service(rt, session, queue=False).export_csv(
                search=search_term(search),
                sort=sort,
                status=status_value(status),
                view=view,
                source_id=source_id,
                database=database,
            )
            out = sys.stdout.buffer
            async for chunk in export.chunks:
                out.write(chunk)
            out.flush()

    try:
        run(main())
    except BrokenPipeError:
        # `| head`: the reader has all it wanted. Point stdout at /dev/null so the flush at
        # exit doesn't report the pipe again (the recipe of Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command("backup:import")
def import_dump(
    source: Annotated[str, typer.Argument(help="The source's name (see source:list).")],
    file: Annotated[
        Path,
        typer.Argument(
            help="An existing dump: NAME.sql, NAME.sql.gz or NAME.sql.zst.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    database: Annotated[
        str | None,
        typer.Option(help="Which of the source's databases it is of (default: its only one)."),
    ] = None,
) -> None:
    """Store an existing dump as a completed backup of SOURCE, checked like one dbkeep takes."""
    declared = compression_from_name(file.name)
    if declared is None:
        fail(f"{file.name}: the file name must end in .sql, .sql.gz or .sql.zst")
    settings = load_settings()

    async def main() -> DatabaseBackup:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            sources = SourceService(
                session, settings=rt.settings, engines=rt.engines, actor=CLI_ACTOR
            )
            row = await sources.by_name(source)
            name = sources.database_for_import(row, database)
            return await _service(rt, session, queue=False).import_upload(
                source=row,
                database=name,
                engine=sources.engine_of(row),
                chunks=_file_chunks(file),
                declared=declared,
                original_name=file.name,
            )

    backup = run(main())
    typer.echo(
        f"Backup {backup.id} imported: {backup.filename} "
        f"({format_size(backup.file_size)}, sha256 {backup.checksum_sha256})"
    )


async def _file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """The file's bytes, read off the event loop."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk


@app.command("migrate")
def migrate() -> None:
    """Bring the metadata store to the newest schema (alembic upgrade head)."""
    migrate_or_fail(load_settings())
    typer.echo("Metadata store is up to date.")
