"""A small tmpfs, for running out of space or writing to a read-only file system for real; the
session's real S3-compatible server (SeaweedFS, ``tests/s3server.py``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.s3server import s3_server  # noqa: F401  (a session fixture, shared)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount tmpfs file systems under ``tmp_path``; all are unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str = "1m", *, read_only: bool = False) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"can't mount tmpfs here: {result.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)
