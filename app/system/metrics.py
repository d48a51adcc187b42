"""The metrics ``GET /metrics`` exposes in Prometheus' text format (app/system/router.py); the
HTTP request middleware that feeds the request metrics is app/system/middleware.py.

Each application has its own ``CollectorRegistry``. Gauges that reflect stored state are set
just before each scrape by *refreshers*: ``metrics.add_refresher(fn)`` where ``fn(state)`` is an
async callable (the worker adds queue depth and heartbeat age this way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.datastructures import State

from app.backups.models import BackupStatus
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
        # Per source and database (contract part 2): bounded by sources times databases, no ids.
        self.source_last_success = Gauge(
            "dbkeep_source_last_success_timestamp_seconds",
            "When the newest completed backup of each source's database finished (Unix time).",
            ["source", "database"],
            registry=self.registry,
        )
        self.source_health = Gauge(
            "dbkeep_source_health",
            "Each source's health: 0 ok, 1 warning, 2 failing (the reasons are in /health).",
            ["source"],
            registry=self.registry,
        )
        self.source_backup_size = Gauge(
            "dbkeep_source_last_backup_size_bytes",
            "Size of the newest completed backup of each source's database (stored bytes).",
            ["source", "database"],
            registry=self.registry,
        )
        self.source_backup_duration = Gauge(
            "dbkeep_source_last_backup_duration_seconds",
            "How long the newest completed backup of each source's database took.",
            ["source", "database"],
            registry=self.registry,
        )
        self.source_last_failed = Gauge(
            "dbkeep_source_last_backup_failed",
            "1 when the newest finished backup of each source's database failed, else 0.",
            ["source", "database"],
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "dbkeep_metrics_refresh_errors_total",
            "Refreshers that failed during a scrape.",
            registry=self.registry,
        )
        self._refreshers: list[Refresher] = [self._refresh_backups, self._refresh_sources]

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
            backups = BackupRepository(session)
            rows = await backups.count_by_status()
            newest = await backups.edge_completed(newest=True)
        counts = {status.value: 0 for status in BackupStatus}
        counts[CANCELLED] = 0
        for status, was_cancelled, count in rows:
            # A cancel is the user's choice, not a failure; a trashed one stays "in_trash".
            failed = status is BackupStatus.failed
            counts[CANCELLED if was_cancelled and failed else status.value] += count
        for label, count in counts.items():
            self.backups.labels(status=label).set(count)
        if newest is None:
            self.newest_backup_age.set(-1)
        else:
            age = utcnow() - (newest.completed_at or newest.backup_date)
            self.newest_backup_age.set(age.total_seconds())

    async def _refresh_sources(self, state: State) -> None:
        """The per-source series, from the same evaluation as /health (a constant number of
        statements). Series of a source or database that is gone disappear."""
        from app.sources.health_service import SourceHealthService

        database: Database = state.database
        async with database.sessionmaker() as session:
            service = SourceHealthService(session, backup_dir=state.settings.backup_dir)
            evaluated = await service.evaluate()
        per_database = (
            self.source_last_success,
            self.source_backup_size,
            self.source_backup_duration,
            self.source_last_failed,
        )
        for gauge in (*per_database, self.source_health):
            gauge.clear()
        for item in evaluated:
            source = item.snapshot.name
            self.source_health.labels(source=source).set(item.health.level)
            for db in item.snapshot.databases:
                labels = {"source": source, "database": db.database}
                self.source_last_failed.labels(**labels).set(
                    1 if db.last_finished_status == "failed" else 0
                )
                if db.last_success_at is None:
                    continue
                self.source_last_success.labels(**labels).set(db.last_success_at.timestamp())
                self.source_backup_size.labels(**labels).set(db.last_size or 0)
                if db.last_duration_ms is not None:
                    self.source_backup_duration.labels(**labels).set(db.last_duration_ms / 1000)
