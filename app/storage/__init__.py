"""Backup storage backends; ``get_storage`` picks the configured one."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from app.storage.base import BackupStorage, StorageError, StorageWriter
from app.storage.local import LocalStorage

__all__ = [
    "BackupStorage",
    "LocalStorage",
    "StorageError",
    "StorageSettings",
    "StorageWriter",
    "get_storage",
]


class StorageSettings(Protocol):
    """The settings a storage is built from (the application's ``Settings`` has them); a
    protocol, so that storage doesn't import the configuration (architecture.md, "Arrows")."""

    @property
    def backup_dir(self) -> Path: ...


def get_storage(settings: StorageSettings) -> BackupStorage:
    """The bootstrap destination's storage: local files under ``settings.backup_dir``, built
    through the registry as every destination will be."""
    from app.storage.registry import build_storage

    return build_storage("local", {"path": settings.backup_dir})
