"""Which MySQL/MariaDB client tools are installed, their versions, and what they support."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Literal

from app.pipeline.process import ToolNotFound, run_capture

INSTALL_HINT = "install it with: apt-get install mariadb-client"
DUMP_CANDIDATES = ("mariadb-dump", "mysqldump")
CLIENT_CANDIDATES = ("mariadb", "mysql")

Flavour = Literal["mariadb", "mysql"]

# Keyed by (path, mtime): version and --help output only change when the binary does.
_versions: dict[tuple[str, float], str | None] = {}
_options: dict[tuple[str, float, str], bool] = {}


@dataclass(frozen=True)
class ClientTools:
    dump: str | None  # resolved executable, None when missing
    client: str | None
    dump_name: str  # what to call it in messages (no directory)
    client_name: str
    dump_version: str | None
    client_version: str | None
    flavour: Flavour
    sandbox: bool  # the client accepts --sandbox (refuses \\! and other file-system commands)
    dump_history: bool = False  # the dump tool has --dump-history (system-versioned tables)

    def missing_dump_message(self) -> str:
        return f"{self.dump_name} was not found: {INSTALL_HINT}"

    def missing_client_message(self) -> str:
        return f"{self.client_name} was not found: {INSTALL_HINT}"


def resolve(configured: str | None, candidates: tuple[str, ...]) -> str | None:
    """The executable to run: the configured one (name or path) or the first candidate found."""
    if configured:
        if os.sep in configured:
            ok = os.path.isfile(configured) and os.access(configured, os.X_OK)
            return configured if ok else None
        return shutil.which(configured)
    for name in candidates:
        if found := shutil.which(name):
            return found
    return None


def display_name(configured: str | None, candidates: tuple[str, ...]) -> str:
    if configured:
        return os.path.basename(configured)
    return " (or ".join(candidates) + ")" * (len(candidates) - 1)


def _key(path: str) -> tuple[str, float] | None:
    try:
        return (path, os.stat(path).st_mtime)
    except OSError:
        return None


async def tool_version(path: str) -> str | None:
    """First line of ``--version``, e.g. ``mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB``."""
    key = _key(path)
    if key is not None and key in _versions:
        return _versions[key]
    try:
        code, out, _ = await run_capture([path, "--no-defaults", "--version"], time_limit=15)
    except (ToolNotFound, TimeoutError):
        return None
    text = out.decode("utf-8", errors="replace").strip()
    words = text.splitlines()[0].split() if code == 0 and text else []
    # Some clients print argv[0] first: keep the program name, not where it is installed.
    version = " ".join([os.path.basename(words[0]), *words[1:]]) if words else None
    if key is not None:
        _versions[key] = version
    return version


async def lists_option(path: str, option: str) -> bool:
    """Whether the tool's ``--help`` lists ``option`` (e.g. ``--sandbox``)."""
    stat_key = _key(path)
    key = (*stat_key, option) if stat_key is not None else None
    if key is not None and key in _options:
        return _options[key]
    try:
        code, out, _ = await run_capture([path, "--no-defaults", "--help"], time_limit=15)
    except (ToolNotFound, TimeoutError):
        return False
    pattern = re.compile(r"^\s*(?:-\w, )?" + re.escape(option) + r"\b", re.MULTILINE)
    supported = code == 0 and bool(pattern.search(out.decode("utf-8", errors="replace")))
    if key is not None:
        _options[key] = supported
    return supported


async def supports_sandbox(path: str) -> bool:
    """Whether the client lists ``--sandbox`` in its ``--help`` (MariaDB >= 10.5.25/10.6.18)."""
    return await lists_option(path, "--sandbox")


def flavour_of(version: str | None) -> Flavour:
    return "mariadb" if version is None or "mariadb" in version.lower() else "mysql"


async def detect(dump_binary: str | None, client_binary: str | None) -> ClientTools:
    """Find the dump and client tools (configured ones win) and what they support."""
    dump = resolve(dump_binary, DUMP_CANDIDATES)
    client = resolve(client_binary, CLIENT_CANDIDATES)
    dump_version = await tool_version(dump) if dump else None
    client_version = await tool_version(client) if client else None
    return ClientTools(
        dump=dump,
        client=client,
        dump_name=display_name(dump_binary, DUMP_CANDIDATES),
        client_name=display_name(client_binary, CLIENT_CANDIDATES),
        dump_version=dump_version,
        client_version=client_version,
        flavour=flavour_of(dump_version or client_version),
        sandbox=await supports_sandbox(client) if client else False,
        dump_history=await lists_option(dump, "--dump-history") if dump else False,
    )
