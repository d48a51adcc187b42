"""Storages by the ``kind`` a destination names, built from its ``config``.

Part 1 has one destination, the bootstrap local directory ``DBKEEP_BACKUP_DIR`` (named
``local``); destinations as rows (S3-compatible buckets among them) come with issue 14 and are
built through the same registry, so nothing that reads or writes a backup changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.storage.base import BackupStorage
from app.storage.local import LocalStorage

# The bootstrap destination DBKEEP_BACKUP_DIR stands for (contract part 2, "Destinations").
BOOTSTRAP_DESTINATION = "local"


class UnknownStorageKind(LookupError):
    def __init__(self, kind: str) -> None:
        available = ", ".join(sorted(FACTORIES))
        super().__init__(f"the {kind!r} storage kind is not available (available: {available})")
        self.kind = kind


def _local(config: Mapping[str, Any]) -> BackupStorage:
    path = config.get("path")
    if not isinstance(path, str | Path) or not str(path):
        raise ValueError("a local destination needs a path")
    return LocalStorage(Path(path))


FACTORIES: dict[str, Callable[[Mapping[str, Any]], BackupStorage]] = {"local": _local}


def build_storage(kind: str, config: Mapping[str, Any]) -> BackupStorage:
    """The storage of ``kind`` with ``config`` (``{"path": …}`` for a local one)."""
    factory = FACTORIES.get(kind)
    if factory is None:
        raise UnknownStorageKind(kind)
    return factory(config)


def _s3(config: Mapping[str, Any]) -> BackupStorage:
    from app.storage.s3 import S3Storage, s3_options

    return S3Storage(**s3_options(config))


FACTORIES["s3"] = _s3
