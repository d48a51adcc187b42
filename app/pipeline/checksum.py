"""SHA-256 of streamed bytes, hashed off the event loop for large chunks."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

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
