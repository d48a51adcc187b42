"""Move a child's output pipe into another child's input pipe inside the kernel (``splice``).

A backup's uncompressed dump is ~4-5 times larger than what is stored. Reading it into Python only
to write it to ``zstd`` costs two copies and thousands of syscalls per GiB: about as much CPU as
the SHA-256 of the stored bytes, and the difference between dbkeep and ``mariadb-dump | zstd``.
``splice`` moves the pages from one pipe to the other without them entering our process.

We still see what the checks need: the first bytes (the header names the server version) are
read normally, and the last ``TAIL_BYTES`` are never spliced: they stay in the source pipe until
the dump has closed its end, then are read, so the completion line can be checked.
"""

from __future__ import annotations

import fcntl
import os
import select
import termios
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.pipeline.fdio import FdIO

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024
# Splice only once this much beyond the tail is waiting: fewer, larger moves.
_MIN_MOVE = 256 * 1024
_POLL_MS = 100
_STEP_SECONDS = 0.25
_STEP_BYTES = 16 * 1024 * 1024
_NAP_SECONDS = 0.002
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)

# (bytes moved, the bytes themselves for the head and the tail, b"" for spliced ones)
OnMoved = Callable[[int, bytes], Awaitable[None]]


def supported() -> bool:
    """Whether this system can splice between pipes (Linux, Python >= 3.10)."""
    return hasattr(os, "splice") and hasattr(termios, "FIONREAD")


@dataclass(frozen=True)
class PipeSource:
    """The read end of a pipe a child writes the raw dump into; ``io`` owns the descriptor."""

    io: FdIO
    fd: int


def _waiting(fd: int) -> int:
    """Bytes waiting in the pipe ``fd``."""
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, "little", signed=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_rest(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1024 * 1024):
        parts.append(chunk)
    return b"".join(parts)


def _wait(src: int) -> int:
    """Poll ``src`` for up to ~100 ms; its events (0 if nothing happened)."""
    poller = select.poll()
    poller.register(src, select.POLLIN | select.POLLHUP)
    events = poller.poll(_POLL_MS)
    return events[0][1] if events else 0


def _read_some(src: int, dst: int, limit: int) -> tuple[bytes, bool]:
    """Read and forward what is waiting, up to ``limit`` bytes; (bytes, reached the end)."""
    if not _wait(src):
        return b"", False
    data = os.read(src, limit)
    _write_all(dst, data)
    return data, not data


def _step(src: int, dst: int, keep: int, min_move: int) -> tuple[int, bytes | None]:
    """Move what arrives beyond the last ``keep`` bytes, for up to ~250 ms or 16 MiB.

    Returns (bytes spliced, the last bytes once the writer has closed — read and forwarded —
    else None). Returning only every few MiB keeps the event loop's wake-ups rare; returning at
    least every 250 ms lets the caller notice a cancellation.
    """
    moved = 0
    deadline = time.monotonic() + _STEP_SECONDS
    while moved < _STEP_BYTES:
        events = _wait(src)
        if events & (select.POLLHUP | select.POLLERR):
            rest = _read_rest(src)  # the writer is gone: what is left is the tail
            _write_all(dst, rest)
            return moved, rest
        movable = _waiting(src) - keep if events else 0
        if movable >= min_move:
            moved += os.splice(src, dst, movable)
        elif time.monotonic() > deadline:
            break
        elif events:
            time.sleep(_NAP_SECONDS)  # let the pipe fill rather than move a few KiB at a time
    return moved, None


async def forward(io: FdIO, src: int, dst: int, on_moved: OnMoved) -> None:
    """Move everything from pipe ``src`` into pipe ``dst`` until ``src``'s writer closes it.

    ``on_moved`` sees every byte count, and the bytes themselves for the first ``HEAD_BYTES``
    and the last (at least ``TAIL_BYTES`` or a quarter of the pipe, or all of a short stream).
    Raises ``BrokenPipeError`` when ``dst``'s reader went away.
    """
    # A pipe that could not be enlarged holds 64 KiB: keep and move in quarters of it, so a
    # full pipe is always drained.
    capacity = fcntl.fcntl(src, _F_GETPIPE_SZ)
    keep = min(TAIL_BYTES, capacity // 4)
    min_move = min(_MIN_MOVE, capacity // 4)
    head = 0
    while head < HEAD_BYTES:
        data, ended = await io.run(_read_some, src, dst, HEAD_BYTES - head)
        if ended:
            return
        if data:
            head += len(data)
            await on_moved(len(data), data)
    while True:
        count, tail = await io.run(_step, src, dst, keep, min_move)
        if count:
            await on_moved(count, b"")
        if tail is not None:
            await on_moved(len(tail), tail)
            return
