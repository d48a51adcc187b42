"""``GET /metrics`` in Prometheus' text format, and the HTTP request middleware that feeds it.

Each application has its own ``CollectorRegistry``. Gauges that reflect stored state are set
just before each scrape by *refreshers*: ``metrics.add_refresher(fn)`` where ``fn(state)`` is an
async callable (the worker adds queue depth and heartbeat age this way).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from starlette.datastructures import State
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.backups.models import BackupStatus, DatabaseBackup
from app.backups.repository import BackupRepository
from app.db import Database, utcnow

log = structlog.get_logger(__name__)

Refresher = Callable[[State], Awaitable[None]]

# The ``dbkeep_backups`` label of backups a user cancelled (status "failed" in the API).
CANCELLED = "cancelled"


class Metrics:
    """The metrics of one application."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "dbkeep_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "dbkeep_http_request_duration_seconds",
            "Time to answer HTTP requests (until the response started), by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.backups = Gauge(
            "dbkeep_backups",
            "Backups in the metadata store, by status; cancelled ones (status failed in the API) "
            'under "cancelled", not "failed".',
            ["status"],
            registry=self.registry,
        )
        self.newest_backup_age = Gauge(
            "dbkeep_newest_completed_backup_age_seconds",
            "Age of the newest completed backup (-1 when there is none).",
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "dbkeep_metrics_refresh_errors_total",
            "Refreshers that failed during a scrape.",
            registry=self.registry,
        )
        self._refreshers: list[Refresher] = [self._refresh_backups]

    def add_refresher(self, refresher: Refresher) -> None:
        """Run ``refresher(state)`` before each scrape to bring gauges up to date."""
        self._refreshers.append(refresher)

    async def render(self, state: State) -> bytes:
        """The text exposition; a failing refresher leaves its gauges as they were."""
        for refresher in self._refreshers:
            try:
                await refresher(state)
            except Exception as exc:
                self.scrape_errors.inc()
                log.warning("metrics.refresh_failed", error_type=type(exc).__name__)
        return generate_latest(self.registry)

    async def _refresh_backups(self, state: State) -> None:
        database: Database = state.database
        async with database.sessionmaker() as session:
            cancelled = DatabaseBackup.cancelled_at.is_not(None)
            rows = (
                await session.execute(
                    select(DatabaseBackup.status, cancelled, func.count()).group_by(
                        DatabaseBackup.status, cancelled
                    )
                )
            ).all()
            newest = await BackupRepository(session).edge_completed(newest=True)
        counts = {status.value: 0 for status in BackupStatus}
        counts[CANCELLED] = 0
        for status, was_cancelled, count in rows:
            # A cancel is the user's choice, not a failure; a trashed one stays "in_trash".
            row_status = BackupStatus(status)
            failed = row_status is BackupStatus.failed
            counts[CANCELLED if was_cancelled and failed else row_status.value] += int(count)
        for label, count in counts.items():
            self.backups.labels(status=label).set(count)
        if newest is None:
            self.newest_backup_age.set(-1)
        else:
            age = utcnow() - (newest.completed_at or newest.backup_date)
            self.newest_backup_age.set(age.total_seconds())


class MetricsMiddleware:
    """Count and time every HTTP request under its route template (never the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.http_latency.labels(scope["method"], _route(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            self.metrics.http_requests.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Unmatched or rejected before routing (413, 500): find the template ourselves.
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "other"))
    return "unmatched"


router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """Backup counts by status, newest completed backup age, HTTP request counts and latency."""
    registry: Metrics = request.app.state.metrics
    body = await registry.render(request.app.state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
