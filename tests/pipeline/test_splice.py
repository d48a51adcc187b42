"""Splicing a dump pipe into zstd's: every byte arrives, head and tail are seen, nothing hangs."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.pipeline import codecs, splice
from app.pipeline.codecs import PipelineError, decompress_stream, zstd_binary
from app.pipeline.compression import Compression
from app.pipeline.fdio import fd_io
from app.pipeline.process import spawn
from app.pipeline.splice import PipeSource
from app.pipeline.streams import store_dump

pytestmark = pytest.mark.skipif(not splice.supported(), reason="needs Linux splice()")


def _pipe(enlarged: bool = True) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    if enlarged:
        fcntl.fcntl(write_fd, 1031, 1024 * 1024)  # F_SETPIPE_SZ
    return read_fd, write_fd


def _writer(fd: int, data: bytes, *, seed: int) -> threading.Thread:
    """Write ``data`` in uneven pieces with pauses, like a dump tool, then close ``fd``."""

    def run() -> None:
        rng = random.Random(seed)
        view = memoryview(data)
        try:
            while view:
                piece = rng.choice((100, 6000, 70_000, 300_000))
                view = view[os.write(fd, view[:piece]) :]
                if rng.random() < 0.05:
                    time.sleep(0.003)
        except BrokenPipeError:
            pass  # the reader left (a test does that on purpose)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _reader(fd: int, sink: bytearray) -> threading.Thread:
    def run() -> None:
        while chunk := os.read(fd, 1 << 20):
            sink.extend(chunk)
        os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("size", [0, 10, 70_000, 3_000_000, 9_000_000])
@pytest.mark.parametrize("enlarged", [True, False], ids=["1MiB-pipes", "64KiB-pipes"])
async def test_every_byte_arrives_and_head_and_tail_are_seen(size: int, enlarged: bool) -> None:
    data = random.Random(size).randbytes(size)
    moved: list[tuple[int, bytes]] = []

    async def on_moved(count: int, chunk: bytes) -> None:
        moved.append((count, chunk))

    received = bytearray()
    src_r, src_w = _pipe(enlarged)
    dst_r, dst_w = _pipe(enlarged)
    writer = _writer(src_w, data, seed=size)
    reader = _reader(dst_r, received)
    async with fd_io() as io:
        await asyncio.wait_for(splice.forward(io, src_r, dst_w, on_moved), 60)
    os.close(dst_w)
    await asyncio.to_thread(reader.join, 30)
    writer.join(30)
    os.close(src_r)

    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    assert sum(count for count, _ in moved) == size
    shown = [chunk for _, chunk in moved if chunk]
    head = b"".join(shown)[: splice.HEAD_BYTES]
    assert head == data[: splice.HEAD_BYTES]
    if size:
        last = moved[-1][1]
        assert data.endswith(last)
        assert len(last) >= min(size - splice.HEAD_BYTES, 16 * 1024)


async def test_a_reader_that_leaves_raises_broken_pipe() -> None:
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    os.close(dst_r)
    _writer(src_w, b"x" * 5_000_000, seed=1)

    async def on_moved(count: int, chunk: bytes) -> None:
        return None

    async with fd_io() as io:
        with pytest.raises(BrokenPipeError):
            await asyncio.wait_for(splice.forward(io, src_r, dst_w, on_moved), 30)
    os.close(src_r)  # the writer thread gets EPIPE and stops
    os.close(dst_w)


async def test_cancelling_returns_promptly_while_the_writer_stalls() -> None:
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    os.write(src_w, b"y" * 200_000)  # then nothing more, and the writer never closes

    async def on_moved(count: int, chunk: bytes) -> None:
        return None

    async with fd_io() as io:
        task = asyncio.create_task(splice.forward(io, src_r, dst_w, on_moved))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # fd_io's exit waited for the splicing thread: it came back within its step limit.
    assert time.monotonic() - started < 2
    for fd in (src_r, src_w, dst_r, dst_w):
        os.close(fd)


class Collect:
    """A storage writer keeping what it is given; writes from a thread when ``in_thread``."""

    key = "x"

    def __init__(self, *, in_thread: bool) -> None:
        self.in_thread = in_thread
        self.data = bytearray()
        self.buffers: set[int] = set()
        self.threads: set[int] = set()

    def thread_writer(self) -> Callable[[memoryview], None] | None:
        return self._from_thread if self.in_thread else None

    def _from_thread(self, chunk: memoryview) -> None:
        self.buffers.add(id(chunk.obj))
        self.threads.add(threading.get_ident())
        self.data += chunk

    async def write(self, chunk: bytes | memoryview) -> None:
        self.data += chunk

    async def commit(self) -> int:
        return len(self.data)

    async def abort(self) -> None:
        return None


@pytest.mark.skipif(zstd_binary() is None, reason="needs the zstd command")
@pytest.mark.parametrize("in_thread", [True, False], ids=["thread-writer", "loop-writer"])
@pytest.mark.parametrize("complete", [True, False], ids=["complete", "cut"])
async def test_store_dump_from_a_pipe_sees_size_version_and_trailer(
    complete: bool, in_thread: bool
) -> None:
    body = b"".join(
        b"INSERT INTO t VALUES (%d,'%s');\n" % (i, b"v" * (i % 97)) for i in range(200_000)
    )
    dump = b"-- MariaDB dump\n-- Server version\t10.11.19-MariaDB\n\n" + body
    if complete:
        dump += b"\n-- Dump completed on 2024-01-01 00:00:00\n"

    sink = Collect(in_thread=in_thread)
    feed = _feeding(dump)
    async with fd_io() as io:
        read_end, write_end = io.pipe()
        async with spawn(["cat"], stdin=feed, stdout=write_end) as child:
            os.close(feed)
            io.close(write_end)
            stats, stored = await store_dump(
                PipeSource(io, read_end), sink, compression=Compression.zstd, level=3
            )
            assert await child.wait() == 0

    assert stats.raw_bytes == len(dump)
    assert stats.server_version() == "10.11.19-MariaDB"
    assert stats.has_trailer() is complete
    assert stored.stored_bytes == len(sink.data) < len(dump) // 5
    assert stored.sha256 == hashlib.sha256(sink.data).hexdigest()
    if in_thread:
        # Hashed and written in the reading thread, from one reused buffer.
        assert len(sink.buffers) == 1
        assert sink.threads and threading.get_ident() not in sink.threads

    async def chunks() -> AsyncIterator[bytes]:
        yield bytes(sink.data)

    restored = b"".join([c async for c in decompress_stream(chunks(), Compression.zstd)])
    assert restored == dump


def _feeding(data: bytes) -> int:
    """A pipe's read end that yields ``data`` then end of file (fed by a thread)."""
    read_fd, write_fd = os.pipe()
    _writer(write_fd, data, seed=7)
    return read_fd


@pytest.mark.parametrize("in_thread", [True, False], ids=["thread-writer", "loop-writer"])
async def test_a_compressor_dying_mid_stream_fails_the_dump(
    in_thread: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "zstd" that takes some input, writes a little, then dies as an out-of-memory kill would.
    fake = tmp_path / "zstd"
    fake.write_text(
        "#!/bin/sh\n"
        "head -c 300000 >/dev/null\n"
        "printf 'partial'\n"
        "echo 'zstd: killed' >&2\n"
        "exit 137\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(codecs, "zstd_binary", lambda: str(fake))
    sink = Collect(in_thread=in_thread)
    feed = _feeding(b"INSERT INTO t VALUES (1);\n" * 200_000)
    started = time.monotonic()
    with pytest.raises(PipelineError, match=r"the zstd compressor failed \(exit status 137\)"):
        async with fd_io() as io:
            read_end, write_end = io.pipe()
            async with spawn(["cat"], stdin=feed, stdout=write_end):
                os.close(feed)
                io.close(write_end)
                await store_dump(
                    PipeSource(io, read_end), sink, compression=Compression.zstd, level=3
                )
    assert time.monotonic() - started < 10  # nothing waited for a reader that was gone
    assert bytes(sink.data) == b"partial"
