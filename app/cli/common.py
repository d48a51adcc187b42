"""What every CLI command shares: running async code, one-line errors, settings."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from app.config import Settings, get_settings
from app.errors import AppError
from app.logs import configure_logging, redact_text
from app.migrate import upgrade_head

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line on stderr and exit non-zero."""
    typer.echo(f"dbkeep: error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The settings, with logging configured; an invalid setting is one line and exit 1."""
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's message names the variable that is wrong
        fail(f"invalid settings: {str(exc).splitlines()[0]} — {_first_detail(exc)}")
    configure_logging(settings)
    return settings


def _first_detail(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    return " ".join(lines[:2])


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn the errors a person can act on into one line and exit status 1."""
    try:
        return asyncio.run(coro)
    except AppError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        typer.echo("dbkeep: interrupted", err=True)
        sys.exit(130)


def migrate_or_fail(settings: Settings) -> None:
    """Bring the metadata store to the newest schema, or exit with one line saying why not."""
    try:
        upgrade_head(settings.database_url)
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0][:300]
        fail(
            f"could not migrate the metadata store: {type(exc).__name__}: {redact_text(first_line)}"
        )
