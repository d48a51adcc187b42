"""``source:add --encrypt --recipient``, ``key:recovery-kit`` and ``key:rotate-age`` as a person
runs them: real processes, the kit opening a real encrypted backup with ``age`` and ``zstd``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import Settings
from app.pipeline.crypto import AGE_MAGIC
from tests import support
from tests.test_cli import cli_env, dbkeep

pytestmark = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("zstd") is None, reason="needs age and zstd"
)


@pytest.fixture
def env(settings: Settings, database: object, target_database: str) -> dict[str, str]:
    support.admin_sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));"
        "INSERT INTO t SELECT seq, CONCAT('secret-value-', seq) FROM seq_1_to_500;",
        database=target_database,
    )
    return cli_env(settings)


def _public_key(tmp_path: Path) -> tuple[Path, str]:
    key = tmp_path / "user.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    lines = key.read_text().splitlines()
    return key, next(ln.split(": ")[1] for ln in lines if ln.startswith("# public key"))


def test_an_encrypted_source_backs_up_and_the_kit_opens_it(
    env: dict[str, str], settings: Settings, target_database: str, tmp_path: Path
) -> None:
    user_key, public = _public_key(tmp_path)
    url = support.target_url(target_database)
    added = dbkeep("source:add", "shop", url, "--encrypt", "--recipient", public, env=env)
    assert added.returncode == 0, added.stderr
    backed_up = dbkeep("backup:database", "--source", "shop", env=env, timeout=300)
    assert backed_up.returncode == 0, backed_up.stderr
    files = [p for p in Path(settings.backup_dir).rglob("*.sql.zst")]
    assert len(files) == 1
    stored = files[0].read_bytes()
    assert stored.startswith(AGE_MAGIC) and b"secret-value-" not in stored

    kit = dbkeep("key:recovery-kit", env=env)
    assert kit.returncode == 0, kit.stderr
    assert "AGE-SECRET-KEY-1" not in kit.stderr
    kit_file = tmp_path / "dbkeep-identity.txt"
    kit_file.write_text(kit.stdout)
    for key in (kit_file, user_key):
        plain = subprocess.run(
            f"age -d -i {key} {files[0]} | zstd -d", shell=True, capture_output=True, check=True
        ).stdout
        assert b"secret-value-250" in plain and b"-- Dump completed" in plain

    rotated = dbkeep("key:rotate-age", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "older ones still decrypt" in rotated.stdout
    again = dbkeep("key:recovery-kit", env=env).stdout
    assert again.count("AGE-SECRET-KEY-1") == 2
    assert kit.stdout.strip().splitlines()[-1] in again  # the old key is still in the kit


def test_a_bad_recipient_is_refused_in_one_line(env: dict[str, str], target_database: str) -> None:
    url = support.target_url(target_database)
    result = dbkeep("source:add", "shop", url, "--encrypt", "--recipient", "age1nope", env=env)
    assert result.returncode == 1
    assert "Invalid --recipient" in result.stderr
    assert "age public key" in result.stderr
    alone = dbkeep("source:add", "shop", url, "--recipient", "age1nope", env=env)
    assert alone.returncode == 1 and "--recipient goes with --encrypt" in alone.stderr
