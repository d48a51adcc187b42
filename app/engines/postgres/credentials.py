"""The password reaches libpq only through a private passfile (``PGPASSFILE``).

Never argv (``ps`` shows it), never ``PGPASSWORD`` (``/proc/PID/environ`` shows it). The file
is 0600 inside a fresh 0700 directory and removed as soon as the tool is done; the environment
the tools get carries where to connect and the passfile's path only.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

from app.engines.base import TargetSpec
from app.engines.postgres.target import LIBPQ_OPTIONS
from app.pipeline.process import child_env

PREFIX = "dbkeep-pg-"


def _escape(value: str) -> str:
    """A passfile field: ``:`` and ``\\`` are backslash-escaped; no newline can appear."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError("credentials can't contain line breaks or NUL characters")
    return value.replace("\\", "\\\\").replace(":", "\\:")


def passfile_text(target: TargetSpec) -> str:
    """One line matching any host, port and database for the target's user."""
    return f"*:*:*:{_escape(target.user)}:{_escape(target.password)}\n"


@contextmanager
def passfile(target: TargetSpec) -> Iterator[str]:
    """Yield the path of a private passfile for ``target``; delete it on exit."""
    directory = tempfile.mkdtemp(prefix=PREFIX)  # mkdtemp makes it 0700
    try:
        path = os.path.join(directory, "pgpass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(passfile_text(target))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def tool_env(
    target: TargetSpec, passfile_path: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a PostgreSQL tool runs with: ours without secrets or any inherited
    ``PG*`` setting, plus where to connect, as whom, and the passfile."""
    env = plain_env(base)
    env.update(
        PGHOST=target.socket or target.host,
        PGPORT=str(int(target.port)),
        PGUSER=target.user,
        PGPASSFILE=passfile_path,
        PGAPPNAME="dbkeep",
        PGCONNECT_TIMEOUT="15",
        PGCLIENTENCODING="UTF8",
        # No ~/.psqlrc, no service file of the worker's account: what runs is what we pass.
        PSQLRC=os.devnull,
        PGSERVICEFILE=os.devnull,
    )
    for name, value in target.params:
        variable = LIBPQ_OPTIONS.get(name)
        if variable is not None:
            env[variable] = value
    return env


def plain_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A tool's environment that connects nowhere (``pg_restore --list`` reads a file)."""
    return {k: v for k, v in child_env(base).items() if not k.upper().startswith("PG")}


def remove_stale_passfiles(older_than: timedelta = timedelta(minutes=10)) -> int:
    """Delete passfile directories a killed worker left (libpq reads the file when it
    connects, so one older than a few minutes is never needed); return how many."""
    root = tempfile.gettempdir()
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    try:
        names = [name for name in os.listdir(root) if name.startswith(PREFIX)]
    except OSError:
        return 0
    for name in names:
        path = os.path.join(root, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
