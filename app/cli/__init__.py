"""The ``dbkeep`` command line: one Typer app, commands registered from one module per area."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dbkeep",
    help="dbkeep: self-hosted database backup manager.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each module adds its commands to ``app`` when imported; a missing area is skipped so a partial
    # install still offers the rest.
    import importlib

    for module in ("app.cli.backups", "app.cli.users", "app.cli.server"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main() -> None:
    _register()
    app()
