"""Where backup bytes live. Knows nothing of databases, HTTP or the ORM.

Keys are relative, ``/``-separated names chosen by dbkeep (never by a request). A writer writes to
a temporary object that becomes visible under its key only on ``commit()``; ``abort()`` leaves
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Protocol


class StorageError(Exception):
    """A storage failure with a message a person can act on (no absolute paths)."""

    def __init__(self, message: str, *, transient: bool = False, disk_full: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.disk_full = disk_full


class StorageWriter(Protocol):
    key: str

    async def write(self, chunk: bytes | memoryview) -> None:
        """Append ``chunk``; once this returns the caller may reuse the chunk's memory."""
        ...

    def thread_writer(self) -> Callable[[memoryview], None] | None:
        """A blocking ``write`` to call from one worker thread at a time, or None if only the
        event loop may write (the caller then uses ``write``); the chunk may be reused once it
        returns."""
        ...

    async def commit(self) -> int:
        """Flush, fsync and publish under ``key`` atomically; return the stored size."""
        ...

    async def abort(self) -> None:
        """Remove the temporary object; safe to call twice or after a failed commit."""
        ...


class BackupStorage(Protocol):
    async def check_writable(self) -> None:
        """Raise ``StorageError`` before any work starts if nothing could be stored."""
        ...

    async def open_writer(self, key: str) -> StorageWriter: ...

    def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream the stored bytes; raises ``FileNotFoundError`` when the object is gone."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored size, or ``None`` when the object does not exist."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    async def remove_orphan_temporaries(self, *, older_than: timedelta) -> int:
        """Delete temporary objects left by crashed writers; return how many."""
        ...

    async def free_bytes(self) -> int | None:
        """Free space where backups are written, when the backend can tell."""
        ...
