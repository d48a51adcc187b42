"""The backup commands at a terminal (a real pseudo-terminal): the restore prompt, the progress
bar's phase and total, and log lines printed above the bar instead of into it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from app.config import Settings
from tests import support
from tests.test_cli import DBKEEP, cli_env, dbkeep

# Escape sequences rich draws the bar with (cursor moves, erase line, colours, hide cursor).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Terminal:
    """``dbkeep`` with stdin, stdout and stderr on one pseudo-terminal, 120 columns wide."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.process = subprocess.Popen(
            [DBKEEP, *args],
            env={**env, "TERM": "xterm-256color"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.output = b""

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            if time.monotonic() > deadline:
                pytest.fail(f"never saw {pattern!r} in: {self.text()[-2000:]!r}")
            if not self._read(0.2) and self.process.poll() is not None:
                pytest.fail(f"exited {self.process.returncode} before {pattern!r}: {self.text()!r}")
        return self.text()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 300) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None or self._read(0.05):
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"still running: {self.text()[-2000:]!r}")
            self._read(0.1)
        os.close(self.master)
        return self.process.returncode

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def segments(self) -> list[str]:
        """What was printed, cut at every line start and carriage return, escapes removed."""
        return [s for s in re.split(r"[\r\n]+", _ANSI.sub("", self.text())) if s.strip()]


@pytest.fixture
def env(settings: Settings, database: object, target_database: str) -> dict[str, str]:
    # Enough rows that the dump and the load take a moment: the bar is drawn a few times.
    support.admin_sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(200));"
        "INSERT INTO t SELECT seq, REPEAT(MD5(seq), 6) FROM seq_1_to_50000;",
        database=target_database,
    )
    return cli_env(settings)


def _backed_up(env: dict[str, str]) -> str:
    result = dbkeep("backup:database", env=env)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Backup (\d+) completed", result.stdout)
    assert found is not None
    return found[1]


def _restore_rows(env: dict[str, str]) -> int:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, os; from sqlalchemy import func, select; "
            "from app.db import Database; from app.backups.models import RestoreOperation\n"
            "async def main():\n"
            "    db = Database(os.environ['DBKEEP_DATABASE_URL'])\n"
            "    async with db.sessionmaker() as s:\n"
            "        print(await s.scalar(select(func.count()).select_from(RestoreOperation)))\n"
            "    await db.dispose()\n"
            "asyncio.run(main())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(probe.stdout.strip())


def test_restore_at_a_terminal_asks_first_and_no_means_nothing_changes(
    env: dict[str, str], target_database: str
) -> None:
    backup_id = _backed_up(env)
    terminal = Terminal("backup:restore", backup_id, env=env)
    terminal.read_until(
        rf"Replace database '{target_database}' with backup {backup_id}\? \[y/N\]: "
    )
    terminal.type("n\n")
    assert terminal.wait() == 1
    assert "Nothing was changed." in terminal.text()
    assert _restore_rows(env) == 0

    # Enter alone is the default: no.
    terminal = Terminal("backup:restore", backup_id, env=env)
    terminal.read_until(r"\[y/N\]: ")
    terminal.type("\n")
    assert terminal.wait() == 1
    assert _restore_rows(env) == 0


def test_restore_at_a_terminal_shows_its_phases_and_logs_above_the_bar(
    env: dict[str, str], target_database: str
) -> None:
    backup_id = _backed_up(env)
    support.admin_sql("UPDATE t SET v = 'changed' WHERE id <= 10", database=target_database)
    terminal = Terminal("backup:restore", backup_id, env=env)
    terminal.read_until(r"\[y/N\]: ")
    terminal.type("y\n")
    assert terminal.wait() == 0, terminal.text()[-3000:]
    assert re.search(rf"Restore \d+ of backup {backup_id} completed", terminal.text())

    segments = terminal.segments()
    bar = [s for s in segments if s.startswith(f"Restoring {target_database}")]
    assert any(": safety backup" in s for s in bar), segments
    assert any(": loading" in s for s in bar), segments
    # While loading, the bar counts bytes of the backup's size: a total, never "?".
    assert any(re.search(r": loading .*\d/[\d.,]+ (kB|MB)", s) for s in bar), bar
    # Log records (JSON here) come out as lines of their own, above the bar, never inside it.
    logs = [s for s in segments if '"event"' in s]
    assert any('"restore.phase"' in s for s in logs)
    assert all(s.lstrip().startswith("{") for s in logs), logs


def test_backup_at_a_terminal_shows_the_estimate_as_the_total(env: dict[str, str]) -> None:
    terminal = Terminal("backup:database", env=env)
    assert terminal.wait() == 0, terminal.text()[-3000:]
    bar = [s for s in terminal.segments() if s.startswith("Backing up")]
    assert bar
    assert any(re.search(r"\d/[\d.,]+ (kB|MB)", s) for s in bar), bar
    logs = [s for s in terminal.segments() if '"event"' in s]
    assert any('"backup.started"' in s for s in logs)
    assert all(s.lstrip().startswith("{") for s in logs), logs


def test_restore_without_a_terminal_and_without_yes_is_one_line(
    env: dict[str, str],
) -> None:
    backup_id = _backed_up(env)
    result = dbkeep("backup:restore", backup_id, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dbkeep: error: restoring replaces the target database's data: pass --yes to confirm"
    ]
    assert _restore_rows(env) == 0
