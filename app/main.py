"""The FastAPI application: ``create_app()`` wires settings, lifespan, middleware and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.auth.service import AuthService
from app.backups.router import download_router
from app.backups.router import router as backups_router
from app.backups.totals import keep_totals_for
from app.bootstrap import sync_sources
from app.config import Settings, get_settings
from app.db import Database
from app.destinations.router import copies_router
from app.destinations.router import router as destinations_router
from app.encryption.router import router as encryption_router
from app.engines.registry import EngineRegistry
from app.http.docs import build_docs_router
from app.http.handlers import install_error_handlers
from app.http.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    StreamedBody,
    TrustedProxyMiddleware,
    install_access_log_redaction,
    install_relative_slash_redirects,
)
from app.http.sessions import SessionScopeMiddleware
from app.http.spa import build_spa_router
from app.jobs.observability import install as install_worker_observability
from app.jobs.queue import ArqJobQueue
from app.jobs.worker import embedded_worker, embedded_worker_requested
from app.keys import configure_encryption
from app.notifications.router import router as notifications_router
from app.sources.models import SourceEngine
from app.sources.router import IMPORTS_PATH
from app.sources.router import router as sources_router
from app.storage import get_storage
from app.system.health import default_registry
from app.system.metrics import Metrics
from app.system.middleware import MetricsMiddleware
from app.system.router import router as system_router
from app.verifications.router import router as verifications_router

log = structlog.get_logger(__name__)

OPENAPI_TAGS = [
    {"name": "backups", "description": "The original module's backup API (admins only)."},
    {"name": "sources", "description": "The databases dbkeep backs up (admins only)."},
    {"name": "auth", "description": "Session login for the dashboard; API tokens via the CLI."},
    {"name": "audit", "description": "Who did what, when, and from where (admins only)."},
    {"name": "system", "description": "Health and Prometheus metrics (no login)."},
]


def _operation_id(route: APIRoute) -> str:
    # Stable, readable ids for generated clients: the route function's name.
    return route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the metadata store, storage, engine and queue; create the first admin if needed."""
    settings: Settings = app.state.settings
    configure_encryption(settings)
    async with AsyncExitStack() as stack:
        database = Database(settings.database_url)
        stack.push_async_callback(database.dispose)
        keep_totals_for(database)
        app.state.database = database
        app.state.storage = get_storage(settings)
        app.state.engines = EngineRegistry(settings)
        app.state.engine = app.state.engines.get(SourceEngine.mysql)
        queue = ArqJobQueue.from_settings(settings)
        stack.push_async_callback(queue.close)
        app.state.queue = queue
        await _ensure_first_admin(database, settings)
        await sync_sources(database, settings)
        await stack.enter_async_context(_embedded_worker(settings))
        yield


def _embedded_worker(settings: Settings) -> AbstractAsyncContextManager[Any]:
    # `dbkeep serve` (without --no-worker) runs the worker and schedule in this process.
    return embedded_worker(settings) if embedded_worker_requested() else nullcontext()


async def _ensure_first_admin(database: Database, settings: Settings) -> None:
    try:
        async with database.sessionmaker() as session:
            await AuthService(session, settings=settings).ensure_first_admin()
    except Exception as exc:  # an unmigrated store must not stop /health from saying so
        log.error("auth.first_admin_failed", error_type=type(exc).__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The dbkeep API and dashboard for ``settings`` (by default from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="dbkeep",
        version=__version__,
        summary="Self-hosted database backup manager: the API of the dashboard and of scripts.",
        description=(
            "Every API route takes either the dashboard's session cookie (then unsafe methods "
            "need the X-CSRF-Token header) or `Authorization: Bearer <API token>` "
            "(`dbkeep token:create EMAIL`). Success: `{success: true, data, meta?, message?}`; "
            "failure: `{success: false, message, errors?}`."
        ),
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        swagger_ui_parameters={"persistAuthorization": False},
        docs_url=None,  # app/http/docs.py serves it, without a CDN
        redirect_slashes=False,  # absolute, from the Host header: install_relative_slash_redirects
    )
    app.state.settings = settings
    app.state.health = default_registry()
    app.state.metrics = Metrics()
    install_worker_observability(app)

    install_error_handlers(app)
    # Added innermost first: the request context (ids, last-resort 500) wraps everything else.
    app.add_middleware(SessionScopeMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        streamed=[
            StreamedBody("POST", IMPORTS_PATH, settings.max_upload_bytes, "DBKEEP_MAX_UPLOAD_BYTES")
        ],
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.public_url_https)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestContextMiddleware)
    if trusted := settings.trusted_proxy_networks():
        app.add_middleware(TrustedProxyMiddleware, trusted=trusted)  # outermost: the real client
    install_access_log_redaction()

    app.include_router(auth_router)
    app.include_router(backups_router)
    app.include_router(download_router)
    app.include_router(sources_router)
    app.include_router(notifications_router)
    app.include_router(encryption_router)
    app.include_router(destinations_router)
    app.include_router(copies_router)
    app.include_router(audit_router)
    app.include_router(verifications_router)
    app.include_router(system_router)
    app.include_router(build_docs_router(app))
    app.include_router(build_spa_router(app))
    install_relative_slash_redirects(app)
    _add_security_schemes(app)
    return app


def _add_security_schemes(app: FastAPI) -> None:
    """Document both ways to authenticate in the OpenAPI schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "bearerToken": {"type": "http", "scheme": "bearer", "description": "An API token."},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "dbkeep_session"},
        }
        _exact_integer_bounds(schema)
        public = {"login", "health", "metrics"}
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                if operation.get("operationId") not in public:
                    operation["security"] = [{"bearerToken": []}, {"sessionCookie": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_MAX_ID = 2**63 - 1


def _exact_integer_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model stores bounds as floats: 2**63-1 would come out as 2**63."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = _MAX_ID if value == float(_MAX_ID) else int(value)
            else:
                _exact_integer_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _exact_integer_bounds(item)
