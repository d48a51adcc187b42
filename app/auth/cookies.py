"""The two login cookies: an HttpOnly session cookie and a script-readable CSRF cookie."""

from __future__ import annotations

from starlette.responses import Response

from app.config import Settings

SESSION_COOKIE = "dbkeep_session"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def set_login_cookies(
    response: Response, *, session_token: str, csrf_token: str, settings: Settings
) -> None:
    """Browser-session cookies; the server-side session decides when they stop working."""
    secure = settings.public_url_https
    response.set_cookie(
        SESSION_COOKIE, session_token, httponly=True, secure=secure, samesite="lax", path="/"
    )
    # Readable by the dashboard's script, which echoes it in the X-CSRF-Token header.
    response.set_cookie(
        CSRF_COOKIE, csrf_token, httponly=False, secure=secure, samesite="lax", path="/"
    )


def clear_login_cookies(response: Response, *, settings: Settings) -> None:
    """Tell the browser to forget both cookies."""
    secure = settings.public_url_https
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=False, samesite="lax")
