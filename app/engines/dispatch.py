"""One ``DatabaseEngine`` over the registry: each call goes to the engine of its target.

The backup and restore runners hold one engine; a target's ``scheme`` (``TargetSpec.scheme``:
"mysql"/"mariadb", "postgresql", ...) says whose it is, so sources of every engine run through
the same runners. Calls without a target go to MySQL's (the default target's), except an
upload's verdict, which the archive's first bytes decide.
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

# TargetSpec.scheme -> registry name (a scheme not here is its own name).
SCHEMES = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
    "postgres": "postgresql",
}
DEFAULT = "mysql"


def engine_for(engine: DatabaseEngine, target: TargetSpec) -> DatabaseEngine:
    """``engine``'s engine for ``target`` when it dispatches, else ``engine`` itself."""
    return engine.for_target(target) if isinstance(engine, EngineByTarget) else engine


class EngineByTarget:
    name = "by-target"

    def __init__(self, registry: EngineRegistry) -> None:
        self.registry = registry

    def for_target(self, target: TargetSpec) -> DatabaseEngine:
        return self.registry.get(SCHEMES.get(target.scheme, target.scheme))

    async def probe(self) -> ToolStatus:
        return await self.registry.get(DEFAULT).probe()

    async def estimate_size(self, target: TargetSpec) -> int | None:
        return await self.for_target(target).estimate_size(target)

    async def list_databases(self, target: TargetSpec) -> list[str]:
        return await self.for_target(target).list_databases(target)

    async def check_connection(self, target: TargetSpec) -> ConnectionReport:
        return await self.for_target(target).check_connection(target)

    def judge_upload(self, raw: RawStats) -> DumpVerdict:
        name = "postgresql" if bytes(raw.head).startswith(b"PGDMP") else DEFAULT
        return self.registry.get(name).judge_upload(raw)

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
            target, source, compression=compression, on_progress=on_progress,
            single_stream=single_stream,
        )  # fmt: skip

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
        """Without a target: the default engine's (the restore runner asks ``engine_for``)."""
        return await self.registry.get(DEFAULT).declared_objects(source, compression=compression)
