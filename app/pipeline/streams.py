"""The two streaming paths: dump output -> compression -> SHA-256 -> storage, and back.

Memory stays flat whatever the size: chunks are at most 1 MiB and every stage applies
back-pressure (bounded queues, pipes, ``drain()``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from app.pipeline.checksum import Sha256Counter
from app.pipeline.codecs import Stage, decoder, encoder, spliced_encoder
from app.pipeline.compression import Compression
from app.pipeline.fdio import FdIO
from app.pipeline.process import Child
from app.pipeline.splice import PipeSource
from app.pipeline.tail import TailBuffer
from app.storage.base import StorageWriter

log = logging.getLogger(__name__)

DUMP_TRAILER = "-- Dump completed"
_HEAD_BYTES = 2048
_SERVER_VERSION = re.compile(r"^-- Server version\s+(\S+)", re.MULTILINE)


@dataclass
class RawStats:
    """What was seen of the uncompressed dump: its size, first and last bytes."""

    raw_bytes: int = 0
    head: bytearray = field(default_factory=bytearray)
    tail: TailBuffer = field(default_factory=lambda: TailBuffer(4096))

    def feed(self, chunk: bytes) -> None:
        self.raw_bytes += len(chunk)
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[: _HEAD_BYTES - len(self.head)]
        self.tail.feed(chunk)

    def has_trailer(self) -> bool:
        """True when the last non-empty line is the dump tool's completion comment."""
        return self.raw_bytes > 0 and self.tail.last_line().startswith(DUMP_TRAILER)

    def server_version(self) -> str | None:
        """The server version the dump header names, if any."""
        match = _SERVER_VERSION.search(self.head.decode("utf-8", errors="replace"))
        return match.group(1) if match else None


class ProgressThrottle:
    """Forward byte counts to a callback at most once per ``interval`` seconds."""

    def __init__(
        self, callback: Callable[[int], Awaitable[None]] | None, interval: float = 1.0
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._last = time.monotonic()

    async def update(self, total: int) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        try:
            await self._callback(total)
        except Exception:
            # Progress is cosmetic: a failing status update must not fail the backup.
            log.warning("progress callback failed", exc_info=True)


async def _observe(
    source: AsyncIterator[bytes], stats: RawStats, progress: ProgressThrottle
) -> AsyncIterator[bytes]:
    async for chunk in source:
        stats.feed(chunk)
        await progress.update(stats.raw_bytes)
        yield chunk


@dataclass(frozen=True)
class StoredStats:
    stored_bytes: int
    sha256: str


async def store_dump(
    raw: AsyncIterator[bytes] | PipeSource,
    writer: StorageWriter,
    *,
    compression: Compression,
    level: int,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    then: Stage | None = None,
) -> tuple[RawStats, StoredStats]:
    """Compress ``raw`` into ``writer``, hashing the stored bytes; does not commit the writer.

    ``raw`` is a stream of chunks, or the pipe a dump tool writes into: then, with an external
    zstd, the uncompressed bytes go from one pipe to the other without entering this process.
    ``then`` (encryption) transforms the compressed stream; the hash is of what it produces.
    """
    stats = RawStats()
    progress = ProgressThrottle(on_progress)
    hasher = Sha256Counter()
    stage = spliced_encoder(compression, level=level) if isinstance(raw, PipeSource) else None
    if isinstance(raw, PipeSource) and stage is not None:

        async def on_moved(count: int, data: bytes) -> None:
            if data:
                stats.feed(data)  # the head or the tail
            else:
                stats.raw_bytes += count
            await progress.update(stats.raw_bytes)

        write_here = writer.thread_writer() if then is None else None
        if write_here is not None:
            # Hashed and written in the I/O thread that reads it (see ``FdIO.pumped``).
            def consume(chunk: memoryview) -> None:
                hasher.add(chunk)
                write_here(chunk)

            async with stage(raw, on_moved, lambda io, fd: io.pumped(fd, consume)) as moved:
                async for _count in moved:
                    pass  # progress is counted on the uncompressed side
        else:
            async with stage(raw, on_moved, FdIO.chunks) as stored:
                await _hash_and_write(stored, hasher, writer, then)
    else:
        chunks = raw.io.chunks(raw.fd) if isinstance(raw, PipeSource) else raw
        compressed = encoder(compression, level=level)(_observe(chunks, stats, progress))
        async with compressed as stored:
            await _hash_and_write(stored, hasher, writer, then)
    return stats, StoredStats(stored_bytes=hasher.size, sha256=hasher.hexdigest())


async def _hash_and_write(
    chunks: AsyncIterator[bytes],
    hasher: Sha256Counter,
    writer: StorageWriter,
    then: Stage | None = None,
) -> None:
    if then is not None:
        async with then(chunks) as transformed:
            await _hash_and_write(transformed, hasher, writer)
        return
    async for chunk in chunks:
        await hasher.update(chunk)
        await writer.write(chunk)


async def load_dump(
    source: AsyncIterator[bytes],
    sink: Child,
    *,
    compression: Compression,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> RawStats:
    """Decompress ``source`` into the child's stdin; raises ``BrokenPipeError`` if it left."""
    stats = RawStats()
    progress = ProgressThrottle(on_progress)
    async with decoder(compression)(source) as raw:
        async for chunk in _observe(raw, stats, progress):
            sink.stdin.write(chunk)
            await sink.stdin.drain()
    return stats
