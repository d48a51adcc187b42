"""Backups as files under one directory: 0600 files in 0700 directories, atomic publication.

A writer writes ``.tmp-<name>-<random>`` beside the final file; ``commit()`` flushes, fsyncs the
file, renames it into place and fsyncs the directory, so a crash leaves either nothing under the
key or the complete file, plus at worst a temporary that ``remove_orphan_temporaries`` deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

from app.storage.base import StorageError

TEMP_PREFIX = ".tmp-"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
_BUFFER_BYTES = 1024 * 1024
_DIRECT_BYTES = 256 * 1024
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def validate_key(key: str) -> str:
    """Refuse keys that could escape the directory or be read as an option or a temporary."""
    if not key or key.startswith("/") or len(key) > 1000:
        raise StorageError("invalid storage key")
    for segment in key.split("/"):
        if segment in {"", ".", ".."} or not _SEGMENT.match(segment):
            raise StorageError("invalid storage key")
    return key


def _error(action: str, exc: OSError) -> StorageError:
    """An OSError as a StorageError: strerror only, never the path ``str(exc)`` would show."""
    if exc.errno in _DISK_FULL:
        return StorageError("disk full", disk_full=True)
    reason = exc.strerror or type(exc).__name__
    transient = exc.errno in {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.EIO}
    return StorageError(f"could not {action}: {reason.lower()}", transient=transient)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalWriter:
    """Writes one backup file; visible under its key only after ``commit()``."""

    def __init__(self, key: str, final: Path, temp: Path, fd: int) -> None:
        self.key = key
        self._final = final
        self._temp = temp
        self._fd: int | None = fd
        self._buffer = bytearray()
        self._done = False
        # Held while bytes go to the descriptor, so abort() never closes it under a write still
        # running in a thread (the number could be reused by another file meanwhile).
        self._fd_lock = threading.Lock()

    def thread_writer(self) -> Callable[[memoryview], None]:
        return self._write_from_thread

    def _write_from_thread(self, chunk: memoryview) -> None:
        if self._done:
            raise StorageError("the backup file is already closed")
        if self._buffer:  # not expected (callers use one way of writing), but keep the order
            data, self._buffer = self._buffer, bytearray()
            self._write_all(data)
        self._write_all(chunk)

    async def write(self, chunk: bytes | memoryview) -> None:
        if self._fd is None or self._done:
            raise StorageError("the backup file is already closed")
        if not self._buffer and len(chunk) >= _DIRECT_BYTES:
            # Large chunks go to the file as they are: no copy, nothing allocated.
            await asyncio.to_thread(self._write_all, chunk)
            return
        self._buffer += chunk
        if len(self._buffer) >= _BUFFER_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if not self._buffer:
            return
        data, self._buffer = self._buffer, bytearray()
        await asyncio.to_thread(self._write_all, data)

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        with self._fd_lock:
            if self._fd is None:
                raise StorageError("the backup file is already closed")
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError as exc:
                raise _error("write the backup file", exc) from None

    async def commit(self) -> int:
        """Flush, fsync and rename into place; return the stored size."""
        if self._done or self._fd is None:
            raise StorageError("the backup file is already closed")
        await self._flush()
        size = await asyncio.to_thread(self._publish)
        self._done = True
        return size

    def _publish(self) -> int:
        try:
            with self._fd_lock:
                if self._fd is None:
                    raise StorageError("the backup file is already closed")
                os.fsync(self._fd)
                size = os.fstat(self._fd).st_size
                os.close(self._fd)
                self._fd = None
            os.replace(self._temp, self._final)
            _fsync_dir(self._final.parent)
        except OSError as exc:
            raise _error("save the backup file", exc) from None
        return size

    async def abort(self) -> None:
        """Remove the temporary file; safe to call twice or after a failed commit."""
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
        try:
            self._temp.unlink(missing_ok=True)
        except OSError as exc:
            raise _error("remove the partial backup file", exc) from None


class LocalStorage:
    """Backups stored under ``root`` on the local file system."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def path(self, key: str) -> Path:
        """The file a key maps to (for local-only uses such as sending a download)."""
        return self.root / validate_key(key)

    def _ensure_dir(self, directory: Path) -> None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
                raise StorageError(
                    "the backup directory does not exist and can't be created "
                    f"({(exc.strerror or 'permission denied').lower()})"
                ) from None
            raise _error("create the backup directory", exc) from None
        if not directory.is_dir():
            raise StorageError("the backup directory path exists but is not a directory")
        # Backups hold every row of the database: keep them private even if the dir pre-existed.
        try:
            if directory.stat().st_mode & 0o077:
                directory.chmod(0o700)
        except OSError:
            pass

    async def check_writable(self) -> None:
        """Raise ``StorageError`` if a backup could not be written now."""
        await asyncio.to_thread(self._check_writable)

    def _check_writable(self) -> None:
        self._ensure_dir(self.root)
        probe = self.root / f"{TEMP_PREFIX}probe-{secrets.token_hex(6)}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise StorageError("the backup directory is on a read-only file system") from None
            if exc.errno in {errno.EACCES, errno.EPERM}:
                raise StorageError(
                    "the backup directory is not writable (permission denied)"
                ) from None
            raise _error("write in the backup directory", exc) from None
        try:
            os.write(fd, b"x")
        except OSError as exc:
            raise _error("write in the backup directory", exc) from None
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)

    async def open_writer(self, key: str) -> LocalWriter:
        """A writer for ``key``; nothing appears under the key until it commits."""
        final = self.path(key)
        return await asyncio.to_thread(self._open_writer, key, final)

    def _open_writer(self, key: str, final: Path) -> LocalWriter:
        self._ensure_dir(final.parent)
        temp = final.parent / f"{TEMP_PREFIX}{final.name}-{secrets.token_hex(6)}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise StorageError("the backup directory is on a read-only file system") from None
            raise _error("create the backup file", exc) from None
        return LocalWriter(key, final, temp, fd)

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream the stored bytes; raises ``FileNotFoundError`` when the file is gone."""
        path = self.path(key)
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        """The stored size, or ``None`` when the file does not exist."""
        path = self.path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _error("read the backup file", exc) from None

    async def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""
        path = self.path(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise _error("delete the backup file", exc) from None

    async def remove_orphan_temporaries(self, *, older_than: timedelta) -> int:
        """Delete ``.tmp-*`` files older than ``older_than``; return how many."""
        return await asyncio.to_thread(self._remove_orphans, older_than.total_seconds())

    def _remove_orphans(self, age_seconds: float) -> int:
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - age_seconds
        removed = 0
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                try:
                    if path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise _error("remove a stale temporary file", exc) from None
        return removed

    async def free_bytes(self) -> int | None:
        """Free space available to dbkeep where backups are written."""
        try:
            stats = await asyncio.to_thread(os.statvfs, self.root)
        except OSError:
            return None
        return stats.f_bavail * stats.f_frsize
