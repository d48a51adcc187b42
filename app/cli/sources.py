"""``dbkeep source:*``: add, list, test and remove the database servers dbkeep backs up.

A source's URL carries a password: ``source:add NAME -`` reads it from standard input so it
never sits in argv or a shell's history, and nothing here prints it (``SourceView.url`` is
masked; errors come from the schema and the service, which never echo it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.backups.service import BackupService
from app.bootstrap import Bootstrap, open_bootstrap
from app.cli import app
from app.cli.common import fail, load_settings, run
from app.config import Settings
from app.errors import AppError
from app.sources.cron import resolve_timezone
from app.sources.models import ALL_DATABASES
from app.sources.schemas import ConnectionTest, SourceCreate, SourceRead, connection_test
from app.sources.service import SourceService, SourceView

CLI_ACTOR = Actor.system("cli")

# The schema's fields as the options that set them, so an error names what the user typed.
_FIELD_OPTIONS = {
    "name": "NAME",
    "url": "URL",
    "databases": "--databases",
    "exclude": "--exclude",
    "schedule": "--schedule",
    "timezone": "--timezone",
    "enabled": "--disabled",
    "encryption": "--recipient",
}


def source_service(rt: Bootstrap, session: AsyncSession) -> SourceService:
    return SourceService(session, settings=rt.settings, engines=rt.engines, actor=CLI_ACTOR)


def _names(value: str | None, option: str) -> list[str] | None:
    """``a,b`` → ``["a", "b"]``; an empty item is a mistake worth saying."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        fail(f"{option}: give database names separated by commas (no empty names)")
    return names


def _read_url(url: str) -> str:
    """The URL, or (given as ``-``) the first line of standard input, or asked for at a
    terminal without echo: a password is then never in argv or the shell's history."""
    if url != "-":
        return url
    if sys.stdin.isatty():
        return str(typer.prompt("URL (with the password)", hide_input=True)).strip()
    line = sys.stdin.readline().strip()
    if not line:
        fail("URL '-': write the URL as one line on standard input")
    return line


def _option_of(loc: Sequence[int | str]) -> str:
    if len(loc) > 1 and loc[0] == "retention":
        return "--" + str(loc[1]).replace("_", "-")
    return _FIELD_OPTIONS.get(str(loc[0]), str(loc[0])) if loc else "the source"


def invalid_source(exc: ValidationError) -> str:
    """The first problem, as the API words it (pydantic's message, never the input), naming
    the option that carried the value."""
    error = exc.errors(include_input=False, include_url=False)[0]
    return f"Invalid {_option_of(error['loc'])}: {str(error['msg']).rstrip('.')}."


def _service_failure(exc: AppError) -> str:
    """The service's message, with its first field detail when it has one ("The URL is not
    usable: the port must be a number")."""
    details = [message for messages in (exc.errors or {}).values() for message in messages]
    if not details:
        return exc.message
    return f"{exc.message.rstrip('.')}: {details[0]}"


