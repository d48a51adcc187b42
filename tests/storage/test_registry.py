"""Storages come from the registry by kind; an unknown kind or a bad config says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.storage import get_storage
from app.storage.local import LocalStorage
from app.storage.registry import UnknownStorageKind, build_storage


async def test_a_local_storage_is_built_from_its_path(tmp_path: Path) -> None:
    storage = build_storage("local", {"path": str(tmp_path / "b")})
    assert isinstance(storage, LocalStorage)
    writer = await storage.open_writer("2026/01/x.sql")
    await writer.write(b"data")
    await writer.commit()
    assert (tmp_path / "b" / "2026" / "01" / "x.sql").read_bytes() == b"data"


def test_an_unknown_kind_or_a_missing_path_is_refused() -> None:
    with pytest.raises(UnknownStorageKind, match="'ftp' storage kind is not available"):
        build_storage("ftp", {})
    with pytest.raises(ValueError, match="needs a path"):
        build_storage("local", {})


def test_the_bootstrap_storage_is_the_backup_dir(tmp_path: Path) -> None:
    class Settings:
        backup_dir = tmp_path / "backups"

    storage = get_storage(Settings())
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "backups"
