"""``dbkeep user:create`` / ``token:create`` / ``token:revoke`` against the real metadata store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from app.db import Database
from tests.api.conftest import assert_failure

DBKEEP = str(Path(sys.executable).parent / "dbkeep")


def dbkeep(
    *args: str, metadata_url: str, tmp_path: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DBKEEP_") or k.startswith("DBKEEP_TEST")
    }
    env.update(
        DBKEEP_DATABASE_URL=metadata_url, DBKEEP_VAR_DIR=str(tmp_path / "var"), DBKEEP_ENV="test"
    )
    return subprocess.run(
        [DBKEEP, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


async def test_user_and_token_lifecycle(
    database: Database, metadata_url: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    created = dbkeep(
        "user:create",
        "Ops@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        metadata_url=metadata_url,
        tmp_path=tmp_path,
        stdin="a-long-password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "Created admin ops@example.com" in created.stdout
    assert "a-long-password" not in created.stdout + created.stderr

    again = dbkeep(
        "user:create",
        "ops@example.com",
        "--role",
        "admin",
        "--password-stdin",
        metadata_url=metadata_url,
        tmp_path=tmp_path,
        stdin="a-long-password\n",
    )
    assert again.returncode == 1
    assert again.stderr.strip().startswith("dbkeep: error:") and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    login = await client.post(
        "/api/auth/login", json={"email": "ops@example.com", "password": "a-long-password"}
    )
    assert login.status_code == 200

    issued = dbkeep(
        "token:create",
        "ops@example.com",
        "--name",
        "ci",
        metadata_url=metadata_url,
        tmp_path=tmp_path,
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("dbk_") and len(token) > 40
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/admin/api/database-backups", headers=headers)).status_code == 200

    listed = dbkeep("token:list", "ops@example.com", metadata_url=metadata_url, tmp_path=tmp_path)
    assert "ci" in listed.stdout and token not in listed.stdout
    token_id = listed.stdout.split("\t", 1)[0]

    revoked = dbkeep("token:revoke", token_id, metadata_url=metadata_url, tmp_path=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert_failure(await client.get("/admin/api/database-backups", headers=headers), 401)


async def test_user_create_refuses_short_password_and_missing_password(
    database: Database, metadata_url: str, tmp_path: Path
) -> None:
    short = dbkeep(
        "user:create",
        "x@example.com",
        "--password-stdin",
        metadata_url=metadata_url,
        tmp_path=tmp_path,
        stdin="short\n",
    )
    assert short.returncode == 1 and "at least 8" in short.stderr
    missing = dbkeep("user:create", "x@example.com", metadata_url=metadata_url, tmp_path=tmp_path)
    assert missing.returncode == 1 and "--password-stdin" in missing.stderr


async def test_token_for_unknown_user_fails_cleanly(
    database: Database, metadata_url: str, tmp_path: Path
) -> None:
    result = dbkeep(
        "token:create", "ghost@example.com", metadata_url=metadata_url, tmp_path=tmp_path
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "dbkeep: error: No user has the e-mail address ghost@example.com."
    )


def test_user_create_reads_a_piped_password_without_the_flag(
    database: Database, metadata_url: str, tmp_path: Path
) -> None:
    created = dbkeep(
        "user:create",
        "piped@example.com",
        metadata_url=metadata_url,
        tmp_path=tmp_path,
        stdin="a-long-password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "Created viewer piped@example.com" in created.stdout


async def test_user_list_shows_a_throttled_account_and_user_unlock_clears_it(
    database: Database, metadata_url: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    assert (
        dbkeep(
            "user:create",
            "ops@example.com",
            "--role",
            "admin",
            metadata_url=metadata_url,
            tmp_path=tmp_path,
            stdin="a-long-password\n",
        ).returncode
        == 0
    )
    for _ in range(5):
        await client.post(
            "/api/auth/login", json={"email": "ops@example.com", "password": "wrong-password"}
        )
    right = {"email": "ops@example.com", "password": "a-long-password"}
    assert_failure(await client.post("/api/auth/login", json=right), 429)

    listed = dbkeep("user:list", metadata_url=metadata_url, tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if "ops@example.com" in x)
    assert "admin" in line and "active" in line
    assert "locked for" in line and "198.51.100.7" in line and "5 failures" in line

    unlocked = dbkeep(
        "user:unlock", "OPS@example.com", metadata_url=metadata_url, tmp_path=tmp_path
    )
    assert unlocked.returncode == 0, unlocked.stderr
    assert "Unlocked ops@example.com" in unlocked.stdout
    listed = dbkeep("user:list", metadata_url=metadata_url, tmp_path=tmp_path)
    assert "not throttled" in listed.stdout
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


async def test_user_disable_enable_delete(
    database: Database, metadata_url: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return dbkeep(*args, metadata_url=metadata_url, tmp_path=tmp_path, stdin=stdin)

    for email in ("boss@example.com", "ops@example.com"):
        assert (
            run("user:create", email, "--role", "admin", stdin="a-long-password\n").returncode == 0
        )
    token = run("token:create", "ops@example.com").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200

    disabled = run("user:disable", "ops@example.com")
    assert disabled.returncode == 0, disabled.stderr
    assert "Disabled ops@example.com" in disabled.stdout
    assert_failure(await client.get("/api/auth/me", headers=headers), 401)
    listed = run("user:list").stdout
    assert "disabled" in next(x for x in listed.splitlines() if "ops@example.com" in x)

    enabled = run("user:enable", "ops@example.com")
    assert enabled.returncode == 0 and "Enabled ops@example.com" in enabled.stdout
    right = {"email": "ops@example.com", "password": "a-long-password"}
    assert (await client.post("/api/auth/login", json=right)).status_code == 200

    deleted = run("user:delete", "ops@example.com")
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted ops@example.com" in deleted.stdout
    assert "ops@example.com" not in run("user:list").stdout
    assert_failure(await client.post("/api/auth/login", json=right), 401)

    # One-line errors: an unknown user, the last admin.
    for command in ("user:disable", "user:enable", "user:delete", "user:unlock"):
        result = run(command, "ghost@example.com")
        assert result.returncode == 1
        assert (
            result.stderr.strip()
            == "dbkeep: error: No user has the e-mail address ghost@example.com."
        )
    last = run("user:delete", "boss@example.com")
    assert last.returncode == 1 and len(last.stderr.strip().splitlines()) == 1
    assert "only active admin" in last.stderr


def test_user_commands_have_help(tmp_path: Path, metadata_url: str) -> None:
    for command in ("user:list", "user:disable", "user:enable", "user:delete", "user:unlock"):
        result = dbkeep(command, "--help", metadata_url=metadata_url, tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout and command in result.stdout