@app.command("source:add")
def source_add(
    name: Annotated[str, typer.Argument(help="A unique name: a-z, 0-9, '_' and '-'.")],
    url: Annotated[
        str,
        typer.Argument(
            help="mysql://user:password@host:3306/db (?socket=/path) or postgresql://user:"
            "password@host:5432/db (?sslmode=...); '-' reads it from "
            "standard input (or asks for it at a terminal), keeping the password out of argv "
            "and the shell's history."
        ),
    ],
    databases: Annotated[
        str | None,
        typer.Option(help="The databases to back up, comma-separated (default: the URL's)."),
    ] = None,
    all_databases: Annotated[
        bool,
        typer.Option("--all", help="Every non-system database on the server (the URL names none)."),
    ] = False,
    exclude: Annotated[
        str | None, typer.Option(help="With --all: databases to leave out, comma-separated.")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="When to back up, a 5-field cron expression (default: manual only)."),
    ] = None,
    timezone: Annotated[str, typer.Option(help="The schedule's IANA time zone.")] = "UTC",
    keep_last: Annotated[int | None, typer.Option(help="Keep the newest N backups.")] = None,
    keep_daily: Annotated[
        int | None, typer.Option(help="Keep the newest backup of each of the last N days.")
    ] = None,
    keep_weekly: Annotated[
        int | None, typer.Option(help="… of each of the last N ISO weeks.")
    ] = None,
    keep_monthly: Annotated[int | None, typer.Option(help="… of each of the last N months.")] = (
        None
    ),
    keep_yearly: Annotated[int | None, typer.Option(help="… of each of the last N years.")] = None,
    trash_after_days: Annotated[
        float | None,
        typer.Option(help="With no --keep-*: trash backups older than this (default 15)."),
    ] = None,
    purge_after_days: Annotated[
        float | None,
        typer.Option(help="Delete trashed backups after this many days (default 7)."),
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it paused: no scheduled backups.")
    ] = False,
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Encrypt its backups (age) to dbkeep's own key.")
    ] = False,
    recipient: Annotated[
        list[str] | None,
        typer.Option(help="With --encrypt: also to this age public key (age1…); repeatable."),
    ] = None,
    destination: Annotated[
        list[str] | None,
        typer.Option(
            "--destination", help="Where its backups go, by name, in order (default: local)."
        ),
    ] = None,
) -> None:
    """Add a source: a database server and which databases on it to back up."""
    if recipient and not encrypt:
        fail("--recipient goes with --encrypt (the backups are encrypted to it)")
    if all_databases and databases is not None:
        fail("--databases and --all exclude each other: name databases, or take them all")
    if exclude is not None and not all_databases:
        fail("--exclude goes with --all (leave out databases of every one on the server)")
    retention: dict[str, Any] = {
        key: value
        for key, value in {
            "keep_last": keep_last,
            "keep_daily": keep_daily,
            "keep_weekly": keep_weekly,
            "keep_monthly": keep_monthly,
            "keep_yearly": keep_yearly,
            "trash_after_days": trash_after_days,
            "purge_after_days": purge_after_days,
        }.items()
        if value is not None
    }
    url_text = _read_url(url)
    fields: dict[str, Any] = {
        "name": name,
        # The URL's scheme says the engine: postgresql:// (or postgres://), sqlite:///path.
        "engine": _engine_of(url_text),
        "url": url_text,
        "databases": [ALL_DATABASES] if all_databases else _names(databases, "--databases"),
        "exclude": _names(exclude, "--exclude") or [],
        "schedule": schedule,
        "timezone": timezone,
        "retention": retention,
        "enabled": not disabled,
        "encryption": {"enabled": encrypt, "recipients": list(recipient or [])},
    }
    if destination:
        fields["destination_ids"] = list(destination)
    try:
        data = SourceCreate.model_validate(fields)
    except ValidationError as exc:
        fail(invalid_source(exc))
    settings = load_settings()

    async def main() -> SourceView:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = source_service(rt, session)
            try:
                source = await service.create(data)
            except AppError as exc:
                fail(_service_failure(exc))
            return await service.view(source)

    view = run(main())
    typer.echo(f"Source {view.id} added: {view.name} ({view.url}), {_databases(view)}.")
    if view.next_run_at is not None:
        local = view.next_run_at.astimezone(resolve_timezone(view.timezone))
        typer.echo(f"Next backup: {local:%Y-%m-%d %H:%M} {view.timezone}.")


def _engine_of(url: str) -> str:
    if url.startswith(("postgresql:", "postgresql+", "postgres:")):
        return "postgresql"
    return "sqlite" if url.startswith("sqlite:") else "mysql"


def _databases(view: SourceView) -> str:
    if view.databases == [ALL_DATABASES]:
        return "all databases" + (f" but {', '.join(view.exclude)}" if view.exclude else "")
    return ", ".join(view.databases)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _row(view: SourceView) -> list[str]:
    schedule = f"{view.schedule} {view.timezone}" if view.schedule else "manual"
    last = (
        f"{view.last_backup_status} {_when(view.last_backup_at)}"
        if view.last_backup_status
        else "-"
    )
    return [
        str(view.id),
        view.name,
        view.engine,
        view.url,
        _databases(view),
        schedule,
        _when(view.next_run_at),
        last,
        "yes" if view.enabled else "no",
    ]


