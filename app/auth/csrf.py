"""CSRF protection for cookie-authenticated requests (bearer tokens need none)."""

from __future__ import annotations

from starlette.requests import Request

from app.auth.cookies import CSRF_HEADER
from app.auth.service import Principal
from app.auth.tokens import secrets_equal
from app.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FAILED = "The CSRF token is missing or invalid; reload the page and try again."


def require_csrf(request: Request, principal: Principal) -> None:
    """403 unless an unsafe cookie-authenticated request echoes the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.session is None:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not secrets_equal(sent, principal.session.csrf_token):
        raise Forbidden(CSRF_FAILED)
