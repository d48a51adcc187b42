"""``dbkeep key:generate`` and ``dbkeep key:rotate``: real processes, then the command in-process
over a throwaway encrypted table (no table of dbkeep's own is encrypted yet)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, Table, text
from typer.testing import CliRunner

from app.cli import _register
from app.cli import app as cli_app
from app.config import get_settings
from app.db import Database, make_engine
from app.kit.encryption import EncryptedString, install_key_ring
from app.kit.keyring import KeyRing, generate_key
from tests import support

DBKEEP = str(Path(sys.executable).with_name("dbkeep"))


def key_env(metadata_url: str, tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    env.update(
        DBKEEP_ENV="test",
        DBKEEP_DATABASE_URL=metadata_url,
        DBKEEP_VAR_DIR=str(tmp_path / "var"),
        DBKEEP_LOG_FORMAT="json",
    )
    env.update(values)
    return env


def dbkeep(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DBKEEP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_key_generate_prints_a_new_valid_key_each_time(tmp_path: Path) -> None:
    env = key_env("sqlite+aiosqlite:///unused", tmp_path)
    first, second = (dbkeep("key:generate", env=env) for _ in range(2))
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    Fernet(key)
    assert key != second.stdout.strip()
    assert not (tmp_path / "var").exists()  # printed, not stored


async def test_key_rotate_on_an_empty_store_reports_each_encrypted_column(
    database: Database, metadata_url: str, tmp_path: Path
) -> None:
    # ``database`` empties the store other tests filled under their own keys.
    result = dbkeep("key:rotate", env=key_env(metadata_url, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "destinations.secrets: 0 re-encrypted, 0 already under the first key\n"
        "encryption_identities.secret_key: 0 re-encrypted, 0 already under the first key\n"
        "notification_channels.secrets: 0 re-encrypted, 0 already under the first key\n"
        "sources.url: 0 re-encrypted, 0 already under the first key\n"
        "sources.verify_url: 0 re-encrypted, 0 already under the first key\n"
    )


def test_key_rotate_with_an_invalid_key_is_one_line_without_the_key(
    metadata_url: str, tmp_path: Path
) -> None:
    bad = "not-a-real-key-but-a-secret-one"
    env = key_env(metadata_url, tmp_path, DBKEEP_ENCRYPTION_KEY=f"{generate_key()},{bad}")
    result = dbkeep("key:rotate", env=env)
    assert result.returncode == 1
    assert "DBKEEP_ENCRYPTION_KEY: key 2 of 2 is not a Fernet key" in result.stderr
    assert bad not in result.stderr and bad not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_prod_without_a_key_refuses_every_command_with_how_to_fix_it(
    metadata_url: str, tmp_path: Path
) -> None:
    env = key_env(metadata_url, tmp_path, DBKEEP_ENV="prod", DBKEEP_SECRET_KEY="s" * 48)
    result = dbkeep("key:rotate", env=env)
    assert result.returncode == 1
    assert "DBKEEP_ENCRYPTION_KEY must be set when DBKEEP_ENV=prod" in result.stderr
    assert "dbkeep key:generate" in result.stderr
    assert "s" * 48 not in result.stderr


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("DBKEEP_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    install_key_ring(None)


def test_key_rotate_re_encrypts_a_registered_column_with_the_first_key(
    metadata_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings_from_env: None
) -> None:
    old, new = generate_key(), generate_key()
    metadata = MetaData()
    table = Table(
        support.unique_name("kit_cli_vault"),
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("secret", EncryptedString()),
    )

    async def create() -> None:
        engine = make_engine(metadata_url)
        install_key_ring(KeyRing([old]))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(table.insert(), [{"id": i, "secret": f"pw-{i}"} for i in range(5)])
        await engine.dispose()

    async def stored() -> list[str]:
        engine = make_engine(metadata_url)
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT secret FROM {table.name} ORDER BY id"))
            values = [row[0] for row in rows]
        await engine.dispose()
        return values

    async def drop() -> None:
        engine = make_engine(metadata_url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()

    asyncio.run(create())
    try:
        # The command reads every model's columns: here, the throwaway table's.
        monkeypatch.setattr("app.models.Base", SimpleNamespace(metadata=metadata))
        for name, value in key_env(
            metadata_url, tmp_path, DBKEEP_ENCRYPTION_KEY=f"{new},{old}"
        ).items():
            if name.startswith("DBKEEP_"):
                monkeypatch.setenv(name, value)
        _register(["dbkeep", "key:rotate"])
        runner = CliRunner()

        result = runner.invoke(cli_app, ["key:rotate", "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        column = f"{table.name}.secret"
        assert result.output == f"{column}: 5 re-encrypted, 0 already under the first key\n"
        values = asyncio.run(stored())
        assert [Fernet(new).decrypt(v.encode()).decode() for v in values] == [
            f"pw-{i}" for i in range(5)
        ]

        again = runner.invoke(cli_app, ["key:rotate"])
        assert again.exit_code == 0, again.output
        assert again.output == f"{column}: 0 re-encrypted, 5 already under the first key\n"
        assert asyncio.run(stored()) == values
    finally:
        asyncio.run(drop())
