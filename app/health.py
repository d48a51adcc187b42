"""``GET /health``: a small registry of checks, run concurrently, each with a time limit.

Other parts add their own check with ``registry.register(name, check)`` (the worker adds its
heartbeat and queue depth); a check gets the application's ``state`` (settings, database, queue,
storage, engine) and returns a ``CheckResult``. Any failing *critical* check makes the answer 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.datastructures import State
from starlette.responses import JSONResponse

from app.backups.repository import BackupRepository
from app.db import Database, utcnow

log = structlog.get_logger(__name__)

CheckStatus = Literal["ok", "warn", "fail"]
DEFAULT_TIMEOUT_SECONDS = 3.0
# With the daily schedule on, a newest completed backup older than this deserves attention.
STALE_BACKUP_AFTER = timedelta(hours=26)


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    message: str
    details: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[State], Awaitable[CheckResult]]


@dataclass(frozen=True)
class _Registered:
    check: HealthCheck
    critical: bool
    timeout: float


class CheckRead(BaseModel):
    status: CheckStatus
    critical: bool
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "unhealthy"]
    checks: dict[str, CheckRead]


class HealthEnvelope(BaseModel):
    success: bool
    message: str | None = None
    data: HealthReport


class HealthRegistry:
    """The checks ``/health`` runs, by name, in registration order."""

    def __init__(self) -> None:
        self._checks: dict[str, _Registered] = {}

    def register(
        self,
        name: str,
        check: HealthCheck,
        *,
        critical: bool = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """Add (or replace) a check; a critical one failing makes ``/health`` answer 503."""
        self._checks[name] = _Registered(check, critical, timeout)

    async def run(self, state: State) -> HealthReport:
        """Run every check concurrently; a check that raises or is too slow counts as failed."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(state, self._checks[n]) for n in names))
        checks = {
            name: CheckRead(
                status=result.status,
                critical=self._checks[name].critical,
                message=result.message,
                details=result.details,
            )
            for name, result in zip(names, results, strict=True)
        }
        if any(c.status == "fail" and c.critical for c in checks.values()):
            overall: Literal["ok", "degraded", "unhealthy"] = "unhealthy"
        elif any(c.status != "ok" for c in checks.values()):
            overall = "degraded"
        else:
            overall = "ok"
        return HealthReport(status=overall, checks=checks)

    async def _run_one(self, state: State, registered: _Registered) -> CheckResult:
        try:
            return await asyncio.wait_for(registered.check(state), timeout=registered.timeout)
        except TimeoutError:
            return CheckResult("fail", f"No answer within {registered.timeout:g} s.")
        except Exception as exc:
            log.warning("health.check_error", error_type=type(exc).__name__)
            return CheckResult("fail", f"The check failed ({type(exc).__name__}).")


# ---- the built-in checks -------------------------------------------------------------------


async def check_metadata_store(state: State) -> CheckResult:
    """The metadata store answers a trivial query."""
    database: Database = state.database
    try:
        async with database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return CheckResult("fail", f"The metadata store can't be reached ({type(exc).__name__}).")
    return CheckResult("ok", "ok", {"backend": database.engine.dialect.name})


async def check_redis(state: State) -> CheckResult:
    """Redis (the job queue) answers PING."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(state.settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return CheckResult("fail", f"Redis can't be reached ({type(exc).__name__}).")
    finally:
        await client.aclose()
    return CheckResult("ok", "ok")


async def check_dump_tools(state: State) -> CheckResult:
    """The dump and restore client tools of the target's engine are installed."""
    engine = getattr(state, "engine", None)
    if engine is None:
        try:
            from app.engines import get_engine
        except ImportError:
            return CheckResult("fail", "No database engine is available in this build.")
        engine = get_engine(state.settings)
    status = await engine.probe()
    details = {
        "dump_tool": status.dump_tool,
        "client_tool": status.client_tool,
        "sandbox_supported": status.sandbox_supported,
    }
    return CheckResult("ok" if status.ok else "fail", status.message, details)


async def check_newest_backup(state: State) -> CheckResult:
    """How old the newest completed backup is (a warning, never a failure)."""
    database: Database = state.database
    async with database.sessionmaker() as session:
        newest = await BackupRepository(session).edge_completed(newest=True)
    if newest is None:
        return CheckResult("warn", "No completed backup yet.", {"age_seconds": None})
    age = utcnow() - (newest.completed_at or newest.backup_date)
    details = {"age_seconds": int(age.total_seconds()), "backup_id": newest.id}
    if state.settings.schedule_enabled and age > STALE_BACKUP_AFTER:
        return CheckResult("warn", "The newest completed backup is more than a day old.", details)
    return CheckResult("ok", "ok", details)


def default_registry() -> HealthRegistry:
    """The checks every dbkeep API process runs."""
    registry = HealthRegistry()
    registry.register("metadata_store", check_metadata_store)
    registry.register("redis", check_redis)
    registry.register("dump_tools", check_dump_tools, timeout=10.0)
    registry.register("newest_backup", check_newest_backup, critical=False)
    return registry


router = APIRouter(tags=["system"])


@router.get(
    "/health",
    operation_id="health",
    response_model=HealthEnvelope,
    responses={503: {"model": HealthEnvelope, "description": "A critical check failed."}},
)
async def health(request: Request) -> JSONResponse:
    """Metadata store, Redis, worker heartbeat, dump tools and the newest backup's age.

    200 when every critical check passes (warnings included), 503 otherwise. No login needed.
    """
    registry: HealthRegistry = request.app.state.health
    report = await registry.run(request.app.state)
    healthy = report.status != "unhealthy"
    failed = [n for n, c in report.checks.items() if c.status == "fail" and c.critical]
    envelope = HealthEnvelope(
        success=healthy,
        message=None if healthy else f"dbkeep is unhealthy: {', '.join(failed)}.",
        data=report,
    )
    return JSONResponse(envelope.model_dump(mode="json"), status_code=200 if healthy else 503)
