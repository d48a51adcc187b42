"""The worker's parts of ``/health`` and ``/metrics``: heartbeat, queue depth, jobs, durations.

``install(app)`` registers them with the registries the API keeps in ``app.state``. Everything
is read from Redis (arq's heartbeat key and queue) and the metadata store, so the API process
reports on workers running anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.datastructures import State

from app.backups.models import RestoreStatus
from app.db import Database
from app.jobs.queue import ArqJobQueue, QueueStatus
from app.jobs.repository import ReconcileRepository
from app.system.health import CheckResult


async def check_worker(state: State) -> CheckResult:
    """A worker reported within the last few seconds; how many jobs wait in the queue."""
    queue: ArqJobQueue | None = getattr(state, "queue", None)
    if queue is None:
        return CheckResult("fail", "The job queue is not part of this build.")
    status = await queue.status()
    if not status.reachable:
        return CheckResult("fail", "Redis can't be reached, so no worker can run jobs.")
    details = {
        "queue_depth": status.depth,
        "heartbeat_age_seconds": status.heartbeat_age_s,
        "jobs": status.worker_info,
    }
    if not status.worker_seen:
        return CheckResult(
            "fail",
            "No worker has reported recently: start `dbkeep worker` "
            "(or `dbkeep serve` without --no-worker).",
            details,
        )
    return CheckResult("ok", "ok", details)


class WorkerMetrics(Collector):
    """Gauges and summaries refreshed before each scrape (``refresh``), served by ``collect``."""

    def __init__(self) -> None:
        self.queue: QueueStatus | None = None
        self.backups: list[tuple[str, int, int]] = []
        self.restores: list[tuple[str, int, int]] = []

    async def refresh(self, state: State) -> None:
        """Read the queue and the job durations; a metrics refresher for ``app.system.metrics``."""
        queue: ArqJobQueue | None = getattr(state, "queue", None)
        self.queue = await queue.status() if queue is not None else None
        database: Database = state.database
        async with database.sessionmaker() as session:
            repository = ReconcileRepository(session)
            self.backups = await repository.backup_durations()
            self.restores = await repository.restore_durations()

    def collect(self) -> Iterator[Metric]:
        queue = self.queue
        up = GaugeMetricFamily(
            "dbkeep_worker_up", "1 when a worker reported within the last few seconds."
        )
        up.add_metric([], 1 if queue is not None and queue.worker_seen else 0)
        yield up
        if queue is not None and queue.depth is not None:
            yield GaugeMetricFamily(
                "dbkeep_queue_depth", "Jobs waiting, deferred or running.", value=queue.depth
            )
        if queue is not None and queue.heartbeat_age_s is not None:
            yield GaugeMetricFamily(
                "dbkeep_worker_heartbeat_age_seconds",
                "Seconds since the newest worker heartbeat.",
                value=queue.heartbeat_age_s,
            )
        jobs = GaugeMetricFamily(
            "dbkeep_worker_jobs",
            "Jobs handled by the most recently reporting worker since it started, by outcome.",
            labels=["outcome"],
        )
        for outcome, count in _arq_counters(queue.worker_info if queue else None).items():
            jobs.add_metric([outcome], count)
        yield jobs
        durations = SummaryMetricFamily(
            "dbkeep_job_duration_seconds",
            "Time finished backups and restores took, by kind and final status.",
            labels=["kind", "status"],
        )
        for kind, rows in (("backup", self.backups), ("restore", self.restores)):
            for status, count, total_ms in rows:
                if status in {RestoreStatus.pending.value, RestoreStatus.in_progress.value}:
                    continue
                durations.add_metric([kind, status], count_value=count, sum_value=total_ms / 1000)
        yield durations
        restores = GaugeMetricFamily(
            "dbkeep_restores", "Restore operations, by status.", labels=["status"]
        )
        counts = {status.value: 0 for status in RestoreStatus}
        counts["cancelled"] = 0  # ended by a user's cancel: not counted as failed
        counts.update({status: count for status, count, _ in self.restores})
        for status, count in counts.items():
            restores.add_metric([status], count)
        yield restores


def _arq_counters(info: str | None) -> dict[str, int]:
    """``"j_complete=3 j_failed=0 j_retried=1 j_ongoing=0 queued=0"`` as numbers by outcome."""
    counters = {"complete": 0, "failed": 0, "retried": 0, "ongoing": 0}
    for part in (info or "").split():
        name, _, value = part.partition("=")
        if name.startswith("j_") and name[2:] in counters and value.isdigit():
            counters[name[2:]] = int(value)
    return counters


def install(app: Any) -> None:
    """Add the worker check to ``/health`` and the worker metrics to ``/metrics``."""
    app.state.health.register("worker", check_worker, critical=False)
    collector = WorkerMetrics()
    app.state.metrics.registry.register(collector)
    app.state.metrics.add_refresher(collector.refresh)
