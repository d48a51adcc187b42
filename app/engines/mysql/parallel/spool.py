"""Spool I/O: each session's SQL in a private 0600 file, and the threads doing blocking
file and pipe I/O (a client reads a file while it is still being written)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from app.engines.base import EngineError, FailureKind

_T = TypeVar("_T")

SPOOL_PREFIX = "dbkeep-restore-"
_PIPE_SIZE = 1024 * 1024
_IOV_MAX = 512
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(eq=False)
class Script:
    """One session's SQL in a private file; a client may read it while it is being written."""

    name: str
    path: Path
    fd: int
    size: int = 0  # bytes on disk
    complete: bool = False
    lines: int = 0
    pending: list[bytes | memoryview] = field(default_factory=list)
    pending_size: int = 0
    # (first script line, dump line it came from), to report errors at the dump's line numbers
    segments: list[tuple[int, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    retryable: bool = False  # a table's section: self-contained, safe to run again
    sent_before: int = 0  # bytes already counted in the progress by earlier tries
    lone_retries: int = 0
    not_before: float = 0.0  # loop time before which a retry waits
    # Bytes from ``barrier`` on are sent once ``released`` is set (the rest of a dump the
    # splitter gave up on: it runs after every other script).
    barrier: int | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, data: bytes | memoryview, dump_line: int, lines: int | None = None) -> None:
        if not len(data):
            return
        if not self.segments or self._dump_line(self.lines + 1) != dump_line:
            self.segments.append((self.lines + 1, dump_line))
        self.pending.append(data)
        self.pending_size += len(data)
        self.lines += bytes(data).count(b"\n") if lines is None else lines

    def _dump_line(self, script_line: int) -> int:
        first, dump = self.segments[-1]
        return dump + script_line - first

    def dump_line(self, script_line: int) -> int:
        """The dump line a line of this script came from."""
        for first, dump in reversed(self.segments):
            if script_line >= first:
                return dump + script_line - first
        return script_line


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_pieces(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write every piece, in order, with as few system calls as the kernel allows."""
    views = [memoryview(p) for p in pieces]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while written:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def send_to_pipe(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Copy ``count`` file bytes to a pipe inside the kernel; the bytes moved (fewer: the reader
    left). Loops here rather than in the event loop: a pipe takes a few pages per call."""
    sent = 0
    try:
        while sent < count:
            moved = _send_some(out_fd, in_fd, offset + sent, count - sent)
            if moved == 0:
                break
            sent += moved
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _send_some(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    try:
        return os.sendfile(out_fd, in_fd, offset, count)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    data = os.pread(in_fd, count, offset)  # no sendfile to a pipe here: copy through memory
    _write_all(out_fd, data)
    return len(data)


class Spool:
    """A private directory of scripts, and the threads doing blocking file and pipe I/O."""

    def __init__(self, root: Path | None, threads: int) -> None:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            _remove_abandoned(root)
        self.dir = Path(tempfile.mkdtemp(prefix=_spool_prefix(), dir=root))  # mkdtemp makes it 0700
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="dbkeep-restore")
        self._fds: set[int] = set()
        self._count = 0

    def new_script(self, name: str) -> Script:
        self._count += 1
        path = self.dir / f"{self._count:05d}.sql"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._fds.add(fd)
        return Script(name=name, path=path, fd=fd)

    async def run(self, func: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    async def flush(self, script: Script) -> None:
        if not script.pending:
            return
        pieces, size = script.pending, script.pending_size
        script.pending, script.pending_size = [], 0
        try:
            await self.run(_write_pieces, script.fd, pieces)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise EngineError(
                    "not enough disk space for the restore's temporary files "
                    "(they need up to the uncompressed size of the backup)",
                    kind=FailureKind.permanent,
                ) from None
            raise
        script.size += size
        script.changed.set()

    def pipe(self) -> tuple[int, int]:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        self._fds |= {read_fd, write_fd}
        with contextlib.suppress(OSError):  # beyond /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        return read_fd, write_fd

    def close(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.discard(fd)
            os.close(fd)

    def discard(self, script: Script) -> None:
        self.close(script.fd)
        with contextlib.suppress(FileNotFoundError):
            script.path.unlink()

    async def aclose(self) -> None:
        """Join the I/O threads, then close every descriptor and remove the directory."""
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(None, self._executor.shutdown, True)

        def cleanup(_: object) -> None:
            for fd in list(self._fds):
                self.close(fd)
            shutil.rmtree(self.dir, ignore_errors=True)

        done.add_done_callback(cleanup)
        await asyncio.shield(done)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"


def _spool_prefix() -> str:
    """``dbkeep-restore-<pid>@<host>@``: who owns a spool directory, for the clean-up."""
    return f"{SPOOL_PREFIX}{os.getpid()}@{_host()}@"


def _remove_abandoned(root: Path) -> None:
    """Delete spool directories whose process is gone (a worker killed mid-restore).

    Only this host's: ``var_dir`` may be shared with containers whose pids we can't see.
    """
    for entry in root.glob(f"{SPOOL_PREFIX}*@*@*"):
        pid, host, _ = entry.name[len(SPOOL_PREFIX) :].split("@", 2)
        if not pid.isdigit() or int(pid) == os.getpid() or host != _host():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's
