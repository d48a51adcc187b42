"""Turn a MySQL/MariaDB tool's exit status and stderr tail into one actionable line.

Messages never contain the password, a file path, or the SQL text the server quotes back.
"""

from __future__ import annotations

import re

from app.engines.base import EngineError, FailureKind

MAX_MESSAGE = 300

# "mariadb-dump: Got error: 1045: "Access denied ..." when trying to connect"
_GOT_ERROR = re.compile(r"Got error: (\d+): \"?(.*?)\"?(?: when [a-z ]+)?$")
# "mariadb-dump: Error 2013: Lost connection to server during query when dumping table ..."
_DUMP_ERROR = re.compile(r"\bError (\d+): (.*)$")
# "ERROR 1064 (42000) at line 5: You have an error ..." (the mariadb client)
_CLIENT_ERROR = re.compile(r"\bERROR (\d+) \([0-9A-Z]{5}\)(?: at line (\d+))?: (.*)$")
# "mariadb-dump: Couldn't execute 'SHOW ...': View 'db.v' references invalid ... (1356)"
_COULDNT_EXECUTE = re.compile(r"Couldn't execute '.*?': (.*) \((\d+)\)$")
_ERRNO_WRITE = re.compile(r"Got errno (\d+) on write")

_PATH = re.compile(r"(?<![\w.])/[^\s'\"`]+")
_NEAR = re.compile(r"\s*near '.*", re.DOTALL)
_USER = re.compile(r"for user '([^']*)'")
_DATABASE = re.compile(r"database '([^']*)'")

ACCESS_DENIED = {1045, 1698}
UNKNOWN_DATABASE = {1049}
PRIVILEGE = {1044, 1142, 1143, 1227, 1370}
BROKEN_VIEW = {1356}
NO_DEFINER = {1449}
CANT_CONNECT = {2002, 2003, 2005}
LOST_CONNECTION = {2006, 2013}
BUSY = {1040, 1053, 1205, 1213}  # too many connections, shutdown, lock wait, deadlock
DISK_FULL_ERRNO = 28
DUMP_EXIT_WRITE_ERROR = 5


def sanitize(text: str, *, password: str = "") -> str:
    """One line, no paths, no quoted SQL, no password, at most ``MAX_MESSAGE`` characters."""
    line = " ".join(text.split())
    if password and len(password) >= 3:
        line = line.replace(password, "***")
    line = _NEAR.sub("", line)
    line = _PATH.sub("<path>", line)
    if len(line) > MAX_MESSAGE:
        line = line[: MAX_MESSAGE - 1].rstrip() + "…"
    return line


def find_error(stderr: str) -> tuple[int | None, str, int | None]:
    """(server/client error code, server text, line number) of the last error in ``stderr``."""
    for raw in reversed(stderr.splitlines()):
        line = raw.strip()
        if not line:
            continue
        if match := _CLIENT_ERROR.search(line):
            number = int(match.group(2)) if match.group(2) else None
            return int(match.group(1)), match.group(3), number
        if match := _GOT_ERROR.search(line):
            return int(match.group(1)), match.group(2), None
        if match := _COULDNT_EXECUTE.search(line):
            return int(match.group(2)), match.group(1), None
        if match := _DUMP_ERROR.search(line):
            return int(match.group(1)), match.group(2), None
    return None, "", None


def classify(
    exit_code: int, stderr: str, *, tool: str, user: str, password: str = ""
) -> EngineError:
    """The ``EngineError`` for a tool that exited with ``exit_code`` (negative: a signal)."""
    code, server_text, line_number = find_error(stderr)
    text = sanitize(server_text, password=password)
    if code in ACCESS_DENIED:
        who = _USER.search(server_text)
        name = who.group(1) if who else user
        return _permanent(f"access denied for user '{name}' (check the user name and password)")
    if code in UNKNOWN_DATABASE:
        found = _DATABASE.search(server_text)
        return _permanent(f"unknown database '{found.group(1)}'" if found else text)
    if code in PRIVILEGE:
        return _permanent(f"missing privilege: {text}")
    if code in BROKEN_VIEW:
        return _permanent(f"broken view: {text}")
    if code in NO_DEFINER:
        return _permanent(f"missing definer: {text}")
    if code in CANT_CONNECT:
        return EngineError(
            f"can't connect to the database server: {text}", kind=FailureKind.transient
        )
    if code in LOST_CONNECTION:
        return EngineError(
            f"lost connection to the database server ({tool} error {code})",
            kind=FailureKind.transient,
        )
    if code in BUSY:
        return EngineError(f"the database server is busy: {text}", kind=FailureKind.transient)
    errno_match = _ERRNO_WRITE.search(stderr)
    if exit_code == DUMP_EXIT_WRITE_ERROR and (
        errno_match is None or int(errno_match.group(1)) == DISK_FULL_ERRNO
    ):
        return _permanent("disk full")
    if exit_code < 0:
        return EngineError(f"{tool} was killed by signal {-exit_code}", kind=FailureKind.transient)
    if code is not None:
        where = f" at line {line_number}" if line_number else ""
        return _permanent(f"{tool} failed with error {code}{where}: {text}")
    last = sanitize(_last_line(stderr), password=password)
    if last:
        return _permanent(f"{tool} failed (exit status {exit_code}): {last}")
    return _permanent(f"{tool} failed (exit status {exit_code})")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _permanent(message: str) -> EngineError:
    return EngineError(message, kind=FailureKind.permanent)
