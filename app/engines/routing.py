"""One ``DatabaseEngine`` over all of them: each call goes to the engine of its target's scheme.

The backup and restore runners hold one engine; a source's target (``TargetSpec.scheme``) says
which engine serves it, so the runners need not know there are several.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from app.engines.base import (
    ConnectionReport,
    DatabaseEngine,
    DatabaseOptions,
    DbObject,
    DumpVerdict,
    ProgressCallback,
    RunningDump,
    SchemaState,
    TargetSpec,
    ToolStatus,
)
from app.engines.registry import EngineRegistry
from app.pipeline.compression import Compression
from app.pipeline.streams import RawStats

# URL scheme -> engine name (``sources.engine``).
ENGINE_OF_SCHEME = {"mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
ENGINE_OF_SCHEME["postgresql"] = ENGINE_OF_SCHEME["postgres"] = "postgresql"
DEFAULT_ENGINE = "mysql"  # part 1's: DBKEEP_TARGET_URL is MySQL/MariaDB


class RoutingEngine:
    """Each call to the engine of ``target.scheme``; calls without a target to MySQL's."""

    def __init__(self, engines: EngineRegistry) -> None:
        self.engines = engines
        self.name = DEFAULT_ENGINE

    def for_target(self, target: TargetSpec) -> DatabaseEngine:
        return self.engines.get(ENGINE_OF_SCHEME.get(target.scheme, target.scheme))

    @property
    def _default(self) -> DatabaseEngine:
        return self.engines.get(DEFAULT_ENGINE)

    async def probe(self) -> ToolStatus:
        return await self._default.probe()

    async def estimate_size(self, target: TargetSpec) -> int | None:
        return await self.for_target(target).estimate_size(target)

    async def list_databases(self, target: TargetSpec) -> list[str]:
        return await self.for_target(target).list_databases(target)

    async def check_connection(self, target: TargetSpec) -> ConnectionReport:
        return await self.for_target(target).check_connection(target)

    def judge_upload(self, raw: RawStats) -> DumpVerdict:
        if bytes(raw.head).startswith(b"PGDMP"):  # a pg_dump custom-format archive
            return self.engines.get("postgresql").judge_upload(raw)
        return self._default.judge_upload(raw)

    def open_dump(self, target: TargetSpec) -> AbstractAsyncContextManager[RunningDump]:
        return self.for_target(target).open_dump(target)

    async def restore(
        self,
        target: TargetSpec,
        source: AsyncIterator[bytes],
        *,
        compression: Compression,
        on_progress: ProgressCallback | None = None,
        single_stream: bool = False,
    ) -> None:
        await self.for_target(target).restore(
            target,
            source,
            compression=compression,
            on_progress=on_progress,
            single_stream=single_stream,
        )

    async def recreate_database(
        self, target: TargetSpec, *, options: DatabaseOptions | None = None
    ) -> None:
        await self.for_target(target).recreate_database(target, options=options)

    async def drop_database(self, target: TargetSpec) -> None:
        await self.for_target(target).drop_database(target)

    async def inspect(self, target: TargetSpec) -> SchemaState:
        return await self.for_target(target).inspect(target)

    async def declared_objects(
        self, source: AsyncIterator[bytes], *, compression: Compression
    ) -> set[DbObject]:
        return await self._default.declared_objects(source, compression=compression)


def engine_for(engine: DatabaseEngine, target: TargetSpec) -> DatabaseEngine:
    """The engine that serves ``target``: ``engine`` itself unless it routes."""
    return engine.for_target(target) if isinstance(engine, RoutingEngine) else engine
