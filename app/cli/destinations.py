"""``dbkeep destination:*``: add, list and test where backups are stored.

An S3 secret key never goes through argv: it comes from DBKEEP_S3_SECRET_ACCESS_KEY (and the key
id from DBKEEP_S3_ACCESS_KEY_ID) or, when those are unset, from standard input (asked for
without echo at a terminal). Nothing here prints a secret: views carry none.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

from app.audit.service import Actor
from app.bootstrap import open_bootstrap
from app.cli import app
from app.cli.common import fail, load_settings, run
from app.destinations.schemas import DestinationCreate, DestinationRead, DestinationTest
from app.destinations.service import DestinationService, DestinationView

CLI_ACTOR = Actor.system("cli")
ACCESS_KEY_ENV = "DBKEEP_S3_ACCESS_KEY_ID"
SECRET_KEY_ENV = "DBKEEP_S3_SECRET_ACCESS_KEY"  # noqa: S105 (a variable name)


def _from_stdin(label: str) -> str:
    if sys.stdin.isatty():
        return str(typer.prompt(label, hide_input=True)).strip()
    line = sys.stdin.readline().strip()
    if not line:
        fail(f"{label}: set {ACCESS_KEY_ENV} / {SECRET_KEY_ENV} or write it on standard input")
    return line


def _s3_keys() -> tuple[str, str]:
    key_id = os.environ.get(ACCESS_KEY_ENV) or _from_stdin("S3 access key id")
    secret = os.environ.get(SECRET_KEY_ENV) or _from_stdin("S3 secret access key")
    return key_id, secret


@app.command("destination:add")
def destination_add(
    name: Annotated[str, typer.Argument(help="A unique name: [a-z0-9][a-z0-9_-]*.")],
    kind: Annotated[str, typer.Argument(help="local or s3.")],
    path: Annotated[str | None, typer.Argument(help="local: an absolute directory.")] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="s3: the endpoint URL.")
    ] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="s3: the bucket.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="s3: a key prefix.")] = "",
    region: Annotated[str | None, typer.Option("--region", help="s3: the region.")] = None,
    path_style: Annotated[
        bool, typer.Option("--path-style", help="s3: path-style addressing.")
    ] = False,
) -> None:
    """Add a destination: ``NAME local PATH`` or ``NAME s3 --endpoint URL --bucket B``."""
    config: dict[str, Any]
    if kind == "local":
        if not path:
            fail("destination:add NAME local PATH: give the directory")
        config = {"path": os.path.abspath(path)}
    elif kind == "s3":
        if not bucket:
            fail("destination:add NAME s3: --bucket is required")
        key_id, secret = _s3_keys()
        config = {
            "endpoint_url": endpoint,
            "bucket": bucket,
            "prefix": prefix,
            "region": region,
            "access_key_id": key_id,
            "secret_access_key": secret,
            "force_path_style": path_style,
        }
    else:
        fail(f"unknown kind {kind!r}: use local or s3")
    try:
        data = DestinationCreate(name=name, kind=kind, config=config)  # type: ignore[arg-type]
    except ValueError as exc:
        fail(f"invalid destination: {str(exc).splitlines()[0]}")
    settings = load_settings()

    async def main() -> DestinationView:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = DestinationService(session, actor=CLI_ACTOR)
            return await service.view(await service.create(data))

    view = run(main())
    typer.echo(f"Destination {view.name!r} added (id {view.id}, {view.kind}).")


@app.command("destination:list")
def destination_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's objects.")] = False,
) -> None:
    """List the destinations: kind, where, objects and bytes stored, free space."""
    settings = load_settings()

    async def main() -> list[DestinationView]:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            return await DestinationService(session, actor=CLI_ACTOR).overview()

    views = run(main())
    if as_json:
        rows = [
            DestinationRead.model_validate(v, from_attributes=True).model_dump(mode="json")
            for v in views
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for view in views:
        where = view.config.get("path") or (
            f"{view.config.get('endpoint_url') or 's3'}/{view.config.get('bucket')}"
        )
        free = "-" if view.free_bytes is None else f"{view.free_bytes} free"
        typer.echo(
            f"{view.id}\t{view.name}\t{view.kind}\t{where}\t{view.objects_stored} objects\t"
            f"{view.bytes_stored} bytes\t{free}"
        )


@app.command("destination:test")
def destination_test(name: Annotated[str, typer.Argument(help="The destination's name.")]) -> None:
    """Write, read back and delete a probe object. Exit status 0 only when every step works."""
    settings = load_settings()

    async def main() -> DestinationTest:
        async with open_bootstrap(settings) as rt, rt.database.sessionmaker() as session:
            service = DestinationService(session, actor=CLI_ACTOR)
            return await service.test((await service.by_name(name)).id)

    result = run(main())
    for step in result.steps:
        typer.echo(f"{step.name}: {'ok' if step.ok else 'FAILED'} — {step.message}")
    typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(1)
