"""Finding pg_dump, pg_restore and psql, and the client that suits a server.

Debian/Ubuntu install one client per major version under ``/usr/lib/postgresql/N/bin`` (and the
newest on ``PATH`` through a wrapper). A dump must be taken by a pg_dump at least as new as the
server: an older one refuses (or worse, misses objects), so a server newer than every client here
is refused before any work, saying which package to install.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

TOOLS = ("pg_dump", "pg_restore", "psql")
DEFAULT_BIN_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
)
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
INSTALL_HINT = "install with apt-get install postgresql-client (or postgresql-client-{major})"


@dataclass(frozen=True)
class ClientSet:
    """One directory's (or PATH's) tools of one major version."""

    pg_dump: str | None
    pg_restore: str | None
    psql: str | None
    version: str | None  # "pg_dump (PostgreSQL) 15.20"
    major: int | None

    @property
    def complete(self) -> bool:
        return None not in (self.pg_dump, self.pg_restore, self.psql)

    def missing(self) -> list[str]:
        return [name for name in TOOLS if getattr(self, name) is None]


def parse_major(version_line: str) -> int | None:
    """``pg_dump (PostgreSQL) 15.20 (Debian ...)`` → 15 (9.6 → 9)."""
    match = _VERSION.search(version_line)
    return int(match.group(1)) if match else None


async def _version_of(binary: str) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        )
    except OSError:
        return None
    try:
        async with asyncio.timeout(10):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        return None
    text = out.decode("utf-8", errors="replace").strip()
    return text if proc.returncode == 0 and text else None


async def _client_set(lookup: dict[str, str | None]) -> ClientSet:
    version = await _version_of(lookup["pg_dump"]) if lookup["pg_dump"] else None
    return ClientSet(
        pg_dump=lookup["pg_dump"],
        pg_restore=lookup["pg_restore"],
        psql=lookup["psql"],
        version=version,
        major=parse_major(version) if version else None,
    )


def _lookup(directory: str) -> dict[str, str | None]:
    lookup: dict[str, str | None] = {}
    for name in TOOLS:
        path = os.path.join(directory, name)
        lookup[name] = path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return lookup


async def discover(bin_dirs: Sequence[str] | None = None) -> list[ClientSet]:
    """Every set of tools found: each versioned directory, and PATH's (when ``bin_dirs`` is
    None); newest major first."""
    found: list[ClientSet] = []
    dirs = list(bin_dirs) if bin_dirs is not None else [
        d for pattern in DEFAULT_BIN_GLOBS for d in glob.glob(pattern)
    ]  # fmt: skip
    for directory in dirs:
        lookup = await asyncio.to_thread(_lookup, directory)
        if any(lookup.values()):
            found.append(await _client_set(lookup))
    if bin_dirs is None:
        on_path = {name: shutil.which(name) for name in TOOLS}
        if any(on_path.values()):
            found.append(await _client_set(on_path))
    return sorted(found, key=lambda c: c.major or 0, reverse=True)


def choose(sets: Sequence[ClientSet], server: int | None) -> ClientSet | None:
    """The complete set whose major is the server's, else the oldest complete one newer than
    it (pg_dump dumps older servers), else the newest complete one (the caller refuses it when
    the server is newer); None when no complete set exists."""
    complete = [s for s in sets if s.complete and s.major is not None]
    if not complete:
        return None
    if server is None:
        return complete[0]
    same = [s for s in complete if s.major == server]
    if same:
        return same[0]
    newer = sorted((s for s in complete if (s.major or 0) > server), key=lambda s: s.major or 0)
    return newer[0] if newer else complete[0]


def too_old_message(client: ClientSet, server: int) -> str:
    return (
        f"the server is PostgreSQL {server} but the newest pg_dump here is {client.major} "
        f"({client.version}): a pg_dump older than the server can't dump it; "
        + INSTALL_HINT.format(major=server)
    )


def missing_message(sets: Sequence[ClientSet], server: int | None = None) -> str:
    partial = next((s for s in sets if not s.complete), None)
    names = partial.missing() if partial is not None else list(TOOLS)
    return (
        " and ".join(names)
        + " not found: "
        + INSTALL_HINT.format(major=server if server is not None else "N")
    )
