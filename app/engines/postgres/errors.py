"""A PostgreSQL tool's failure as a one-line ``EngineError`` (no password, no file path)."""

from __future__ import annotations

import re

from app.engines.base import EngineError, FailureKind

_TRANSIENT = (
    "could not connect",
    "connection refused",
    "server closed the connection",
    "connection to server",
    "timeout expired",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "could not translate host name",
    "no route to host",
    "too many connections",
    "canceling statement due to conflict",
    "could not serialize access",
    "deadlock detected",
)
_PATH = re.compile(r"(?:/[^\s\"':]+)+")
_PREFIX = re.compile(r"^(?:pg_dump|pg_restore|psql)(?:: error)?:\s*", re.IGNORECASE)


def _scrub(text: str, password: str) -> str:
    if password:
        text = text.replace(password, "***")
    return _PATH.sub("<path>", text)


def _reason(stderr: str) -> str:
    """The line that says what went wrong: the first ``error``/``FATAL`` line, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    noise = ("detail:", "hint:", "warning:")
    lines = [line for line in lines if not line.lower().startswith(noise)] or lines
    for line in lines:
        lowered = line.lower()
        if "error:" in lowered or "fatal:" in lowered:
            return line
    return lines[-1] if lines else ""


def classify(code: int, stderr: str, *, tool: str, user: str, password: str) -> EngineError:
    """Turn an exit status and stderr into an ``EngineError`` saying what to fix."""
    reason = _reason(stderr)
    lowered = stderr.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return EngineError(
            f"access denied for user {user!r}: the password is wrong or missing "
            "(check the source URL)",
            kind=FailureKind.permanent,
        )
    match = re.search(r'database "([^"]+)" does not exist', stderr)
    if match and "error" in lowered:
        return EngineError(f"unknown database {match.group(1)!r}", kind=FailureKind.permanent)
    match = re.search(r'role "([^"]+)" does not exist', stderr)
    if match:
        return EngineError(
            f"role {match.group(1)!r} does not exist on the server", kind=FailureKind.permanent
        )
    if "permission denied" in lowered or "must be owner" in lowered:
        detail = _scrub(_PREFIX.sub("", reason), password)
        return EngineError(
            f"{tool}: the account {user!r} lacks a privilege the operation needs ({detail})",
            kind=FailureKind.permanent,
        )
    if "server version mismatch" in lowered or "aborting because of server version" in lowered:
        return EngineError(_scrub(_PREFIX.sub("", reason), password), kind=FailureKind.permanent)
    kind = FailureKind.transient if any(m in lowered for m in _TRANSIENT) else FailureKind.permanent
    detail = _scrub(_PREFIX.sub("", reason), password) or f"exit status {code}"
    return EngineError(f"{tool} failed: {detail}", kind=kind)
