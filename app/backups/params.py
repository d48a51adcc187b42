"""The list's filters as query parameters: one definition for every route that takes them (the
list and the CSV export), so both validate alike and answer the same 422."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from app.backups.filters import (
    MAX_SEARCH_LENGTH,
    SEARCH_PATTERN,
    StatusFilter,
    search_term,
    status_value,
)
from app.backups.repository import View
from app.engines.base import DATABASE_NAME_PATTERN, validate_database_name

__all__ = [
    "DatabaseQuery",
    "SearchQuery",
    "StatusQuery",
    "ViewQuery",
    "search_term",
    "status_value",
]

SearchQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_SEARCH_LENGTH,
        pattern=SEARCH_PATTERN,
        description=f"Literal text (at most {MAX_SEARCH_LENGTH} characters) found in the "
        "filename or the unique identifier; % and _ match themselves.",
    ),
]
StatusQuery = Annotated[StatusFilter | None, Query(description="Only backups with this status.")]
ViewQuery = Annotated[
    View, Query(description="active: everything but the trash; trash: only the trash.")
]
DatabaseQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        # Published for clients; checked by the validator below, whose message says the rule.
        json_schema_extra={"pattern": DATABASE_NAME_PATTERN},
        description="Only backups of this database (its exact name: 1-64 letters, digits, "
        "'_', '$' or '-', not starting with '-').",
    ),
    AfterValidator(lambda name: None if name is None else validate_database_name(name)),
]
