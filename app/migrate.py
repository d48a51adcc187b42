"""Run Alembic migrations from code (``dbkeep migrate``, start-up, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


# Alembic is imported when a migration runs, not by every command that imports this module: it
# costs a CLI backup about 11 MiB of memory it would never use.


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_head(database_url: str) -> None:
    """Bring the metadata store to the newest schema; safe to run any number of times."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


async def upgrade_head_async(database_url: str) -> None:
    # env.py drives its own event loop, so run it in a thread when one is already running.
    await asyncio.to_thread(upgrade_head, database_url)
