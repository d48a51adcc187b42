"""The PostgreSQL engine (``postgresql://`` sources)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.engines.postgres.engine import PostgresEngine

if TYPE_CHECKING:
    from app.engines import EngineSettings

__all__ = ["PostgresEngine", "postgres_engine"]


def postgres_engine(settings: EngineSettings) -> PostgresEngine:
    """The PostgreSQL engine: tools found on this machine, restores in ``restore_parallelism``
    pg_restore jobs, spooled under the var directory."""
    return PostgresEngine(
        restore_parallelism=settings.restore_parallelism,
        spool_dir=settings.var_dir / "restore-spool",
    )
