"""One stream read once, handed to several readers (a restore's load and its object scan; next,
several destinations): each branch gets every chunk, in order, at the pace of the slowest.

Each branch buffers at most ``depth`` chunks, so memory stays bounded whatever the stream's size.
A failure of the source reaches every branch still reading, as the same exception. A branch
closed early (its reader stopped) is skipped from then on; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Branch:
    def __init__(self, depth: int) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                assert isinstance(item, bytes)
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop taking chunks; what is queued is dropped so the feeder never waits on us."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()


async def _feed(source: AsyncIterator[bytes], branches: list[_Branch]) -> None:
    end: object = _END
    try:
        async for chunk in source:
            for branch in branches:
                if not branch.closed:
                    await branch.queue.put(chunk)
            if all(branch.closed for branch in branches):
                break
    except Exception as exc:
        end = _Failed(exc)
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    for branch in branches:
        if not branch.closed:
            await branch.queue.put(end)


@asynccontextmanager
async def tee(
    source: AsyncIterator[bytes], branches: int, *, depth: int = 4
) -> AsyncIterator[list[AsyncIterator[bytes]]]:
    """``async with tee(stream, 2) as (a, b)``: two iterators over ``stream``, read once."""
    if branches < 1:
        raise ValueError("a tee needs at least one branch")
    parts = [_Branch(depth) for _ in range(branches)]
    feeder = asyncio.create_task(_feed(source, parts))
    try:
        yield [part.chunks() for part in parts]
    finally:
        for part in parts:
            part.close()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
