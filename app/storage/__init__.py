"""Backup storage backends; ``get_storage`` picks the configured one."""

from __future__ import annotations

from app.config import Settings
from app.storage.base import BackupStorage, StorageError, StorageWriter
from app.storage.local import LocalStorage

__all__ = ["BackupStorage", "LocalStorage", "StorageError", "StorageWriter", "get_storage"]


def get_storage(settings: Settings) -> BackupStorage:
    """The storage backups are written to (local files under ``settings.backup_dir``)."""
    return LocalStorage(settings.backup_dir)
