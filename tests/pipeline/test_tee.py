"""The tee: one read, every branch gets every chunk in order, failures reach every reader, an
early stop of one branch neither blocks nor starves the others, and nothing runs far ahead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.pipeline.checksum import ChecksumMismatch, verified
from app.pipeline.tee import tee


class Source:
    def __init__(self, chunks: int, *, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.produced = 0
        self.closed = False

    async def __call__(self) -> AsyncIterator[bytes]:
        try:
            for i in range(self.chunks):
                if i == self.fail_at:
                    raise OSError("the disk went away")
                self.produced += 1
                yield f"{i};".encode()
        finally:
            self.closed = True


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_every_branch_gets_every_chunk_from_one_read() -> None:
    source = Source(100)
    async with tee(source(), 3) as branches:
        results = await asyncio.gather(*(collect(b) for b in branches))
    expected = b"".join(f"{i};".encode() for i in range(100))
    assert results == [expected] * 3
    assert source.produced == 100 and source.closed


async def test_a_failure_of_the_source_reaches_every_reader() -> None:
    async with tee(Source(10, fail_at=5)(), 2) as (a, b):
        outcomes = await asyncio.gather(collect(a), collect(b), return_exceptions=True)
    assert all(isinstance(o, OSError) and "disk went away" in str(o) for o in outcomes)


async def test_a_branch_that_stops_early_does_not_block_the_others() -> None:
    source = Source(50)
    async with tee(source(), 2, depth=2) as (a, b):

        async def first_three() -> list[bytes]:
            taken = []
            async for chunk in a:
                taken.append(chunk)
                if len(taken) == 3:
                    break
            await a.aclose()  # type: ignore[attr-defined]
            return taken

        taken, rest = await asyncio.wait_for(asyncio.gather(first_three(), collect(b)), 5)
    assert taken == [b"0;", b"1;", b"2;"]
    assert rest == b"".join(f"{i};".encode() for i in range(50))


async def test_the_source_is_read_at_the_pace_of_the_slowest_branch() -> None:
    source = Source(1000)
    async with tee(source(), 2, depth=4) as (fast, slow):
        fast_task = asyncio.create_task(collect(fast))
        await asyncio.sleep(0.05)
        # The slow branch has read nothing: the source is at most its buffer (plus the chunk
        # in hand) ahead, however fast the other branch is.
        assert source.produced <= 4 + 2
        await collect(slow)
        await fast_task
    assert source.produced == 1000


async def test_leaving_the_tee_stops_reading_the_source() -> None:
    source = Source(1000)
    async with tee(source(), 2, depth=1):
        await asyncio.sleep(0.01)
    assert source.closed and source.produced < 1000


async def test_a_checked_stream_holds_its_last_chunk_until_the_whole_matched() -> None:
    import hashlib

    data = [b"a" * 10, b"b" * 10, b"c" * 10]
    digest = hashlib.sha256(b"".join(data)).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in data:
            yield chunk

    assert await collect(verified(chunks(), size=30, sha256=digest)) == b"".join(data)

    seen: list[bytes] = []
    told: list[bool] = []
    with pytest.raises(ChecksumMismatch, match="the file does not match"):
        async for chunk in verified(
            chunks(), size=30, sha256="0" * 64, on_mismatch=lambda: told.append(True)
        ):
            seen.append(chunk)
    assert seen == data[:2] and told == [True]  # the last chunk never left
