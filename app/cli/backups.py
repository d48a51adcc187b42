"""The original's three commands, plus restore, verify and migrate."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup, RestoreStatus
from app.backups.runner import TransientBackupFailure
from app.backups.service import BackupService
from app.cli import app
from app.cli.common import fail, load_settings, migrate_or_fail, run
from app.config import Settings
from app.queue import JobQueue
from app.runtime import Runtime, open_runtime

if TYPE_CHECKING:
    from rich.progress import Progress

CLI_ACTOR = Actor.system("cli")


def _queue(settings: Settings) -> JobQueue:
    try:
        from app.jobs.queue import ArqJobQueue
    except ModuleNotFoundError:
        fail("--queue needs the worker (dbkeep worker), which is not installed in this build")
    return ArqJobQueue.from_settings(settings)


def _service(rt: Runtime, session: AsyncSession, *, queue: bool) -> BackupService:
    """The backup service as the CLI uses it: acting as "cli", queueing only with --queue."""
    return BackupService(
        session,
        settings=rt.settings,
        storage=rt.storage,
        queue=_queue(rt.settings) if queue else None,
        actor=CLI_ACTOR,
    )


class _ProgressReporter:
    """A progress bar on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, label: str, total: int | None) -> None:
        self.tty = sys.stderr.isatty()
        self.label = label
        self.total = total
        self.last_line = 0.0
        self.bar: Progress | None = None
        if self.tty:
            # Imported only for a person at a terminal: the bar is not drawn anywhere else.
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self.task = self.bar.add_task(label, total=total)

    def __enter__(self) -> _ProgressReporter:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    async def __call__(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)
            return
        now = time.monotonic()
        if now - self.last_line >= 5:
            self.last_line = now
            typer.echo(f"{self.label}: {done / 1048576:.1f} MiB", err=True)


@app.command("backup:database")
def backup_database(
    queue: Annotated[
        bool, typer.Option("--queue", help="Queue the backup for the worker and return at once.")
    ] = False,
) -> None:
    """Back up the target database now and wait (or --queue it for the worker)."""
    settings = load_settings()

    async def main() -> DatabaseBackup:
        async with open_runtime(settings) as rt:
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
        f"({_size(backup.file_size)}, {(backup.duration_ms or 0) / 1000:.1f} s, "
        f"sha256 {backup.checksum_sha256})"
    )


async def _run_with_retries(rt: Runtime, backup: DatabaseBackup) -> DatabaseBackup:
    runner = rt.backup_runner()
    attempts = rt.settings.transient_retries + 1
    with _ProgressReporter(f"Backing up {backup.target_database}", backup.estimated_bytes) as bar:
        for attempt in range(1, attempts + 1):
            try:
                return await runner.run_backup(
                    backup.id, attempt=attempt, max_attempts=attempts, on_progress=bar
                )
            except TransientBackupFailure as exc:
                delay = min(60, 5 * 2 ** (attempt - 1))
                typer.echo(
                    f"Attempt {attempt} failed ({exc.message}); retrying in {delay} s", err=True
                )
                await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt never raises TransientBackupFailure")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


async def _retention(settings: Settings, *, purge: bool) -> list[int]:
    async with open_runtime(settings) as rt, rt.database.sessionmaker() as session:
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
) -> None:
    """Restore a completed backup into the target database (replaces its current data)."""
    settings = load_settings()
    if not yes:
        if not sys.stdin.isatty():
            fail("restoring replaces the target database's data: pass --yes to confirm")
        typer.confirm(
            f"Restore backup {backup_id}? This replaces the current data of the target database.",
            abort=True,
        )

    async def main() -> tuple[int, RestoreStatus, str | None]:
        async with open_runtime(settings) as rt:
            async with rt.database.sessionmaker() as session:
                service = _service(rt, session, queue=queue)
                operation = await service.request_restore(
                    backup_id, use_safety_backup=not no_safety_backup
                )
            if queue:
                return operation.id, operation.status, None
            from app.backups.restores import RestoreRunner

            done = await RestoreRunner.from_runtime(rt).run_restore(operation.id)
            return done.id, done.status, done.error_message

    restore_id, status, error = run(main())
    if queue:
        typer.echo(f"Restore {restore_id} of backup {backup_id} queued.")
        return
    if status is not RestoreStatus.completed:
        fail(f"restore {restore_id} {status.value.replace('_', ' ')}: {error}")
    typer.echo(f"Restore {restore_id} of backup {backup_id} completed.")


@app.command("backup:verify")
def verify(backup_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Re-read a backup's file and check its size and SHA-256 against the record."""
    settings = load_settings()

    async def main() -> str:
        async with open_runtime(settings) as rt:
            return (await rt.backup_runner().verify(backup_id)).value

    status = run(main())
    if status != "ok":
        fail(f"backup {backup_id} is {status}")
    typer.echo(f"Backup {backup_id} is intact.")


@app.command("migrate")
def migrate() -> None:
    """Bring the metadata store to the newest schema (alembic upgrade head)."""
    migrate_or_fail(load_settings())
    typer.echo("Metadata store is up to date.")
