"""SHA-256 of streamed bytes, hashed off the event loop for large chunks, and streams checked
against a recorded size and SHA-256 as they are read."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable

from app.pipeline.codecs import CorruptStream

# Below this, hashing takes microseconds: a thread hop would cost more than it saves.
_INLINE_LIMIT = 64 * 1024


class Sha256Counter:
    """Running SHA-256 and byte count of everything passed to ``update``."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    async def update(self, chunk: bytes | memoryview) -> None:
        if len(chunk) > _INLINE_LIMIT:
            # hashlib releases the GIL for large buffers, so this runs beside the event loop.
            await asyncio.to_thread(self.add, chunk)
        else:
            self.add(chunk)

    def add(self, chunk: bytes | memoryview) -> None:
        """``update`` for a caller already off the event loop (one thread at a time)."""
        self.size += len(chunk)
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def sha256_of(stream: AsyncIterator[bytes]) -> tuple[str, int]:
    """Return (hex SHA-256, size in bytes) of everything ``stream`` yields."""
    counter = Sha256Counter()
    async for chunk in stream:
        await counter.update(chunk)
    return counter.hexdigest(), counter.size


class ChecksumMismatch(CorruptStream):
    """The bytes read are not the ones recorded (size or SHA-256)."""


async def verified(
    chunks: AsyncIterator[bytes],
    *,
    size: int,
    sha256: str | None,
    what: str = "the file",
    on_mismatch: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """``chunks`` as they are, checked against the recorded size and SHA-256 on the way.

    Each chunk is passed on only once the next one was read, and the last only after the whole
    stream matched: a mismatch raises ``ChecksumMismatch`` before the reader has every byte, so
    a download ends in an error (an aborted response), never in a complete-looking wrong file,
    and a restore never reaches the dump's last statements and completion line. ``on_mismatch``
    is told first (whoever reads may only see an error of its own making from it).
    """
    counter = Sha256Counter()
    held: bytes | None = None
    try:
        async for chunk in chunks:
            await counter.update(chunk)
            if counter.size > size:
                break
            if held is not None:
                yield held
            held = chunk
        if counter.size != size or (sha256 is not None and counter.hexdigest() != sha256):
            if on_mismatch is not None:
                on_mismatch()
            raise ChecksumMismatch(f"{what} does not match its recorded size and SHA-256")
        if held is not None:
            yield held
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