HEADER = [
    "ID",
    "NAME",
    "ENGINE",
    "URL",
    "DATABASES",
    "SCHEDULE",
    "NEXT RUN",
    "LAST BACKUP",
    "ENABLED",
]


def table(rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; the last one is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


async def _overview(settings: Settings) -> list[SourceView]:
    async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
        return await source_service(rt, session).overview()


@app.command("source:list")
def source_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (the API's source objects).")
    ] = False,
) -> None:
    """List the sources: URL (password as ***), databases, schedule, next run, last backup."""
    views = run(_overview(load_settings()))
    if as_json:
        data = [
            SourceRead.model_validate(view, from_attributes=True).model_dump(mode="json")
            for view in views
        ]
        typer.echo(json.dumps(data, indent=2))
        return
    if not views:
        typer.echo("(no sources: add one with 'dbkeep source:add' or set DBKEEP_TARGET_URL)")
        return
    for line in table([HEADER, *(_row(view) for view in views)]):
        typer.echo(line)


@app.command("source:test")
def source_test(
    name: Annotated[str, typer.Argument(help="The source's name.")],
) -> None:
    """Connect as the source's account: server version, the databases found, the privileges a
    dump needs that it lacks, and the dump tools here. Exit status 0 only when all is well."""
    settings = load_settings()

    async def main() -> ConnectionTest:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = source_service(rt, session)
            source = await service.by_name(name)
            report, tools = await service.test(source.id)
            return connection_test(report, tools)

    result = run(main())
    missing = ", ".join(result.missing_privileges) or "none"
    for label, value in (
        ("Server", result.server_version or "-"),
        ("Databases", ", ".join(result.databases) or "(none found)"),
        ("Missing privileges", missing),
        ("Dump tool", _tool(result.dump_tool, result.dump_tool_version)),
        ("Client tool", _tool(result.client_tool, result.client_tool_version)),
    ):
        typer.echo(f"{label + ':':<20}{value}")
    if not result.ok:
        fail(result.message)
    typer.echo(f"Source {name!r} is ready to back up.")


def _tool(name: str | None, version: str | None) -> str:
    if name is None:
        return "not found"
    if not version:
        return name
    # The version is the tool's own ``--version`` line, which usually names it already.
    return version if version.startswith(name) else f"{name} {version}"


@app.command("source:remove")
def source_remove(
    name: Annotated[str, typer.Argument(help="The source's name.")],
    delete_backups: Annotated[
        bool,
        typer.Option(
            "--delete-backups",
            help="Also delete its backups and their files (default: keep them, without a source).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Don't ask.")] = False,
) -> None:
    """Remove a source (refused while one of its backups is pending or running)."""
    if not yes and not sys.stdin.isatty():
        fail(f"removing source {name!r} can't be undone: pass --yes to confirm")
    settings = load_settings()

    async def check() -> int:
        """How many backups it has, once it is known to be removable now."""
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = source_service(rt, session)
            source = await service.deletable((await service.by_name(name)).id)
            return len(await service.backup_ids(source))

    count = run(check())
    if not yes:
        fate = "deleted with it" if delete_backups else "kept, without a source"
        if not typer.confirm(f"Remove source {name!r}? Its {count} backup(s) will be {fate}."):
            typer.echo("Nothing was changed.", err=True)
            raise typer.Exit(1)

    async def remove() -> int | None:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = source_service(rt, session)
            # Checked again: a backup may have started while the question was asked.
            source = await service.deletable((await service.by_name(name)).id)
            deleted: int | None = None
            if delete_backups:
                backups = BackupService(
                    session, settings=rt.settings, storage=rt.storage, queue=None, actor=CLI_ACTOR
                )
                deleted = await backups.delete_all_or_none(await service.backup_ids(source))
            await service.delete(source, backups_deleted=deleted)
            return deleted

    deleted = run(remove())
    if deleted is None:
        typer.echo(f"Source {name!r} removed; its backups were kept.")
    else:
        typer.echo(f"Source {name!r} removed with its {deleted} backup(s).")
