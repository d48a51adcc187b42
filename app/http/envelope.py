"""The contract's response envelope, as pydantic models (for OpenAPI) and as responses."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

T = TypeVar("T")


class DataEnvelope(BaseModel, Generic[T]):
    """``{"success": true, "data": ...}``."""

    success: Literal[True] = True
    data: T


class MessageEnvelope(BaseModel, Generic[T]):
    """``{"success": true, "message": ..., "data": ...}`` for actions that report."""

    success: Literal[True] = True
    message: str
    data: T


class PageMeta(BaseModel):
    current_page: int = Field(examples=[1])
    per_page: int = Field(examples=[10])
    total: int = Field(examples=[42])
    last_page: int = Field(examples=[5])


class PageEnvelope(BaseModel, Generic[T]):
    """``{"success": true, "data": [...], "meta": {...}}``."""

    success: Literal[True] = True
    data: list[T]
    meta: PageMeta


class ErrorEnvelope(BaseModel):
    """The failure envelope: one human sentence, and per-field messages for validation errors."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"success": False, "message": "Backup 7 was not found."}]}
    )

    success: Literal[False] = False
    message: str
    errors: dict[str, list[str]] | None = None


def error_response(
    status_code: int,
    message: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A failure envelope response."""
    body: dict[str, Any] = {"success": False, "message": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status_code, headers=headers)


_ERROR_DESCRIPTIONS: dict[int, tuple[str, str]] = {
    401: ("Not logged in, or the session or token is no longer valid.", "Unauthenticated."),
    403: (
        "Not an admin, or the CSRF header of a cookie-authenticated request is missing or wrong.",
        "This action is unauthorized.",
    ),
    404: ("No such backup (or it was deleted).", "Backup 7 was not found."),
    409: (
        "The backup is in the wrong state for this action (pending, running, failed, trashed, "
        "damaged), or another backup or restore of the target is running.",
        "Backup 7 is in progress; it can't be downloaded.",
    ),
    413: (
        "The request body is larger than the configured limit.",
        "The request body is too large.",
    ),
    415: ("The request body is not JSON.", "The request body must be JSON (application/json)."),
    422: ("An input is out of range or malformed.", "The given data was invalid."),
    429: (
        "Too many failed logins for this account; see Retry-After.",
        "Too many failed login attempts; try again later.",
    ),
    503: (
        "The queue or the metadata store can't be reached.",
        "The job queue is unavailable; try again shortly.",
    ),
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given failure statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, message = _ERROR_DESCRIPTIONS[code]
        example: dict[str, Any] = {"success": False, "message": message}
        if code == 422:
            example["errors"] = {"page": ["Input should be greater than or equal to 1"]}
        entry: dict[str, Any] = {
            "model": ErrorEnvelope,
            "description": description,
            "content": {"application/json": {"example": example}},
        }
        if code == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the account may try again.",
                    "schema": {"type": "integer"},
                }
            }
        out[code] = entry
    return out
