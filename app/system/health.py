"""What ``GET /health`` answers (app/system/router.py): a small registry of checks, run
concurrently, each with a time limit.

Other parts add their own check with ``registry.register(name, check)`` (the worker adds its
heartbeat and queue depth); a check gets the application's ``state`` (settings, database, queue,
storage, engine) and returns a ``CheckResult``. Any failing *critical* check makes the answer 503;
any other check that is not ok makes it "degraded" (200).

The ``target`` check logs in to the target database with its configured credentials (the
engine's client runs ``SELECT 1``). It is cached for ``TARGET_CHECK_TTL_S``, runs in the
background with its own time limit, and never holds ``/health`` up: a stale result is answered
at once while a refresh runs. It is not critical (dbkeep's API and its backups on disk work
without the target), so a target that refuses the password makes ``/health`` "degraded".
The report also says when the next scheduled backup is due (``next_backup_at``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import text
from starlette.datastructures import State

from app.backups.repository import BackupRepository
from app.db import Database, utcnow
from app.engines import get_engine
from app.system.schemas import CheckRead, CheckStatus, HealthReport

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 3.0
# With the daily schedule on, a newest completed backup older than this deserves attention.
STALE_BACKUP_AFTER = timedelta(hours=26)


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # The ``sources`` check's per-source section (``HealthReport.sources``); None for the others.
    sources: list[dict[str, Any]] | None = None


HealthCheck = Callable[[State], Awaitable[CheckResult]]


@dataclass(frozen=True)
class _Registered:
    check: HealthCheck
    critical: bool
    timeout: float


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
        sections = [r.sources for r in results if r.sources is not None]
        return HealthReport(
            status=overall,
            checks=checks,
            next_backup_at=next_backup_at(state.settings),
            sources=sections[0] if sections else [],
        )

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


async def check_sources(state: State) -> CheckResult:
    """Each source's health (app/sources/health.py): failing if one is failing, a warning if
    one has a warning. Not critical: a failed backup makes /health "degraded", not 503 (a probe
    must not restart dbkeep for it)."""
    from app.sources.health_service import SourceHealthService, health_dict

    database: Database = state.database
    async with database.sessionmaker() as session:
        service = SourceHealthService(session, backup_dir=state.settings.backup_dir)
        evaluated = await service.evaluate()
    section = [
        {"id": e.snapshot.source_id, "name": e.snapshot.name, **health_dict(e.health)}
        for e in evaluated
    ]
    names: dict[str, list[str]] = {"ok": [], "warning": [], "failing": []}
    for e in evaluated:
        names[e.health.status].append(e.snapshot.name)
    details = {status: len(found) for status, found in names.items()}
    if names["failing"]:
        status: CheckStatus = "fail"
    elif names["warning"]:
        status = "warn"
    else:
        return CheckResult("ok", "ok", details, section)
    parts = [
        f"{len(names[s])} {s} ({', '.join(names[s][:5])}{', …' if len(names[s]) > 5 else ''})"
        for s in ("failing", "warning")
        if names[s]
    ]
    return CheckResult(status, f"Sources: {'; '.join(parts)}.", details, section)


# A target check's answer is reused this long; a refresh may take this long before it fails.
TARGET_CHECK_TTL_S = 30.0
TARGET_CHECK_TIME_LIMIT_S = 10.0
# With no answer yet, /health waits this long for the first one before saying "checking".
TARGET_FIRST_WAIT_S = 2.0


class TargetCheck:
    """Whether the target database lets dbkeep in, from a cached background probe."""

    def __init__(
        self,
        *,
        ttl: float = TARGET_CHECK_TTL_S,
        time_limit: float = TARGET_CHECK_TIME_LIMIT_S,
        first_wait: float = TARGET_FIRST_WAIT_S,
    ) -> None:
        self.ttl = ttl
        self.time_limit = time_limit
        self.first_wait = first_wait
        self._result: CheckResult | None = None
        self._checked_at = 0.0  # time.monotonic() of the result
        self._refresh: asyncio.Task[CheckResult] | None = None

    async def __call__(self, state: State) -> CheckResult:
        if self._result is not None and time.monotonic() - self._checked_at < self.ttl:
            return self._result
        refresh = self._refresh
        if refresh is None or refresh.done():
            refresh = self._refresh = asyncio.create_task(self._probe_and_keep(state))
        if self._result is not None:
            return self._result  # stale, while the refresh runs
        try:
            return await asyncio.wait_for(asyncio.shield(refresh), timeout=self.first_wait)
        except TimeoutError:
            return CheckResult("warn", "Checking the target database; no answer yet.")

    async def _probe_and_keep(self, state: State) -> CheckResult:
        try:
            result = await asyncio.wait_for(self._probe(state), timeout=self.time_limit)
        except TimeoutError:
            result = CheckResult(
                "fail", f"The target database did not answer within {self.time_limit:g} s."
            )
        except Exception as exc:
            log.warning("health.target_check_error", error_type=type(exc).__name__)
            result = CheckResult("fail", f"The target check failed ({type(exc).__name__}).")
        self._result, self._checked_at = result, time.monotonic()
        return result

    async def _probe(self, state: State) -> CheckResult:
        from app.backups.service import target_from_settings
        from app.engines.base import EngineError
        from app.errors import Conflict

        try:
            target = target_from_settings(state.settings)
        except Conflict as exc:
            return CheckResult("warn", exc.message)
        where = target.socket or f"{target.host}:{target.port}"
        details = {"database": target.database, "server": where, "user": target.user}
        engine = getattr(state, "engine", None)
        admin_sql = getattr(engine, "_admin_sql", None)
        if admin_sql is None:
            return CheckResult("warn", "No database engine can reach the target here.", details)
        try:
            await admin_sql(target, "SELECT 1;\n", time_limit=self.time_limit)
        except EngineError as exc:  # messages carry no password (app/engines/mysql/errors.py)
            return CheckResult("fail", f"The target database refused: {exc.message}.", details)
        return CheckResult("ok", f"Logged in to '{target.database}' on {where}.", details)


def next_backup_at(settings: Any, *, now: datetime | None = None) -> datetime | None:
    """When the ``default`` source's next scheduled backup is due (UTC), by the schedule it
    is made with (DBKEEP_BACKUP_AT in DBKEEP_SCHEDULE_TIMEZONE); None when the schedule is off."""
    from app.jobs.schedule import daily_cron
    from app.sources.cron import next_runs

    if not getattr(settings, "schedule_enabled", False):
        return None
    try:
        runs = next_runs(
            daily_cron(settings.backup_at), settings.schedule_timezone, now or datetime.now(UTC)
        )
    except ValueError:
        return None
    return runs[0] if runs else None


def default_registry() -> HealthRegistry:
    """The checks every dbkeep API process runs."""
    registry = HealthRegistry()
    registry.register("metadata_store", check_metadata_store)
    registry.register("redis", check_redis)
    registry.register("dump_tools", check_dump_tools, timeout=10.0)
    registry.register("newest_backup", check_newest_backup, critical=False)
    registry.register("target", TargetCheck(), critical=False)
    registry.register("sources", check_sources, critical=False)
    return registry
