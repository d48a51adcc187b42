"""The one flow every backup takes, whatever the engine: the engine's raw dump → compress →
SHA-256 and size → the storage writer, then the engine's verdict on completeness.

Engines only produce bytes and judge them (``DatabaseEngine.open_dump``); compression,
hashing and writing are composed here, once, so a new engine (or, next, encryption and several
destinations) changes nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.engines.base import (
    DatabaseEngine,
    EngineError,
    FailureKind,
    ManifestObserver,
    ProgressCallback,
    TargetSpec,
)
from app.pipeline.codecs import PipelineError, Stage
from app.pipeline.compression import Compression
from app.pipeline.splice import PipeSource
from app.pipeline.streams import store_dump
from app.storage.base import StorageError, StorageWriter

# The codecs' levels when the caller names none (DBKEEP_ZSTD_LEVEL / DBKEEP_GZIP_LEVEL's defaults).
DEFAULT_LEVELS = {Compression.zstd: 3, Compression.gzip: 6}


@dataclass(frozen=True)
class DumpOutcome:
    raw_bytes: int  # uncompressed dump size
    stored_bytes: int  # bytes written to storage (after compression)
    sha256: str  # of the stored bytes
    tool_version: str
    server_version: str | None
    # Said when the backup is taken: why restoring it may need more than this server allows.
    warning: str | None = None
    # What the dump holds, counted from its bytes by the engine's observer (None without one).
    manifest: dict[str, Any] | None = None


async def _observed(
    source: PipeSource | AsyncIterator[bytes], observer: ManifestObserver
) -> AsyncIterator[bytes]:
    """The raw dump, every chunk shown to ``observer`` on its way to compression."""
    chunks = source.io.chunks(source.fd) if isinstance(source, PipeSource) else source
    async for chunk in chunks:
        observer.feed(chunk)
        yield chunk


async def dump_into(
    engine: DatabaseEngine,
    target: TargetSpec,
    writer: StorageWriter,
    *,
    compression: Compression,
    level: int | None = None,
    on_progress: ProgressCallback | None = None,
    encryption: Stage | None = None,
    observer: ManifestObserver | None = None,
) -> DumpOutcome:
    """Stream a complete dump of ``target`` into ``writer``; raise ``EngineError`` unless the
    dump is complete and every byte was written. Does not commit or abort the writer: the
    caller publishes it only after recording success. ``observer`` (the engine's manifest
    stage) sees every raw byte; its result is the outcome's ``manifest``."""
    if level is None:
        level = DEFAULT_LEVELS.get(compression, 0)
    async with engine.open_dump(target) as dump:
        try:
            source = dump.source if observer is None else _observed(dump.source, observer)
            raw, stored = await store_dump(
                source,
                writer,
                compression=compression,
                level=level,
                on_progress=on_progress,
                then=encryption,  # app/pipeline/crypto.py: compress → encrypt → sha256 → write
            )
        except StorageError as exc:
            # Leaving ``open_dump`` kills the dump; the storage reason is the one to show.
            kind = FailureKind.transient if exc.transient else FailureKind.permanent
            raise EngineError(exc.message, kind=kind) from None
        except PipelineError as exc:
            raise EngineError(str(exc), kind=FailureKind.permanent) from None
        verdict = await dump.finish(raw)
    return DumpOutcome(
        raw_bytes=raw.raw_bytes,
        stored_bytes=stored.stored_bytes,
        sha256=stored.sha256,
        tool_version=verdict.tool_version,
        server_version=verdict.server_version,
        warning=verdict.warning,
        manifest=verdict.manifest
        if observer is None
        else observer.result(server_version=verdict.server_version),
    )
