"""Pure ASGI middleware: request ids and the last-resort error handler, security headers,
the request-body limit (Starlette has none), trusted proxies; relative slash redirects and the
access log's redaction."""

from __future__ import annotations

import logging
import re
import secrets
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import structlog
from starlette._utils import get_route_path
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge
from app.http.envelope import error_response

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SPA_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc pages load their bundles from a CDN and start with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com data:; img-src 'self' data: https:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


class RequestContextMiddleware:
    """Give each request an id, and turn any unhandled exception into a generic 500 envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Logged with its traceback for the operator; the client learns only the id. The
                # traceback is formatted here, without local variables (rich's formatter would
                # print them, and they can hold credentials).
                log.error(
                    "http.unhandled_error",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    error_type=type(exc).__name__,
                    traceback="".join(traceback.format_exception(exc)),
                )
                if started:
                    return  # headers are out: the server closes the connection
                response = error_response(
                    500,
                    f"Something went wrong on our side; it was logged as request {request_id}.",
                )
                await response(scope, receive, send_with_id)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return str(candidate)
    return secrets.token_hex(8)


class SecurityHeadersMiddleware:
    """CSP, nosniff, no framing, no referrer; ``no-store`` unless a route chose its own caching."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                content_type = headers.get("content-type", "")
                if path in DOCS_PATHS:
                    csp = DOCS_CSP
                elif content_type.startswith("text/html"):
                    csp = SPA_CSP
                else:
                    csp = API_CSP
                headers.setdefault("Content-Security-Policy", csp)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Cross-Origin-Resource-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class StreamedBody:
    """A route whose body the application streams itself (an uploaded dump): it is never read
    up front, and may be up to ``max_bytes``, counted as it arrives."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    setting: str  # the variable that sets the limit, named in the 413

    def matches(self, scope: Scope) -> bool:
        return scope.get("method") == self.method and bool(self.path.match(scope.get("path", "")))


class BodySizeLimitMiddleware:
    """413 for bodies over ``max_bytes``, counted while they arrive, whatever Content-Length says.

    The body is read up front (it is at most ``max_bytes``) and replayed to the application, so
    an oversized body is refused before any route or dependency runs. A ``streamed`` route is
    not buffered: its limit is checked on Content-Length, then on every part that arrives (past
    it, reading the body raises ``PayloadTooLarge``, so the route stops and keeps nothing).
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, streamed: Sequence[StreamedBody] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = tuple(streamed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        for route in self.streamed:
            if route.matches(scope):
                await self._streamed(route, declared, scope, receive, send)
                return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                messages.append(message)
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(
        self,
        route: StreamedBody,
        declared: int | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        message = (
            f"The upload is too large (the limit is {route.max_bytes} bytes, {route.setting})."
        )
        if declared is not None and declared > route.max_bytes:
            response = error_response(413, message, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            part = await receive()
            if part["type"] == "http.request":
                received += len(part.get("body", b""))
                if received > route.max_bytes:
                    raise PayloadTooLarge(message)
            return part

        await self.app(scope, counted, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            f"The request body is too large (the limit is {self.max_bytes} bytes).",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class TrustedProxyMiddleware:
    """The client's address (and scheme) from ``X-Forwarded-For``/``-Proto``, only when the peer
    is one of ``DBKEEP_TRUSTED_PROXIES``; any other peer's headers are ignored (uvicorn's own
    proxy handling is off: it trusts every loopback peer).

    The client is the rightmost ``X-Forwarded-For`` address that is not a trusted proxy itself:
    addresses left of it were written by whoever sent the request and prove nothing.
    """

    def __init__(self, app: ASGIApp, *, trusted: Sequence[IPv4Network | IPv6Network]) -> None:
        self.app = app
        self.trusted = list(trusted)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            client = scope.get("client")
            if client and self._is_trusted(client[0]):
                headers = dict(scope.get("headers", []))
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
                for hop in reversed(hops):
                    if not self._is_trusted(hop):
                        if _valid_address(hop):
                            scope["client"] = (hop, 0)
                        break
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if scope["type"] == "http" and proto in {"http", "https"}:
                    scope["scheme"] = proto
        await self.app(scope, receive, send)


def _valid_address(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


# ---- trailing slashes ----------------------------------------------------------------------


def install_relative_slash_redirects(app: FastAPI) -> None:
    """``/path/`` → 307 to ``/path`` (and the other way), as a relative URL.

    Starlette's ``redirect_slashes`` writes ``Location: http://<Host header>/path``: a request
    with ``Host: evil.example`` got a redirect to evil.example. This runs only where the router
    found no route (its ``default``), with ``redirect_slashes=False`` set on the app, and names
    no host at all.
    """
    router = app.router
    fallback = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            location = _slash_twin(router, scope)
            if location is not None:
                await Response(status_code=307, headers={"Location": location})(
                    scope, receive, send
                )
                return
        await fallback(scope, receive, send)

    router.default = default


def _slash_twin(router: Any, scope: Scope) -> str | None:
    path: str = scope["path"]
    route_path = get_route_path(scope)
    if route_path == "/" or not route_path:
        return None
    twin = dict(scope)
    twin["path"] = path.rstrip("/") if route_path.endswith("/") else path + "/"
    # "//host" would be a URL of another host, not a path.
    if not twin["path"].startswith("/") or twin["path"].startswith("//"):
        return None
    if not any(route.matches(twin)[0] is not Match.NONE for route in router.routes):
        return None
    location = quote(twin["path"], safe="/:@!$&'()*+,;=-._~")
    query: bytes = scope.get("query_string", b"")
    return f"{location}?{query.decode('latin-1')}" if query else location


# ---- access log ----------------------------------------------------------------------------

# Query parameters whose values never reach a log line (matched anywhere in the name).
_SECRET_PARAMETER = re.compile(r"token|pass(word)?|secret|key|csrf|auth|session|signature", re.I)


def redact_query(target: str) -> str:
    """``/x?token=abc&page=2`` → ``/x?token=***&page=2``."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}=***" if eq and _SECRET_PARAMETER.search(unquote(name)) else item)
    return f"{path}?{'&'.join(parts)}"


class AccessLogRedaction(logging.Filter):
    """uvicorn's access line is ``'%s - "%s %s HTTP/%s" %d'`` (client, method, target with
    query, version, status): the target loses the values of secret-looking parameters."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
