"""``dbkeep user:create``, ``token:create``, ``token:list`` and ``token:revoke``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.auth.models import Role
from app.auth.passwords import validate_new_password
from app.auth.service import AuthService
from app.cli import app
from app.cli.common import fail, load_settings, run
from app.db import Database


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        fail("no password given: pass --password-stdin and write it on standard input")
    try:
        validate_new_password(password)
    except ValueError as exc:
        fail(str(exc))
    return password


@app.command("user:create")
def user_create(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (their login).")],
    role: Annotated[Role, typer.Option(help="admin may manage backups; viewer may not.")] = (
        Role.viewer
    ),
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input."),
    ] = False,
) -> None:
    """Create a user; the password is prompted for (twice) or read from standard input."""
    password = _read_password(password_stdin)
    settings = load_settings()

    async def create() -> str:
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                user = await AuthService(session, settings=settings).create_user(
                    email=email, password=password, role=role
                )
                return f"Created {user.role.value} {user.email} (id {user.id})."
        finally:
            await database.dispose()

    typer.echo(run(create()))


@app.command("token:create")
def token_create(
    email: Annotated[str, typer.Argument(help="Whose token it is.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Stop working after this many days.")
    ] = None,
) -> None:
    """Create an API token and print it once (use it as 'Authorization: Bearer <token>')."""
    settings = load_settings()

    async def create() -> tuple[int, str]:
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                row, token = await AuthService(session, settings=settings).create_api_token(
                    email=email, name=name, expires_in_days=expires_in_days
                )
                return row.id, token
        finally:
            await database.dispose()

    token_id, token = run(create())
    typer.echo(f"Token {token_id} created; it is shown only this once:", err=True)
    typer.echo(token)


@app.command("token:list")
def token_list(email: Annotated[str, typer.Argument(help="Whose tokens to list.")]) -> None:
    """List a user's API tokens (their first characters only)."""
    settings = load_settings()

    async def listing() -> list[str]:
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                tokens = await AuthService(session, settings=settings).list_api_tokens(email)
        finally:
            await database.dispose()
        lines = []
        for t in tokens:
            state = "revoked" if t.revoked_at else "active"
            used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
            lines.append(f"{t.id}\t{t.token_prefix}…\t{t.name}\t{state}\tlast used {used}")
        return lines

    for line in run(listing()) or ["(no tokens)"]:
        typer.echo(line)


@app.command("token:revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(min=1, help="The token's id.")]) -> None:
    """Revoke an API token: it stops working at once."""
    settings = load_settings()

    async def revoke() -> str:
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                row = await AuthService(session, settings=settings).revoke_api_token(token_id)
                return f"Token {row.id} ({row.name}) is revoked."
        finally:
            await database.dispose()

    typer.echo(run(revoke()))
