"""What a new user sees on the first start: the set-up scripts and a quiet migration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DBKEEP = str(Path(sys.executable).with_name("dbkeep"))


def _migrate(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
    env.update(
        DBKEEP_ENV="test",
        DBKEEP_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/meta.sqlite3",
        DBKEEP_VAR_DIR=str(tmp_path / "var"),
        DBKEEP_BACKUP_DIR=str(tmp_path / "backups"),
    )
    return subprocess.run(
        [DBKEEP, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=True
    )


def test_migrate_logs_the_upgrades_it_runs_and_nothing_else(tmp_path: Path) -> None:
    first = _migrate(tmp_path)
    assert "Running upgrade  -> 0001" in first.stderr
    # Alembic's start-up chatter (plugins, dialect) is not news for the user.
    assert "setup plugin" not in first.stderr
    assert "Context impl" not in first.stderr
    assert "non-transactional DDL" not in first.stderr

    again = _migrate(tmp_path)
    assert "alembic" not in again.stderr
    assert "up to date" in again.stdout
