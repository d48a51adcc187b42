"""Backups as files under one directory: 0600 files in 0700 directories, atomic publication.

A writer writes ``.tmp-<name>-<random>`` beside the final file; ``commit()`` flushes, fsyncs the
file, renames it into place and fsyncs the directory, so a crash leaves either nothing under the
key or the complete file, plus at worst a temporary that ``remove_orphan_temporaries`` deletes.

Only what dbkeep wrote is ever read: a key is walked one directory at a time from the root, each
opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before (a symlink anywhere below the
root is refused, so is a directory swapped for one mid-walk), and the file itself is opened with
``O_NOFOLLOW`` and must be a regular file (``fstat`` after the open, not a check before it).
Whatever dbkeep creates gets 0700 or 0600 set explicitly, whatever the umask.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import stat
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
DIR_MODE = 0o700
FILE_MODE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted under a key must not hang the reader.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class NotOurFile(StorageError):
    """The key names something dbkeep did not write: a symlink, a device, a FIFO, a directory,
    or a path through a symlinked directory. Never read, never followed."""

    def __init__(self) -> None:
        super().__init__("the backup file is not a regular file that dbkeep wrote")


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


def _open_dir(name: str, dir_fd: int) -> int:
    """Open the directory ``name`` inside ``dir_fd``, refusing a symlink or a non-directory."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.ENOTDIR}:
            raise NotOurFile() from None
        raise


def _private_dir(name: str, dir_fd: int) -> int:
    """Open ``name`` inside ``dir_fd``, first creating it 0700 if it is missing."""
    try:
        os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
    except FileExistsError:
        return _open_dir(name, dir_fd)
    fd = _open_dir(name, dir_fd)
    os.fchmod(fd, DIR_MODE)  # mkdir's mode went through the umask
    return fd


