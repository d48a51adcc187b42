"""The original's three commands, plus restore, verify and migrate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
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
from app.backups.service import BackupService, target_from_settings
from app.bootstrap import Bootstrap, open_bootstrap
from app.cli import app
from app.cli.common import fail, load_settings, migrate_or_fail, run
from app.cli.progress import ProgressReporter, format_size
from app.config import Settings
from app.engines.base import validate_database_name
from app.errors import AppError
from app.queue import JobQueue

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
) -> None:
    """Back up the target database now and wait (or --queue it for the worker)."""
    settings = load_settings()

    async def main() -> DatabaseBackup:
        async with open_bootstrap(settings) as rt:
            async with rt.database.sessionmaker() as session:
                service = _service(rt, session, queue=queue)
                backup = await service.create(trigger=BackupTrigger.cli, enqueue=queue)
            if queue:
                return backup
            return await _run_with_retries(rt, backup)

    backup = run(main())
    if queue:
        typer.echo(f"Backup {backup.id} queued: {backup.filename}")
        return
    if backup.status is not BackupStatus.completed:
        fail(f"backup {backup.id} failed: {backup.error_message}")
    typer.echo(
        f"Backup {backup.id} completed: {backup.filename} "
        f"({format_size(backup.file_size)}, {(backup.duration_ms or 0) / 1000:.1f} s, "
        f"sha256 {backup.checksum_sha256})"
    )


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
) -> None:
    """Restore a completed backup into the target database (replaces its current data)."""
    settings = load_settings()
    if not yes:
        if not sys.stdin.isatty():
            fail("restoring replaces the target database's data: pass --yes to confirm")
        try:
            database = target_from_settings(settings).database
        except AppError as exc:
            fail(exc.message)
        if not typer.confirm(f"Replace database '{database}' with backup {backup_id}?"):
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
def verify(backup_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Re-read a backup's file and check its size and SHA-256 against the record."""
    settings = load_settings()

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


@app.command("migrate")
def migrate() -> None:
    """Bring the metadata store to the newest schema (alembic upgrade head)."""
    migrate_or_fail(load_settings())
    typer.echo("Metadata store is up to date.")
