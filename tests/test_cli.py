"""The dbkeep commands as a person runs them: real processes, real MariaDB, exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from tests import support

DBKEEP = str(Path(sys.executable).with_name("dbkeep"))


def cli_env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    assert settings.target_url is not None
    env.update(
        DBKEEP_ENV="test",
        DBKEEP_DATABASE_URL=settings.database_url,
        DBKEEP_TARGET_URL=settings.target_url.get_secret_value(),
        DBKEEP_BACKUP_DIR=str(settings.backup_dir),
        DBKEEP_VAR_DIR=str(settings.var_dir),
        DBKEEP_ENCRYPTION_KEY=settings.encryption_key.get_secret_value()
        if settings.encryption_key
        else "",
        DBKEEP_REDIS_URL=settings.redis_url,
        DBKEEP_QUEUE_NAME=settings.queue_name,
        DBKEEP_LOG_FORMAT="json",
    )
    env.update(overrides)
    return env


def dbkeep(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DBKEEP, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def env(settings: Settings, database: object, target_database: str) -> dict[str, str]:
    support.admin_sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));"
        "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_100;",
        database=target_database,
    )
    return cli_env(settings)


def test_every_command_has_help() -> None:
    top = subprocess.run([DBKEEP, "--help"], capture_output=True, text=True, check=True)
    commands = [
        "backup:database",
        "backup:auto-trash",
        "backup:cleanup-trash",
        "backup:restore",
        "backup:verify",
        "backup:import",
        "migrate",
        "source:add",
        "source:list",
        "source:test",
        "source:remove",
    ]
    for command in commands:
        assert command in top.stdout
        sub = subprocess.run([DBKEEP, command, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0 and "Usage" in sub.stdout


def test_backup_database_waits_and_reports_the_file(
    env: dict[str, str], settings: Settings
) -> None:
    result = dbkeep("backup:database", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Backup 1 completed: backup_")
    assert "sha256 " in result.stdout
    files = [p for p in settings.backup_dir.rglob("*.sql.zst")]
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600

    verify = dbkeep("backup:verify", "1", env=env)
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_a_failed_backup_is_one_line_on_stderr_and_exit_1(
    settings: Settings, database: object, target_database: str
) -> None:
    env = cli_env(
        settings,
        DBKEEP_TARGET_URL=support.target_url(target_database, password="not-the-password-42"),
    )
    result = dbkeep("backup:database", env=env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dbkeep: error: backup 1 failed: ")
    assert "access denied" in last.lower()
    assert "not-the-password-42" not in result.stderr + result.stdout


def test_missing_target_is_a_clear_error(settings: Settings, database: object) -> None:
    env = cli_env(settings, DBKEEP_TARGET_URL="")
    result = dbkeep("backup:database", env=env)
    assert result.returncode == 1
    assert "DBKEEP_TARGET_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_restore_without_yes_refuses_when_not_interactive(env: dict[str, str]) -> None:
    result = dbkeep("backup:restore", "1", env=env)
    assert result.returncode == 1
    assert "--yes" in result.stderr


def test_retention_commands_report_what_they_did(env: dict[str, str]) -> None:
    assert dbkeep("backup:database", env=env).returncode == 0
    trash = dbkeep("backup:auto-trash", env=env)
    assert trash.returncode == 0 and "Moved 0 backup(s)" in trash.stdout
    cleanup = dbkeep("backup:cleanup-trash", env=env)
    assert cleanup.returncode == 0 and "Deleted 0 trashed backup(s)" in cleanup.stdout


def test_migrate_is_idempotent(env: dict[str, str]) -> None:
    for _ in range(2):
        result = dbkeep("migrate", env=env)
        assert result.returncode == 0, result.stderr


def test_a_command_imports_only_its_own_module_and_help_lists_them_all() -> None:
    probe = (
        "import sys; from app.cli import _register; _register(sys.argv[1:]); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'app.cli.backups', 'app.cli.users', "
        "'app.cli.server', 'app.cli.sources') if m in sys.modules))"
    )

    def loaded(*argv: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", probe, "dbkeep", *argv],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert loaded("backup:database") == "['app.cli.backups']"
    assert loaded("token:list") == "['app.cli.users']"
    assert loaded("source:list") == "['app.cli.sources']"
    assert "app.cli.server" in loaded("serve")
    assert loaded("--help").count("app.cli") == 4
    listed = subprocess.run([DBKEEP, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("backup:database", "migrate", "user:create", "serve", "source:add"):
        assert command in listed


def test_a_backup_command_loads_neither_rich_nor_pygments_but_the_progress_bar_still_can() -> None:
    # structlog would import both for tracebacks dbkeep never prints (app/__init__.py): 3.3 MiB
    # of a backup process's memory target. zstandard is only for the in-process codecs, which a
    # backup through the zstd tool never makes (app/pipeline/codecs.py); arq and the Redis
    # client only for --queue (app/cli/backups.py).
    probe = (
        "import sys; from app.cli import _register; _register(['dbkeep', 'backup:database']); "
        "import structlog; "
        "hidden = [m for m in ('rich', 'pygments', 'zstandard', 'arq', 'redis') "
        "if m in sys.modules]; "
        "from rich.progress import Progress; "
        "print(hidden, structlog.dev.rich is None, 'rich.progress' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[] True True"