def _open_regular(dir_fd: int, name: str) -> int:
    """Open the file ``name`` in ``dir_fd`` for reading if it is a regular file (no symlink)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotOurFile() from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotOurFile()
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class LocalWriter:
    """Writes one backup file; visible under its key only after ``commit()``."""

    def __init__(self, key: str, dir_fd: int, final: str, temp: str, fd: int) -> None:
        self.key = key
        self._dir_fd: int | None = dir_fd
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
                if self._fd is None or self._dir_fd is None:
                    raise StorageError("the backup file is already closed")
                os.fsync(self._fd)
                size = os.fstat(self._fd).st_size
                os.close(self._fd)
                self._fd = None
            # Both names inside the directory opened when the writer was made: a path swapped
            # for a symlink since can't redirect the file.
            os.replace(self._temp, self._final, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.fsync(self._dir_fd)
        except OSError as exc:
            raise _error("save the backup file", exc) from None  # abort() still needs the dir
        self._close_dir()
        return size

    def _close_dir(self) -> None:
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._dir_fd)
            self._dir_fd = None

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
            if self._dir_fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp, dir_fd=self._dir_fd)
        except OSError as exc:
            raise _error("remove the partial backup file", exc) from None
        finally:
            self._close_dir()


class LocalStorage:
    """Backups stored under ``root`` on the local file system."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def path(self, key: str) -> Path:
        """The file a key maps to (for messages and tests; reads go through ``_walk``)."""
        return self.root / validate_key(key)

    def _ensure_root(self) -> int:
        """Create the root (0700) if missing and open it; the root itself may be a symlink
        (an operator's choice of where backups live), nothing below it may."""
        try:
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
                raise StorageError(
                    "the backup directory does not exist and can't be created "
                    f"({(exc.strerror or 'permission denied').lower()})"
                ) from None
            raise _error("create the backup directory", exc) from None
        if not self.root.is_dir():
            raise StorageError("the backup directory path exists but is not a directory")
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _error("open the backup directory", exc) from None
        # Backups hold every row of the database: keep them private even if the dir pre-existed.
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, DIR_MODE)
        return fd

    def _walk(self, key: str, *, create: bool = False) -> tuple[int, str]:
        """The open directory holding ``key``'s file (the caller closes it) and the file's name.

        Each directory is opened inside the one before with ``O_NOFOLLOW``: a symlink on the way
        raises ``NotOurFile``; a missing one ``FileNotFoundError``, unless ``create`` makes it.
        """
        *directories, name = validate_key(key).split("/")
        if create:
            fd = self._ensure_root()
        else:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for directory in directories:
                inner = _private_dir(directory, fd) if create else _open_dir(directory, fd)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        return fd, name

    def _open_file(self, key: str) -> int:
        """An open descriptor of ``key``'s regular file; ``NotOurFile`` for anything else."""
        dir_fd, name = self._walk(key)
        try:
            return _open_regular(dir_fd, name)
        finally:
            os.close(dir_fd)

    async def check_writable(self) -> None:
        """Raise ``StorageError`` if a backup could not be written now."""
        await asyncio.to_thread(self._check_writable)

    def _check_writable(self) -> None:
        root = self._ensure_root()
        probe = f"{TEMP_PREFIX}probe-{secrets.token_hex(6)}"
        try:
            try:
                fd = os.open(probe, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=root)
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    raise StorageError(
                        "the backup directory is on a read-only file system"
                    ) from None
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
                with contextlib.suppress(OSError):
                    os.unlink(probe, dir_fd=root)
        finally:
            os.close(root)

    async def open_writer(self, key: str) -> LocalWriter:
        """A writer for ``key``; nothing appears under the key until it commits."""
        validate_key(key)
        return await asyncio.to_thread(self._open_writer, key)

    def _open_writer(self, key: str) -> LocalWriter:
        try:
            dir_fd, name = self._walk(key, create=True)
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise StorageError("the backup directory is on a read-only file system") from None
            raise _error("create the backup directory", exc) from None
        temp = f"{TEMP_PREFIX}{name}-{secrets.token_hex(6)}"
        try:
            fd = os.open(temp, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=dir_fd)
            os.fchmod(fd, FILE_MODE)  # the mode given to open went through the umask
        except OSError as exc:
            os.close(dir_fd)
            if exc.errno == errno.EROFS:
                raise StorageError("the backup directory is on a read-only file system") from None
            raise _error("create the backup file", exc) from None
        return LocalWriter(key, dir_fd, name, temp, fd)

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream the stored bytes; raises ``FileNotFoundError`` when the file is gone and
        ``NotOurFile`` when the key names anything but a regular file under the root."""
        validate_key(key)
        fd = await asyncio.to_thread(self._open_file, key)
        handle = os.fdopen(fd, "rb", buffering=0)
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        """The stored size, or ``None`` when the file does not exist; ``NotOurFile`` when the
        key names anything but a regular file under the root."""
        validate_key(key)
        try:
            return await asyncio.to_thread(self._size, key)
        except FileNotFoundError:
            return None
        except StorageError:
            raise
        except OSError as exc:
            raise _error("read the backup file", exc) from None

    def _size(self, key: str) -> int:
        fd = self._open_file(key)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    async def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error. A symlink under the key is removed
        as a link (never what it points to); a symlinked directory on the way is not entered."""
        validate_key(key)
        try:
            await asyncio.to_thread(self._delete, key)
        except FileNotFoundError:
            return
        except StorageError:
            raise
        except OSError as exc:
            raise _error("delete the backup file", exc) from None

    def _delete(self, key: str) -> None:
        dir_fd, name = self._walk(key)
        try:
            os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    async def remove_orphan_temporaries(self, *, older_than: timedelta) -> int:
        """Delete ``.tmp-*`` files older than ``older_than``; return how many."""
        return await asyncio.to_thread(self._remove_orphans, older_than.total_seconds())

    def _remove_orphans(self, age_seconds: float) -> int:
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - age_seconds
        removed = 0
        # os.walk does not follow symlinked directories; lstat: a link's own age and kind.
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                try:
                    if path.lstat().st_mtime <= cutoff:
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
