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
