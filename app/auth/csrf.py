"""CSRF protection for cookie-authenticated requests (bearer tokens need none): the session's
CSRF token, and the request's origin.

An unsafe cookie request must echo the CSRF token, and must not come from another site:

* ``Sec-Fetch-Site`` (sent by every current browser) must be ``same-origin`` (or ``none``, an
  action of the user's own, such as a bookmark); ``same-site`` is refused too, since a sibling
  host under the same site is not ours.
* ``Origin``, when sent, must be this application's origin. That is ``DBKEEP_PUBLIC_URL``'s when
  it is set (scheme, host and port compared). Without it, the origin is the ``Host`` the request
  came to, compared by host and port only: behind a TLS-terminating proxy the app can't know the
  scheme the browser used without trusting more headers. Comparing with ``Host`` is sound for
  this check: a browser always sends the real host it connects to, a page on another site can't
  change it, and a name rebound to our address (``Host: evil.example``, the same Origin) has no
  cookie of ours to send. A proxy that rewrites ``Host`` needs ``DBKEEP_PUBLIC_URL``.
* No ``Origin`` and no ``Sec-Fetch-Site`` at all is a non-browser client (curl, a script): the
  CSRF token alone decides, as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from app.auth.cookies import CSRF_HEADER
from app.auth.service import Principal
from app.auth.tokens import secrets_equal
from app.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FAILED = "The CSRF token is missing or invalid; reload the page and try again."
CROSS_ORIGIN = "Cross-site requests are not allowed; use the dashboard at its own address."
_DEFAULT_PORTS = {"http": 80, "https": 443}


def require_csrf(request: Request, principal: Principal) -> None:
    """403 unless an unsafe cookie-authenticated request echoes the session's CSRF token and
    comes from this application's own origin."""
    if request.method in SAFE_METHODS or principal.session is None:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not secrets_equal(sent, principal.session.csrf_token):
        raise Forbidden(CSRF_FAILED)
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in {"same-origin", "none"}:
        raise Forbidden(CROSS_ORIGIN)
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(request, origin):
        raise Forbidden(CROSS_ORIGIN)


def _same_origin(request: Request, origin: str) -> bool:
    sent = _origin_parts(origin)
    if sent is None:  # "null" (a sandboxed frame, a file) or garbage
        return False
    public_url: str | None = getattr(request.app.state.settings, "public_url", None)
    if public_url:
        return sent == _origin_parts(public_url)
    host = request.headers.get("host", "")
    ours = _origin_parts(f"{sent[0]}://{host}") if host else None
    return ours is not None and sent[1:] == ours[1:]


def _origin_parts(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, the port filled in; ``None`` if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]
