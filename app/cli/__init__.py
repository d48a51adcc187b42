"""The ``dbkeep`` command line: one Typer app, commands registered from one module per area."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="dbkeep",
    help="dbkeep: self-hosted database backup manager.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Which module defines a command: a command imports only its own module (the backup commands
# need neither FastAPI nor uvicorn), which shortens every run by ~0.15 s. ``--help`` and
# unknown words import them all.
_MODULES = (
    "app.cli.backups",
    "app.cli.users",
    "app.cli.server",
    "app.cli.keys",
    "app.cli.sources",
    "app.cli.destinations",
)
_COMMAND_PREFIXES = {
    "backup:": "app.cli.backups",
    "migrate": "app.cli.backups",
    "user:": "app.cli.users",
    "token:": "app.cli.users",
    "serve": "app.cli.server",
    "worker": "app.cli.server",
    "key:": "app.cli.keys",
    "source:": "app.cli.sources",
    "destination:": "app.cli.destinations",
}


def _modules_for(argv: list[str]) -> tuple[str, ...]:
    command = argv[1] if len(argv) > 1 else ""
    for prefix, module in _COMMAND_PREFIXES.items():
        if command == prefix or (prefix.endswith(":") and command.startswith(prefix)):
            return (module,)
    return _MODULES


def _register(argv: list[str] | None = None) -> None:
    # Each module adds its commands to ``app`` when imported.
    import importlib

    for module in _modules_for(sys.argv if argv is None else argv):
        importlib.import_module(module)


def main() -> None:
    _register()
    app()
