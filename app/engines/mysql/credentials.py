"""Client credentials in a private option file, never in argv or the environment.

The file is 0600 inside a fresh 0700 directory and is removed as soon as the client is done. It
must be passed as the client's first argument (``--defaults-extra-file`` elsewhere exits with 7).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from app.engines.base import TargetSpec

_PREFIX = "dbkeep-client-"
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


def quote_option_value(value: str) -> str:
    """Quote a value for a MySQL option file so '#', quotes and newlines stay literal."""
    if "\0" in value:
        raise ValueError("option values can't contain NUL characters")
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def option_file_text(target: TargetSpec) -> str:
    """The ``[client]`` section telling a client where to connect and as whom."""
    lines = ["[client]", f"user={quote_option_value(target.user)}"]
    if target.password:
        lines.append(f"password={quote_option_value(target.password)}")
    if target.socket:
        lines += ["protocol=SOCKET", f"socket={quote_option_value(target.socket)}"]
    else:
        lines += [f"host={quote_option_value(target.host)}", f"port={int(target.port)}"]
        if target.host != "localhost":
            lines.append("protocol=TCP")
    return "\n".join(lines) + "\n"


@contextmanager
def defaults_file(target: TargetSpec) -> Iterator[str]:
    """Yield the path of a private option file for ``target``; delete it on exit."""
    directory = tempfile.mkdtemp(prefix=_PREFIX)  # mkdtemp makes it 0700
    try:
        path = os.path.join(directory, "client.cnf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(option_file_text(target))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def remove_stale_defaults_files(older_than: timedelta = timedelta(minutes=10)) -> int:
    """Delete option files left by a process killed before its cleanup ran; return how many.

    Clients read the file within milliseconds of starting, so one older than a few minutes is
    never still needed, even by a dump that is still running.
    """
    root = tempfile.gettempdir()
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    try:
        names = [name for name in os.listdir(root) if name.startswith(_PREFIX)]
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


def defaults_argument(path: str) -> str:
    """The option that must come first in the client's argv."""
    return f"--defaults-extra-file={path}"
