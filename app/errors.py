"""The one exception hierarchy; the HTTP layer renders each into the failure envelope.

Messages are written for the person reading them: one sentence, no SQL, no paths, no secrets.
"""

from __future__ import annotations


class AppError(Exception):
    status_code: int = 400

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    """The resource is in the wrong state for the action (a running backup, a failed one, ...)."""

    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class ValidationFailed(AppError):
    status_code = 422


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    """A dependency (queue, metadata store, storage) can't be reached right now."""

    status_code = 503
