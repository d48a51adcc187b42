"""Pipe I/O for the hot path: large OS pipes, blocking reads and writes in our own threads.

asyncio's pipe transports read at most 64 KiB per wake-up from a default pipe, which costs more
CPU than compressing. A 1 MiB pipe read with a blocking ``os.read`` in a worker thread moves the
same bytes for a tenth of that. The threads belong to one pipeline: on exit we wait for them
(they finish once the children on the other ends are gone) before closing any descriptor, so a
descriptor is never closed under a thread still using it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

_T = TypeVar("_T")

PIPE_SIZE = 1024 * 1024
CHUNK_SIZE = 1024 * 1024
# ``pumped`` reads into one buffer for the whole stream: compressed output arrives at ~30 MB/s, so
# 256 KiB reads are ~120 syscalls a second, and the process keeps 0.75 MiB less than with 1 MiB.
PUMP_BUFFER_SIZE = 256 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SHORT_READ = 64 * 1024
_NAP_SECONDS = 0.002
_STEP_SECONDS = 0.25
_STEP_BYTES = 16 * 1024 * 1024


def _read_some(fd: int, size: int, at_least: int) -> bytes:
    """Read until ``at_least`` bytes (or end of file), at most ``size``.

    Dump tools write about 6 KiB at a time: reading each write as it lands costs a wake-up and a
    syscall per write (0.6 s of system time for a 230 MB dump). After a short read we let the
    pipe fill for a moment instead; a 1 MiB pipe holds ~10 ms of a fast dump, far above the nap.
    """
    parts = []
    total = 0
    while total < at_least:
        chunk = os.read(fd, size - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if len(chunk) < _SHORT_READ and total < at_least:
            time.sleep(_NAP_SECONDS)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_into(fd: int, buffer: memoryview, at_least: int) -> int:
    """``_read_some`` into ``buffer`` instead of new bytes; the count read (0 at end of file)."""
    total = 0
    while total < at_least:
        count = os.readv(fd, [buffer[total:]])
        if not count:
            break
        total += count
        if count < _SHORT_READ and total < at_least:
            time.sleep(_NAP_SECONDS)
    return total


def _pump(fd: int, buffer: memoryview, consume: Callable[[memoryview], None], at_least: int) -> int:
    """Read into ``buffer`` and pass each chunk to ``consume`` for up to ~250 ms or 16 MiB.

    Returns the bytes moved, 0 once the writer has closed the pipe and it is empty.
    """
    moved = 0
    deadline = time.monotonic() + _STEP_SECONDS
    while moved < _STEP_BYTES:
        count = _read_into(fd, buffer, at_least)
        if not count:
            break
        consume(buffer[:count])
        moved += count
        if time.monotonic() > deadline:
            break
    return moved


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FdIO:
    """Pipes owned by one pipeline, and the threads doing blocking I/O on them."""

    def __init__(self, threads: int = 3) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dbkeep-io")
        self._fds: set[int] = set()

    def pipe(self, size: int = PIPE_SIZE) -> tuple[int, int]:
        """A (read, write) pair, enlarged to ``size`` when the system allows."""
        read_fd, write_fd = os.pipe()
        self._fds |= {read_fd, write_fd}
        with contextlib.suppress(OSError):  # beyond /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, size)
        return read_fd, write_fd

    def close(self, fd: int) -> None:
        """Close one of our descriptors now (e.g. the child's end, or to send end of file)."""
        if fd in self._fds:
            self._fds.discard(fd)
            os.close(fd)

    async def read(self, fd: int, size: int = CHUNK_SIZE) -> bytes:
        """Up to ``size`` bytes, at least half of it unless the writer closed; b"" at the end."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _read_some, fd, size, size // 2)

    async def write_all(self, fd: int, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _write_all, fd, data)

    async def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run blocking I/O on our descriptors in our threads (joined before they are closed)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    async def chunks(self, fd: int, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Everything read from ``fd`` until end of file."""
        while chunk := await self.read(fd, size):
            yield chunk

    async def pumped(
        self, fd: int, consume: Callable[[memoryview], None], size: int = PUMP_BUFFER_SIZE
    ) -> AsyncIterator[int]:
        """Hand everything read from ``fd`` to ``consume``, in our thread; yield byte counts.

        ``consume`` runs in the I/O thread and gets views of one reused buffer, valid only
        during the call: nothing is allocated per chunk (freed chunks would stay in each
        thread's allocator and grow the process), and the event loop wakes up once per
        ~250 ms or 16 MiB instead of several times per chunk.
        """
        loop = asyncio.get_running_loop()
        buffer = memoryview(bytearray(size))
        while moved := await loop.run_in_executor(
            self._executor, _pump, fd, buffer, consume, size // 2
        ):
            yield moved

    def _close_all(self) -> None:
        for fd in list(self._fds):
            self.close(fd)

    async def aclose(self) -> None:
        """Wait for in-flight I/O to finish, then close every descriptor still open."""
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(None, self._executor.shutdown, True)
        # Cancelled while waiting: the descriptors are still closed, once the threads are done.
        done.add_done_callback(lambda _: self._close_all())
        await asyncio.shield(done)


@asynccontextmanager
async def fd_io(threads: int = 3) -> AsyncIterator[FdIO]:
    """An ``FdIO`` whose threads are joined and descriptors closed on exit.

    Children using its pipes must be gone before this exits: nest their ``spawn`` inside.
    """
    io = FdIO(threads)
    try:
        yield io
    finally:
        await io.aclose()
