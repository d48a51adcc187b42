"""Client credentials in a private option file, never in argv or the environment.

The file is 0600 inside a fresh 0700 directory and is removed as soon as the client is done. It
must be passed as the client's first argument (``--defaults-extra-file`` elsewhere exits with 7).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from app.engines.base import TargetSpec

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
    directory = tempfile.mkdtemp(prefix="dbkeep-client-")  # mkdtemp makes it 0700
    try:
        path = os.path.join(directory, "client.cnf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(option_file_text(target))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def defaults_argument(path: str) -> str:
    """The option that must come first in the client's argv."""
    return f"--defaults-extra-file={path}"
