"""Local storage reads only regular files it wrote, and keeps what it creates private.

A key whose file, or a directory on its way, was replaced by a symlink must never serve (or
delete) what the link points to; a FIFO or a device under a key is refused without hanging; every
directory dbkeep creates below the backup directory is 0700 and every file 0600, whatever the
umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.storage.local import LocalStorage, NotOurFile

KEY = "2026/12/shop_2026-12-03_000000_abcdef12.sql.zst"


async def _store(storage: LocalStorage, key: str = KEY, content: bytes = b"dump") -> None:
    writer = await storage.open_writer(key)
    await writer.write(content)
    await writer.commit()


async def _read(storage: LocalStorage, key: str = KEY) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "host-secret"
    path.write_bytes(b"root:x:0:0:secret")
    return path


async def test_a_symlink_under_the_key_is_neither_read_nor_sized(
    tmp_path: Path, secret: Path
) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await _store(storage)
    path = storage.path(KEY)
    path.unlink()
    path.symlink_to(secret)

    with pytest.raises(NotOurFile):
        await _read(storage)
    with pytest.raises(NotOurFile):
        await storage.size(KEY)
    # Deleting removes the link, never its target.
    await storage.delete(KEY)
    assert not path.is_symlink() and secret.read_bytes() == b"root:x:0:0:secret"


async def test_a_symlinked_directory_on_the_way_is_not_entered(
    tmp_path: Path, secret: Path
) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await _store(storage)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / Path(KEY).name).write_bytes(b"not a backup")
    month = storage.root / "2026" / "12"
    for child in month.iterdir():
        child.unlink()
    month.rmdir()
    month.symlink_to(elsewhere)

    with pytest.raises(NotOurFile):
        await _read(storage)
    with pytest.raises(NotOurFile):
        await storage.size(KEY)
    with pytest.raises(NotOurFile):
        await storage.delete(KEY)
    assert (elsewhere / Path(KEY).name).exists()
    # A writer does not write through it either.
    with pytest.raises(NotOurFile):
        await storage.open_writer(KEY)
    assert sorted(p.name for p in elsewhere.iterdir()) == [Path(KEY).name]


async def test_a_fifo_or_a_directory_under_the_key_is_refused_at_once(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await _store(storage)
    path = storage.path(KEY)
    path.unlink()
    os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(NotOurFile):
        await _read(storage)
    with pytest.raises(NotOurFile):
        await storage.size(KEY)
    path.unlink()
    path.mkdir()
    with pytest.raises(NotOurFile):
        await _read(storage)


async def test_a_regular_file_still_reads(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await _store(storage, content=b"x" * 3_000_000)
    assert await storage.size(KEY) == 3_000_000
    assert await _read(storage) == b"x" * 3_000_000
    assert await storage.size("2026/12/other.sql.zst") is None
    with pytest.raises(FileNotFoundError):
        await _read(storage, "2026/12/other.sql.zst")


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most permissive umask: nothing the process creates is made private by it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.usefixtures("loose_umask")
async def test_everything_created_under_the_backup_dir_is_private(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "backups")
    await storage.check_writable()
    writer = await storage.open_writer(KEY)
    await writer.write(b"partial")
    temporaries = [p for p in storage.root.rglob(".tmp-*")]
    assert temporaries and all(_mode(p) == 0o600 for p in temporaries)
    await writer.commit()

    created = [storage.root, *storage.root.rglob("*")]
    directories = [p for p in created if p.is_dir()]
    files = [p for p in created if p.is_file()]
    assert {p.relative_to(storage.root).as_posix() for p in directories} >= {".", "2026", "2026/12"}
    assert {p: _mode(p) for p in directories} == {p: 0o700 for p in directories}
    assert {p: _mode(p) for p in files} == {p: 0o600 for p in files}


@pytest.mark.usefixtures("loose_umask")
async def test_a_pre_existing_open_backup_dir_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    storage = LocalStorage(root)
    await _store(storage)
    assert _mode(root) == 0o700
