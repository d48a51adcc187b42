"""``dbkeep user:*`` (create, list, disable, enable, delete, unlock) and ``token:*``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from app.auth.models import Role
from app.auth.passwords import validate_new_password
from app.auth.service import AuthService
from app.auth.throttle import is_blocked, wait_seconds
from app.cli import app
from app.cli.common import fail, load_settings, run
from app.db import Database

T = TypeVar("T")


def _read_password(from_stdin: bool) -> str:
    # A terminal is asked (twice); anything else on standard input (a pipe, a file) is read as
    # the password, with or without --password-stdin.
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail(
                "no password given: write it on standard input (--password-stdin) "
                "or run on a terminal"
            )
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
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
    """Create a user; the password is prompted for (twice), or read from standard input when
    that is not a terminal (a pipe) or with --password-stdin."""
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


def _with_service(action: Callable[[AuthService], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                return await action(AuthService(session, settings=settings))
        finally:
            await database.dispose()

    return run(go())


EmailArg = Annotated[str, typer.Argument(help="The user's e-mail address.")]


@app.command("user:list")
def user_list() -> None:
    """List users: role, state (active/disabled) and login throttling (locked, failures)."""

    async def listing(auth: AuthService) -> list[str]:
        lines = []
        for user, states in await auth.list_users():
            state = "active" if user.is_active else "disabled"
            notes = []
            for key in states:
                where = "any address" if not key.client_ip else key.client_ip
                if key.blocked_until is not None and is_blocked(key):
                    notes.append(
                        f"locked for {wait_seconds(key.blocked_until)}s from {where} "
                        f"({key.failures} failures)"
                    )
                elif key.failures:
                    notes.append(f"{key.failures} failed logins from {where}")
            login = (
                user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
            )
            throttle = "; ".join(notes) if notes else "not throttled"
            lines.append(
                f"{user.id}\t{user.email}\t{user.role.value}\t{state}\t"
                f"last login {login}\t{throttle}"
            )
        return lines

    for line in _with_service(listing) or ["(no users)"]:
        typer.echo(line)


@app.command("user:unlock")
def user_unlock(email: EmailArg) -> None:
    """Forget a user's failed logins (from every address): they may log in at once."""

    async def go(auth: AuthService) -> str:
        removed = await auth.unlock_user(email)
        return f"Unlocked {email.strip().lower()} ({removed} login counters cleared)."

    typer.echo(_with_service(go))


@app.command("user:disable")
def user_disable(email: EmailArg) -> None:
    """Disable a user: no login, and their sessions and API tokens stop working at once."""

    async def go(auth: AuthService) -> str:
        user = await auth.disable_user(email)
        return f"Disabled {user.email}; their sessions and API tokens no longer work."

    typer.echo(_with_service(go))


@app.command("user:enable")
def user_enable(email: EmailArg) -> None:
    """Let a disabled user log in again (tokens made before user:disable stay revoked)."""

    async def go(auth: AuthService) -> str:
        user = await auth.enable_user(email)
        return f"Enabled {user.email}."

    typer.echo(_with_service(go))


@app.command("user:delete")
def user_delete(
    email: EmailArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Don't ask for confirmation on a terminal.")
    ] = False,
) -> None:
    """Delete a user with their sessions and API tokens (the audit log keeps their e-mail)."""
    if not yes and sys.stdin.isatty() and not typer.confirm(f"Delete {email}?", default=False):
        fail("not deleted")

    async def go(auth: AuthService) -> str:
        user = await auth.delete_user(email)
        return f"Deleted {user.email} (id {user.id}), their sessions and API tokens."

    typer.echo(_with_service(go))
