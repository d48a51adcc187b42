"""The list's filters as values, shared by the API (app/backups/params.py) and the CLI: no web
framework in here, so a CLI command does not import one."""

from __future__ import annotations

import re
from enum import StrEnum

from app.backups.models import BackupStatus

MAX_SEARCH_LENGTH = 200
# What a search may hold: control characters would only ever be an attack.
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class StatusFilter(StrEnum):
    """The statuses the list can be filtered by (the trash is a ``view``, not a status)."""

    completed = "completed"
    pending = "pending"
    in_progress = "in_progress"
    failed = "failed"


def search_problem(search: str) -> str | None:
    """Why ``search`` is refused (the API's rule, for the CLI), or None."""
    if len(search) > MAX_SEARCH_LENGTH or not re.fullmatch(SEARCH_PATTERN, search):
        return f"at most {MAX_SEARCH_LENGTH} characters, no control characters"
    return None


def search_term(search: str | None) -> str | None:
    """A search as the repository takes it: None when blank."""
    return search.strip() if search and search.strip() else None


def status_value(status: StatusFilter | None) -> BackupStatus | None:
    return BackupStatus(status.value) if status else None
