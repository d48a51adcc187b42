"""The arq worker: its jobs, the cron table, Redis resilience, start-up and shutdown.

``dbkeep worker`` runs ``run_worker(settings)``; ``dbkeep serve`` runs the same worker inside the
API process with ``embedded_worker(settings)``. ``build_worker_settings(settings)`` is the full
set of ``arq.Worker`` arguments: ``Worker(**build_worker_settings(settings))`` is a dbkeep worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.bootstrap import open_bootstrap
from app.config import Settings, get_settings
from app.db import utcnow
from app.destinations import tasks as copy_tasks
from app.jobs import tasks
from app.jobs.queue import (
    HEALTH_CHECK_INTERVAL_S,
    RUN_BACKUP,
    RUN_RESTORE,
    RUN_VERIFICATION,
    ArqJobQueue,
)
from app.jobs.reconciler import Reconciler
from app.jobs.schedule import cron_jobs, schedule_timezone
from app.notifications.tasks import notification_cron
from app.sources.health_tasks import health_cron_jobs
from app.verifications import jobs as verification_jobs

log = structlog.get_logger("dbkeep.worker")

# Set by ``dbkeep serve`` for the API process it starts: "1" runs a worker inside it.
EMBEDDED_WORKER_ENV = "DBKEEP_SERVE_EMBEDDED_WORKER"
# Waiting for a busy target is a retry too, so tries are not the limit here: the rows' attempts
# counters and timeouts bound the real work.
JOB_MAX_TRIES = 10_000
# Concurrent jobs per worker: each is a dump or a restore, heavy on the target and on disk.
MAX_JOBS = 4


def job_timeouts(settings: Settings) -> tuple[int, int]:
    """arq's hard limits for (backup, restore) jobs, above the runners' own timeouts.

    The runners stop a dump or load at ``backup_timeout_seconds`` / ``restore_timeout_seconds``
    and clean up; arq's limit is only the backstop, so it leaves room for that.
    """
    margin = 2 * settings.heartbeat_timeout_seconds + 60
    backup = settings.backup_timeout_seconds + margin
    # A restore takes a safety backup, loads, and may load the safety backup again.
    restore = settings.backup_timeout_seconds + 2 * settings.restore_timeout_seconds + margin
    return backup, restore


def in_progress_timeout(settings: Settings) -> float:
    """How long arq keeps a job's in-progress marker: as arq computes it, its longest job or
    cron timeout + 10 s (the health and notification crons run whatever the schedule says)."""
    worker = build_worker_settings(settings)
    default = worker["job_timeout"]
    jobs = [*worker["functions"], *worker["cron_jobs"]]
    return float(max(job.timeout_s or default for job in jobs) + 10)


class _OutageBackoff(AbstractBackoff):
    """Back off up to 5 s between Redis retries, and say so in the log now and then."""

    def reset(self) -> None:
        pass

    def compute(self, failures: int) -> float:
        if failures == 1 or failures % 30 == 0:
            log.warning("redis.unavailable", failures=failures, hint="retrying until it answers")
        return float(min(5.0, 0.1 * 2 ** min(failures, 10)))


def redact_url(url: str) -> str:
    """``url`` without its password, for log lines and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

    Commands are retried for as long as Redis is away, so a worker rides out a Redis restart
    instead of crashing; jobs already running keep running meanwhile.
    """
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 5
    settings.conn_retry_delay = 1
    settings.retry_on_timeout = True
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    settings.retry = RedisRetry(_OutageBackoff(), retries=-1)
    return settings


async def on_startup(ctx: dict[str, Any]) -> None:
    """Open the metadata store, storage and engine; reconcile once, then every few minutes;
    look at the sources' schedules once, for a slot missed while no worker was up."""
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    stack = AsyncExitStack()
    ctx["exit_stack"] = stack
    runtime = await stack.enter_async_context(open_bootstrap(settings))
    queue = ArqJobQueue(ctx["redis"], queue_name=settings.queue_name)
    reconciler = Reconciler(
        database=runtime.database,
        settings=settings,
        storage=runtime.storage,
        queue=queue,
        in_progress_timeout_s=in_progress_timeout(settings),
    )
    state = tasks.WorkerState(settings=settings, runtime=runtime, redis=ctx["redis"], queue=queue)
    ctx["state"] = state
    await reconciler.run_once()
    state.reconcile_task = asyncio.create_task(reconciler.run_forever(), name="reconciler")
    if settings.schedule_enabled:
        # The first look now rather than at the next minute: it takes a slot missed while no
        # worker was up (within DBKEEP_SCHEDULE_CATCH_UP_HOURS).
        try:
            outcome = await tasks.run_schedules(state, now=utcnow())
        except Exception as exc:  # the worker must start even if the metadata store hiccups now
            outcome = f"failed: {type(exc).__name__}"
        log.info("schedule.catch_up", outcome=outcome)
    log.info(
        "worker.started",
        queue=settings.queue_name,
        schedule=_schedule_summary(settings),
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    """Stop the reconciler and close what ``on_startup`` opened."""
    state = ctx.get("state")
    if isinstance(state, tasks.WorkerState) and state.reconcile_task is not None:
        state.reconcile_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.reconcile_task
    stack = ctx.get("exit_stack")
    if isinstance(stack, AsyncExitStack):
        await stack.aclose()
    log.info("worker.stopped")


def _schedule_summary(settings: Settings) -> str:
    if not settings.schedule_enabled:
        return "off"
    return (
        f"sources every minute, auto-trash {settings.auto_trash_at}, "
        f"cleanup-trash {settings.cleanup_trash_at} ({settings.schedule_timezone})"
    )


def build_worker_settings(settings: Settings) -> dict[str, Any]:
    """Every ``arq.Worker`` argument for a dbkeep worker configured by ``settings``."""
    backup_timeout, restore_timeout = job_timeouts(settings)
    return {
        "functions": [
            func(
                tasks.run_backup,
                name=RUN_BACKUP,
                timeout=backup_timeout,
                keep_result=0,
                max_tries=JOB_MAX_TRIES,
            ),
            func(
                tasks.run_restore,
                name=RUN_RESTORE,
                timeout=restore_timeout,
                keep_result=0,
                max_tries=JOB_MAX_TRIES,
            ),
            func(
                verification_jobs.run_verification,
                name=RUN_VERIFICATION,
                timeout=restore_timeout,
                keep_result=0,
                max_tries=JOB_MAX_TRIES,
            ),
            func(
                copy_tasks.run_copy_retry,
                name=copy_tasks.RUN_COPY_RETRY,
                timeout=backup_timeout,
                keep_result=0,
                max_tries=JOB_MAX_TRIES,
            ),
        ],
        "cron_jobs": [
            *cron_jobs(
                settings,
                sources=verification_jobs.scheduled_sources_and_verifications,
                auto_trash=tasks.scheduled_auto_trash,
                cleanup_trash=tasks.scheduled_cleanup_trash,
            ),
            notification_cron(settings),
            *health_cron_jobs(),
        ],
        "queue_name": settings.queue_name,
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "ctx": {"settings": settings},
        # A kept result would block re-enqueueing a job id derived from its row.
        "keep_result": 0,
        "max_jobs": MAX_JOBS,
        "max_tries": JOB_MAX_TRIES,
        "job_timeout": backup_timeout,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "timezone": schedule_timezone(settings),
        "poll_delay": 0.5,
        "retry_jobs": True,
    }


class WorkerSettings:
    """arq's conventional settings class, for ``arq app.jobs.worker.WorkerSettings``.

    It holds only what needs no settings; ``dbkeep worker`` is the real entry point: it adds the
    Redis URL, queue name, cron table and timeouts from ``DBKEEP_*`` (``build_worker_settings``).
    """

    functions = (
        func(tasks.run_backup, name=RUN_BACKUP, keep_result=0, max_tries=JOB_MAX_TRIES),
        func(tasks.run_restore, name=RUN_RESTORE, keep_result=0, max_tries=JOB_MAX_TRIES),
    )
    on_startup = on_startup
    on_shutdown = on_shutdown
    keep_result = 0
    health_check_interval = HEALTH_CHECK_INTERVAL_S


def create_worker(settings: Settings, **overrides: Any) -> Worker:
    """An ``arq.Worker`` for dbkeep; ``overrides`` are passed on (e.g. ``handle_signals``)."""
    return Worker(**{**build_worker_settings(settings), **overrides})


async def wait_for_redis(url: str, *, stop: asyncio.Event | None = None) -> None:
    """Return once Redis answers at ``url``, logging while it does not."""
    delay = 0.5
    logged = False
    while stop is None or not stop.is_set():
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
            if logged:
                log.info("redis.available", url=redact_url(url))
            return
        except (RedisError, OSError) as exc:
            if not logged:
                log.warning("redis.waiting", url=redact_url(url), error=type(exc).__name__)
                logged = True
        finally:
            await client.aclose()
        await asyncio.sleep(delay)
        delay = min(5.0, delay * 2)


async def run_worker_async(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker until SIGTERM/SIGINT (or, with ``burst``, until the queue is empty)."""
    await wait_for_redis(settings.redis_url)
    worker = create_worker(settings, burst=burst)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass  # a signal stopped it: close() below finishes the cancelled jobs' clean-up
    finally:
        await worker.close()


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Blocking entry point of ``dbkeep worker``."""
    asyncio.run(run_worker_async(settings, burst=burst))


def embedded_worker_requested() -> bool:
    """Whether this API process was started by ``dbkeep serve`` without ``--no-worker``."""
    return os.environ.get(EMBEDDED_WORKER_ENV) == "1"


@contextlib.asynccontextmanager
async def embedded_worker(settings: Settings) -> AsyncIterator[None]:
    """Run a worker (and the schedule) in this process's event loop for the body's duration.

    Used by ``dbkeep serve``. It has its own Redis pool (arq closes it on exit), does not touch
    signal handlers (uvicorn owns them), and restarts itself if it ever stops on an error.
    """
    stopping = asyncio.Event()
    current: list[Worker] = []

    async def supervise() -> None:
        while not stopping.is_set():
            await wait_for_redis(settings.redis_url, stop=stopping)
            if stopping.is_set():
                return
            worker = create_worker(settings, handle_signals=False)
            current[:] = [worker]
            try:
                await worker.async_run()
            except asyncio.CancelledError:
                if stopping.is_set():
                    return
                raise
            except Exception:
                log.exception("worker.crashed", hint="restarting in 5 s")
                with contextlib.suppress(Exception):
                    await worker.close()
                current.clear()
                await asyncio.sleep(5)

    task = asyncio.create_task(supervise(), name="embedded-worker")
    try:
        yield
    finally:
        stopping.set()
        for worker in current:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.close(), timeout=60)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
