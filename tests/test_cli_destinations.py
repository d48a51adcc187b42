"""``dbkeep destination:add/list/test`` as a person runs them: a local directory added, listed
and tested; an S3 destination's secret read from stdin (never argv) and never printed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from app.config import Settings
from tests.test_cli import DBKEEP, cli_env

SECRET = "Sk-cli-never-printed-0123456789"


@pytest.fixture
def env(settings: Settings, database: object) -> dict[str, str]:
    environment = cli_env(settings)
    environment.pop("DBKEEP_S3_ACCESS_KEY_ID", None)
    environment.pop("DBKEEP_S3_SECRET_ACCESS_KEY", None)
    return environment


def dbkeep(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DBKEEP, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_a_local_destination_is_added_listed_and_tested(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    added = dbkeep("destination:add", "second", "local", str(tmp_path / "two"), env=env)
    assert added.returncode == 0, added.stderr
    assert "second" in added.stdout
    listed = dbkeep("destination:list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["second"]["config"] == {"path": str(tmp_path / "two")}
    assert rows["local"]["config"] == {"path": str(settings.backup_dir)}
    tested = dbkeep("destination:test", "second", env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "write: ok" in tested.stdout and "delete: ok" in tested.stdout
    duplicate = dbkeep("destination:add", "second", "local", str(tmp_path / "x"), env=env)
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr


def test_a_failing_test_says_which_step_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert dbkeep("destination:add", "bad", "local", str(blocker / "d"), env=env).returncode == 0
    tested = dbkeep("destination:test", "bad", env=env)
    assert tested.returncode == 1
    assert "write: FAILED" in tested.stdout
    assert str(tmp_path) not in tested.stdout + tested.stderr


def test_s3_keys_come_from_stdin_and_the_secret_is_never_printed(env: dict[str, str]) -> None:
    added = dbkeep(
        "destination:add",
        "offsite",
        "s3",
        "--endpoint",
        "http://127.0.0.1:9",
        "--bucket",
        "dbkeep-test",
        "--path-style",
        env=env,
        stdin=f"AKIDCLI\n{SECRET}\n",
    )
    assert added.returncode == 0, added.stderr
    listed = dbkeep("destination:list", "--json", env=env)
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "offsite")
    assert row["has_secret"] is True and row["config"]["access_key_id"] == "AKIDCLI"
    for result in (added, listed, dbkeep("destination:list", env=env)):
        assert SECRET not in result.stdout + result.stderr


def test_a_source_added_with_destinations_lists_them_in_order(
    env: dict[str, str], tmp_path: Path, settings: Settings, target_database: str
) -> None:
    assert (
        dbkeep("destination:add", "second", "local", str(tmp_path / "two"), env=env).returncode == 0
    )
    assert settings.target_url is not None
    added = dbkeep(
        "source:add",
        "shop",
        "-",
        "--destination",
        "second",
        "--destination",
        "local",
        env=env,
        stdin=settings.target_url.get_secret_value() + "\n",
    )
    assert added.returncode == 0, added.stderr
    destinations = {
        row["name"]: row["id"]
        for row in json.loads(dbkeep("destination:list", "--json", env=env).stdout)
    }
    sources = json.loads(dbkeep("source:list", "--json", env=env).stdout)
    shop = next(row for row in sources if row["name"] == "shop")
    assert shop["destination_ids"] == [destinations["second"], destinations["local"]]
    unknown = dbkeep(
        "source:add",
        "other",
        "-",
        "--destination",
        "nowhere",
        env=env,
        stdin=settings.target_url.get_secret_value() + "\n",
    )
    assert unknown.returncode == 1 and "nowhere" in unknown.stderr
