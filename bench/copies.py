"""Writing one dump to two destinations: a tee with backpressure vs a local spool then parallel
uploads (issue 14 item 3). What matters is how long the *dump* is held open (the database's
transaction and its undo history live that long) and the total wall time.

Usage: PYTHONPATH=. .venv/bin/python bench/copies.py [--mib 512] [--slow-mib-s 100]

The "dump" is a producer of 1 MiB chunks that stops only when the consumer takes them (as
mariadb-dump stops when its pipe is full). Destination A is a local directory; destination B is
a local directory behind a throttle of ``--slow-mib-s`` (a bucket over a slower link), or
unthrottled with ``--slow-mib-s 0``. Prints seconds and ratios, one run each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from app.backups.copying import CopyTarget, upload
from app.pipeline.checksum import Sha256Counter
from app.pipeline.tee import tee
from app.storage.base import StorageWriter
from app.storage.local import LocalStorage

CHUNK = 1024 * 1024


class Throttled:
    """A writer that takes at most ``rate`` bytes per second (0: no limit)."""

    def __init__(self, inner: StorageWriter, rate: float) -> None:
        self.inner = inner
        self.key = inner.key
        self.rate = rate
        self.started = time.perf_counter()
        self.written = 0

    async def write(self, chunk: bytes | memoryview) -> None:
        await self.inner.write(chunk)
        self.written += len(chunk)
        if self.rate:
            due = self.started + self.written / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    def thread_writer(self) -> Callable[[memoryview], None] | None:
        return None

    async def commit(self) -> int:
        return await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


class ThrottledStorage(LocalStorage):
    def __init__(self, root: Path, rate: float) -> None:
        super().__init__(root)
        self.rate = rate

    async def open_writer(self, key: str) -> Throttled:  # type: ignore[override]
        return Throttled(await super().open_writer(key), self.rate)


async def dump(total: int, held: list[float]) -> AsyncIterator[bytes]:
    """``total`` bytes in 1 MiB chunks; records when the last one was taken."""
    started = time.perf_counter()
    block = os.urandom(CHUNK)
    for _ in range(total // CHUNK):
        yield block
    held.append(time.perf_counter() - started)


async def with_tee(total: int, a: LocalStorage, b: LocalStorage, key: str) -> tuple[float, float]:
    held: list[float] = []
    started = time.perf_counter()
    writers = [await a.open_writer(key), await b.open_writer(key)]

    async def drain(chunks: AsyncIterator[bytes], writer: StorageWriter) -> None:
        async for chunk in chunks:
            await writer.write(chunk)
        await writer.commit()

    async with tee(dump(total, held), 2) as branches:
        await asyncio.gather(*(drain(c, w) for c, w in zip(branches, writers, strict=True)))
    return held[0], time.perf_counter() - started


async def with_spool(
    total: int, spool: LocalStorage, a: LocalStorage, b: LocalStorage, key: str
) -> tuple[float, float]:
    held: list[float] = []
    started = time.perf_counter()
    writer = await spool.open_writer(key)
    counter = Sha256Counter()
    async for chunk in dump(total, held):
        await counter.update(chunk)
        await writer.write(chunk)
    size = await writer.commit()
    digest = counter.hexdigest()
    results = await asyncio.gather(
        *(
            upload(spool, key, CopyTarget(1, name, storage), size=size, sha256=digest, dest_key=key)
            for name, storage in (("a", a), ("b", b))
        )
    )
    assert all(r.stored for r in results), [r.error for r in results]
    await spool.delete(key)
    return held[0], time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--slow-mib-s", type=float, default=100.0)
    args = parser.parse_args()
    total = args.mib * CHUNK
    rate = args.slow_mib_s * CHUNK
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp)
        print(f"{args.mib} MiB, destination B throttled to {args.slow_mib_s or 'no limit'} MiB/s")
        tee_held, tee_wall = await with_tee(
            total, LocalStorage(root / "tee-a"), ThrottledStorage(root / "tee-b", rate), "d/x.bin"
        )
        spool_held, spool_wall = await with_spool(
            total,
            LocalStorage(root / "spool"),
            LocalStorage(root / "spool-a"),
            ThrottledStorage(root / "spool-b", rate),
            "d/x.bin",
        )
    print(f"tee:   dump held open {tee_held:6.2f} s, wall {tee_wall:6.2f} s")
    print(f"spool: dump held open {spool_held:6.2f} s, wall {spool_wall:6.2f} s")
    held, wall = spool_held / tee_held, spool_wall / tee_wall
    print(f"ratios spool/tee: dump held {held:.2f}x, wall {wall:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
