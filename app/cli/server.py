"""``dbkeep serve`` (API, dashboard and, by default, an embedded worker) and ``dbkeep worker``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli import app
from app.cli.common import fail, load_settings, migrate_or_fail
from app.config import Settings, get_settings
from app.jobs.private_redis import PrivateRedis, redis_answers, redis_server_binary
from app.jobs.schedule import schedule_timezone
from app.jobs.worker import EMBEDDED_WORKER_ENV, redact_url, run_worker


def _check_schedule(settings: Settings) -> None:
    try:
        schedule_timezone(settings)
    except ValueError as exc:
        fail(str(exc))


@app.command("worker")
def worker(
    burst: Annotated[
        bool,
        typer.Option("--burst", help="Run the queued jobs, then exit (for scripts and tests)."),
    ] = False,
) -> None:
    """Run the worker: queued backups and restores, the daily schedule, the reconciler.

    Run as many as you like against one Redis and one MySQL/PostgreSQL metadata store: a job runs
    on one worker only, and each scheduled slot makes one backup.
    """
    settings = load_settings()
    _check_schedule(settings)
    typer.echo(
        f"dbkeep worker: queue {settings.queue_name!r} on {redact_url(settings.redis_url)}",
        err=True,
    )
    # arq turns SIGINT and SIGTERM into a clean stop: running jobs are cancelled, their rows put
    # back to pending and their children killed, and the jobs re-queued for the next worker.
    run_worker(settings, burst=burst)


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default DBKEEP_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default DBKEEP_PORT).", min=1, max=65535)
    ] = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Serve the API only; run `dbkeep worker` processes separately (scale-out).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Processes serving HTTP (each with its own embedded worker unless --no-worker).",
        ),
    ] = 1,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="Don't bring the metadata store up to date at start (run `dbkeep migrate` once "
            "instead when several API processes share it).",
        ),
    ] = False,
) -> None:
    """Serve the API and dashboard, with the worker and schedule in the same process.

    When no Redis answers at DBKEEP_REDIS_URL (and none was configured), a private redis-server is
    started under the var directory if it is installed.
    """
    settings = load_settings()
    _check_schedule(settings)
    if not no_migrate:
        migrate_or_fail(settings)
    private = _ensure_redis(settings)
    if private is not None:
        os.environ["DBKEEP_REDIS_URL"] = private.url
        get_settings.cache_clear()
        settings = load_settings()
    os.environ[EMBEDDED_WORKER_ENV] = "0" if no_worker else "1"
    import uvicorn

    listen_host = host or settings.host
    listen_port = port or settings.port
    mode = "API only" if no_worker else "API + worker + schedule"
    typer.echo(f"dbkeep serve: http://{listen_host}:{listen_port} ({mode})", err=True)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=listen_host,
            port=listen_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's lines go through dbkeep's structured logging too
            # uvicorn's would take X-Forwarded-For from any loopback peer: the app trusts only
            # DBKEEP_TRUSTED_PROXIES (app/http/middleware.py, TrustedProxyMiddleware).
            proxy_headers=False,
            server_header=False,
            workers=workers,
        )
    finally:
        if private is not None:
            private.stop()


def _ensure_redis(settings: Settings) -> PrivateRedis | None:
    """Start a private redis-server when none answers and the user did not point to one."""
    if redis_answers(settings.redis_url):
        return None
    where = redact_url(settings.redis_url)
    configured = "redis_url" in settings.model_fields_set
    if configured:
        typer.echo(
            f"dbkeep: warning: no Redis answers at {where} (DBKEEP_REDIS_URL). The API starts; "
            "queueing answers 503 and the worker waits until Redis is reachable.",
            err=True,
        )
        return None
    binary = redis_server_binary()
    if binary is None:
        typer.echo(
            f"dbkeep: warning: no Redis answers at {where} and redis-server is not installed. "
            "Install it (e.g. `apt-get install redis-server`) or set DBKEEP_REDIS_URL to a "
            "running Redis; until then queueing answers 503.",
            err=True,
        )
        return None
    try:
        private = PrivateRedis.start(settings.var_dir)
    except (OSError, RuntimeError) as exc:
        fail(f"no Redis answers at {where}, and starting a private redis-server failed: {exc}")
    typer.echo(
        f"dbkeep: no Redis answered at {where}: started a private redis-server "
        f"({redact_url(private.url)}, nothing persisted); it stops with dbkeep.",
        err=True,
    )
    return private
