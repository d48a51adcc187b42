"""Exception handlers: every failure leaves as the contract's envelope."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.errors import AppError, TooManyRequests
from app.http.envelope import error_response

log = structlog.get_logger(__name__)

# A list of 100,000 bad ids must not come back as 100,000 messages.
MAX_ERROR_FIELDS = 20
MAX_MESSAGES_PER_FIELD = 3

_STATUS_MESSAGES = {
    400: "The request could not be understood.",
    401: "Unauthenticated.",
    403: "This action is unauthorized.",
    404: "The requested resource was not found.",
    405: "This method is not allowed for this resource.",
    406: "The requested representation is not available.",
    413: "The request body is too large.",
    415: "The request body must be JSON (application/json).",
    429: "Too many requests; try again later.",
}
_LOCATIONS = {"query", "path", "body", "header", "cookie"}


def field_name(loc: Sequence[Any]) -> str:
    """``("query", "page")`` → ``page``; ``("body", "backup_ids", 3)`` → ``backup_ids.3``."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
        if loc[0] == "body" and isinstance(loc[1], int):  # a JSON syntax error's position
            return "body"
    return ".".join(parts) or "body"


def validation_errors(errors: Sequence[Any]) -> dict[str, list[str]]:
    """Pydantic errors grouped by field, bounded, without echoing the offending input."""
    out: dict[str, list[str]] = {}
    for error in errors:
        name = field_name(error.get("loc", ()))[:100]
        if name not in out and len(out) >= MAX_ERROR_FIELDS:
            continue
        messages = out.setdefault(name, [])
        if len(messages) < MAX_MESSAGES_PER_FIELD:
            messages.append(str(error.get("msg", "Invalid value."))[:300])
    return out


async def app_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    headers = None
    if exc.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(exc.status_code, exc.message, errors=exc.errors, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    if errors:
        field, messages = next(iter(errors.items()))
        message = f"Invalid {field}: {messages[0].rstrip('.')}."
    else:
        message = "The given data was invalid."
    return error_response(422, message, errors=errors)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it can't decode (e.g. JSON that is not UTF-8).
        return error_response(
            422,
            "The request body could not be parsed as JSON.",
            errors={"body": ["The body must be UTF-8 encoded JSON."]},
        )
    message = _STATUS_MESSAGES.get(exc.status_code, "The request failed.")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405 and (documented := allowed_methods(request)):
        headers["Allow"] = ", ".join(documented)
    return error_response(exc.status_code, message, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every documented method on this path (Starlette's Allow names only one route's)."""
    table: list[tuple[re.Pattern[str], bool, set[str]]] | None = getattr(
        request.app.state, "allowed_methods_table", None
    )
    if table is None:
        table = []
        for template, operations in request.app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            literal = "{" not in template
            table.append((re.compile(f"^{regex}$"), literal, {m.upper() for m in operations}))
        request.app.state.allowed_methods_table = table
    path = request.url.path
    matches = [(literal, methods) for pattern, literal, methods in table if pattern.match(path)]
    # A literal path (".../statistics") is its own resource, not an id of ".../{backup_id}".
    if any(literal for literal, _ in matches):
        matches = [m for m in matches if m[0]]
    return sorted(set().union(*(methods for _, methods in matches)))


def install_error_handlers(app: FastAPI) -> None:
    """Route every known failure into the envelope; unknown ones are caught by middleware."""
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(sa_exc.OperationalError, store_unavailable_handler)
    app.add_exception_handler(sa_exc.InterfaceError, store_unavailable_handler)
    app.add_exception_handler(sa_exc.TimeoutError, store_unavailable_handler)
    app.add_exception_handler(sa_exc.IntegrityError, store_conflict_handler)


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    log.error("http.metadata_store_unavailable", error_type=type(exc).__name__)
    return error_response(503, "The metadata store is unavailable; try again shortly.")


async def store_conflict_handler(request: Request, exc: Exception) -> Response:
    log.warning("http.integrity_conflict", error_type=type(exc).__name__)
    return error_response(409, "The change conflicts with another one; reload and try again.")
