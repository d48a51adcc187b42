"""Health, metrics, OpenAPI and /docs, the dashboard's files, and the last-resort error handler."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.backups.models import BackupStatus
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.system.health import CheckResult
from tests.api.conftest import BackupFactory, assert_failure, make_client


async def test_health_reports_every_check(
    client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup()
    response = await client.get("/health")
    body = response.json()
    checks = body["data"]["checks"]
    assert {"metadata_store", "redis", "dump_tools", "newest_backup"} <= set(checks)
    assert checks["metadata_store"]["status"] == "ok"
    assert checks["redis"]["status"] == "ok"
    assert checks["newest_backup"]["details"]["age_seconds"] is not None
    assert checks["newest_backup"]["critical"] is False
    if checks["dump_tools"]["status"] == "ok":
        assert response.status_code == 200 and body["success"] is True
    else:  # a machine without mariadb-dump: unhealthy, and it says which tool is missing
        assert response.status_code == 503 and "dump_tools" in body["message"]
    assert response.headers["cache-control"] == "no-store"


async def test_health_is_503_when_redis_is_down(database: Database, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        response = await c.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False and "redis" in body["message"]
    assert body["data"]["checks"]["redis"]["status"] == "fail"
    assert "127.0.0.1:1" not in response.text


async def test_registered_checks_run_and_a_slow_one_fails(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def worker_ok(state: object) -> CheckResult:
        return CheckResult("ok", "ok", {"queue_depth": 0})

    async def hangs(state: object) -> CheckResult:
        import asyncio

        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    app.state.health.register("worker", worker_ok)
    app.state.health.register("slow_optional", hangs, critical=False, timeout=0.05)
    checks = (await client.get("/health")).json()["data"]["checks"]
    assert checks["worker"] == {
        "status": "ok", "critical": True, "message": "ok", "details": {"queue_depth": 0}
    }  # fmt: skip
    assert checks["slow_optional"]["status"] == "fail"
    assert "within" in checks["slow_optional"]["message"]


async def test_metrics_exposes_backup_counts_age_and_http_stats(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup()
    await make_backup(status=BackupStatus.failed)
    await admin_client.get("/admin/api/database-backups/12345")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'dbkeep_backups{status="completed"} 1.0' in text
    assert 'dbkeep_backups{status="failed"} 1.0' in text
    assert 'dbkeep_backups{status="pending"} 0.0' in text
    assert "dbkeep_newest_completed_backup_age_seconds" in text
    assert (
        'dbkeep_http_requests_total{method="GET",route="/admin/api/database-backups/{backup_id}",'
        'status="404"} 1.0'
    ) in text
    assert "dbkeep_http_request_duration_seconds_bucket" in text
    # The raw path never becomes a label (one series per id would grow without bound). Only the
    # labels are checked: a sample's value, a timestamp, may well contain the digits 12345.
    labels = [line.partition("{")[2].rpartition("}")[0] for line in text.splitlines()]
    assert not [label for label in labels if "12345" in label]


async def test_metrics_refreshers_can_be_added(app: FastAPI, client: httpx.AsyncClient) -> None:
    from prometheus_client import Gauge

    depth = Gauge("dbkeep_queue_depth", "Jobs waiting.", registry=app.state.metrics.registry)

    async def refresh(state: object) -> None:
        depth.set(7)

    app.state.metrics.add_refresher(refresh)
    assert "dbkeep_queue_depth 7.0" in (await client.get("/metrics")).text


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operations = {
        (method.upper(), path): op
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    expected = {
        ("GET", "/admin/api/database-backups"): "list_backups",
        ("POST", "/admin/api/database-backups"): "create_backup",
        ("GET", "/admin/api/database-backups/statistics"): "backup_statistics",
        ("GET", "/admin/api/database-backups/{backup_id}"): "get_backup",
        ("PATCH", "/admin/api/database-backups/{backup_id}"): "update_backup",
        ("DELETE", "/admin/api/database-backups/{backup_id}"): "delete_backup",
        ("POST", "/admin/api/database-backups/{backup_id}/restore"): "restore_backup",
        ("GET", "/admin/api/database-backups/{backup_id}/restores"): "list_backup_restores",
        ("POST", "/admin/api/database-backups/{backup_id}/restores/{restore_id}/cancel"): (
            "cancel_backup_restore"
        ),
        ("POST", "/admin/api/database-backups/{backup_id}/cancel"): "cancel_backup",
        ("POST", "/admin/api/database-backups/{backup_id}/trash"): "trash_backup",
        ("POST", "/admin/api/database-backups/{backup_id}/restore-from-trash"): (
            "restore_backup_from_trash"
        ),
        ("DELETE", "/admin/api/database-backups/bulk-delete"): "bulk_delete_backups",
        ("POST", "/admin/api/database-backups/bulk-trash"): "bulk_trash_backups",
        ("GET", "/admin/database-backups/{backup_id}/download"): "download_backup",
        ("GET", "/admin/api/database-backups/export.csv"): "export_backups_csv",
        ("GET", "/admin/api/sources"): "list_sources",
        ("POST", "/admin/api/sources"): "create_source",
        ("GET", "/admin/api/sources/{source_id}"): "get_source",
        ("PATCH", "/admin/api/sources/{source_id}"): "update_source",
        ("DELETE", "/admin/api/sources/{source_id}"): "delete_source",
        ("POST", "/admin/api/sources/{source_id}/test"): "test_source",
        ("POST", "/admin/api/sources/{source_id}/backups"): "back_up_source",
        ("POST", "/admin/api/sources/{source_id}/imports"): "import_backup",
        ("POST", "/admin/api/sources/schedule-preview"): "preview_source_schedule",
        ("GET", "/admin/api/sources/{source_id}/retention-preview"): "preview_source_retention",
        ("GET", "/admin/api/notification-channels"): "list_notification_channels",
        ("POST", "/admin/api/notification-channels"): "create_notification_channel",
        ("GET", "/admin/api/notification-channels/{channel_id}"): "get_notification_channel",
        ("PATCH", "/admin/api/notification-channels/{channel_id}"): "update_notification_channel",
        ("DELETE", "/admin/api/notification-channels/{channel_id}"): "delete_notification_channel",
        ("POST", "/admin/api/notification-channels/{channel_id}/test"): "test_notification_channel",
        ("GET", "/admin/api/notification-channels/{channel_id}/deliveries"): (
            "list_notification_deliveries"
        ),
        ("GET", "/admin/api/sources/{source_id}/verifications"): "list_source_verifications",
        ("POST", "/admin/api/sources/{source_id}/verifications"): "verify_source",
        ("GET", "/admin/api/verifications/{verification_id}"): "get_verification",
        ("GET", "/admin/api/destinations"): "list_destinations",
        ("POST", "/admin/api/destinations"): "create_destination",
        ("GET", "/admin/api/destinations/{destination_id}"): "get_destination",
        ("PATCH", "/admin/api/destinations/{destination_id}"): "update_destination",
        ("DELETE", "/admin/api/destinations/{destination_id}"): "delete_destination",
        ("POST", "/admin/api/destinations/{destination_id}/test"): "test_destination",
        (
            "POST",
            "/admin/api/database-backups/{backup_id}/copies/{destination_id}/retry",
        ): "retry_backup_copy",
        ("GET", "/admin/api/encryption/recovery-kit"): "get_recovery_kit",
        ("GET", "/admin/api/audit-events"): "list_audit_events",
        ("POST", "/api/auth/login"): "login",
        ("POST", "/api/auth/logout"): "logout",
        ("GET", "/api/auth/me"): "me",
        ("GET", "/health"): "health",
        ("GET", "/metrics"): "metrics",
    }
    assert {k: v["operationId"] for k, v in operations.items()} == expected
    for (_method, path), op in operations.items():
        assert (op["tags"] and op.get("description")) or op.get("summary"), path
        assert any(code.startswith("2") for code in op["responses"]), path
        if op["operationId"] not in {"login", "health", "metrics"}:
            assert {"401"} <= set(op["responses"]), path
            assert op["security"], path
    search = next(
        p for p in operations[("GET", "/admin/api/database-backups")]["parameters"]
        if p["name"] == "search"
    )  # fmt: skip
    assert search["schema"]["anyOf"][0]["maxLength"] == 200


async def test_docs_page_without_a_build_falls_back_to_the_cdn(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"frontend_dist": tmp_path / "not-built"}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        response = await c.get("/docs")
    assert response.status_code == 200 and "swagger-ui-bundle.js" in response.text
    assert "https://cdn.jsdelivr.net/" in response.text
    assert "cdn.jsdelivr.net" in response.headers["content-security-policy"]


async def test_docs_page_uses_the_swagger_ui_of_the_build(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    swagger = tmp_path / "dist" / "swagger"
    swagger.mkdir(parents=True)
    (swagger / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {}")
    (swagger / "swagger-ui.css").write_text(".swagger-ui {}")
    (swagger / "other.js").write_text("not served")
    app = create_app(settings.model_copy(update={"frontend_dist": tmp_path / "dist"}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        page = await c.get("/docs")
        script = await c.get("/swagger/swagger-ui-bundle.js")
        style = await c.get("/swagger/swagger-ui.css")
        other = await c.get("/swagger/other.js")
        escape = await c.get("/swagger/..%2Findex.html")
    assert page.status_code == 200
    assert 'src="/swagger/swagger-ui-bundle.js"' in page.text
    assert 'href="/swagger/swagger-ui.css"' in page.text
    assert "cdn.jsdelivr.net" not in page.text and "fastapi.tiangolo.com" not in page.text
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert other.status_code == 404 and escape.status_code == 404


# ---- dashboard ------------------------------------------------------------------------------


async def test_dashboard_routes_without_a_build_are_404_envelopes(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"frontend_dist": tmp_path / "not-built"}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        for path in ("/admin/database-backups", "/login", "/admin/database-backups/anything"):
            body = assert_failure(await c.get(path), 404)
            assert "not built" in body["message"]
        assert_failure(await c.get("/assets/app.js"), 404)


@pytest.fixture
async def spa_client(database: Database, settings: Settings, tmp_path: Path) -> httpx.AsyncClient:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=app></div>")
    (dist / "assets" / "app-1a2b.js").write_text("console.log('dbkeep')")
    (dist / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (tmp_path / "secret.txt").write_text("not for the web")
    app = create_app(settings.model_copy(update={"frontend_dist": dist}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        yield c


async def test_dashboard_is_served_with_spa_fallback(
    spa_client: httpx.AsyncClient, settings: Settings
) -> None:
    for path in ("/admin/database-backups", "/admin/database-backups/42", "/login"):
        response = await spa_client.get(path)
        assert response.status_code == 200, path
        assert response.text.startswith("<!doctype html>")
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]
    asset = await spa_client.get("/assets/app-1a2b.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await spa_client.get("/favicon.ico")).status_code == 200
    root = await spa_client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/admin/database-backups"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../index.html",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/missing.js",
        "/secret.txt",
        "/backups/x.sql.zst",
    ],
)
async def test_dashboard_serves_nothing_outside_dist(
    spa_client: httpx.AsyncClient, path: str
) -> None:
    response = await spa_client.get(path)
    assert response.status_code == 404
    assert "not for the web" not in response.text


async def test_backup_dir_is_never_served(
    spa_client: httpx.AsyncClient, settings: Settings
) -> None:
    settings.backup_dir.mkdir(parents=True, exist_ok=True)
    (settings.backup_dir / "dump.sql").write_text("CREATE TABLE secret;")
    for path in ("/dump.sql", "/backups/dump.sql", "/assets/../../backups/dump.sql"):
        response = await spa_client.get(path)
        assert "CREATE TABLE" not in response.text


# ---- the last-resort handler ----------------------------------------------------------------


async def test_unexpected_errors_are_a_generic_500_and_logged(
    database: Database, settings: Settings, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 at /var/lib/secret/path")

    async with app.router.lifespan_context(app), make_client(app) as c:
        with caplog.at_level(logging.ERROR):
            response = await c.get("/boom", headers={"X-Request-ID": "req-123"})
    body = assert_failure(response, 500)
    assert "hunter2" not in response.text and "/var/lib" not in response.text
    assert "req-123" in body["message"] and response.headers["x-request-id"] == "req-123"
    logged = capsys.readouterr().out + caplog.text
    assert "http.unhandled_error" in logged and "RuntimeError" in logged


async def test_every_request_gives_its_metadata_connections_back(
    app: FastAPI, admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    # Sessions are closed by a middleware after the response (app/http/sessions.py): whether
    # the route read, wrote, failed or was refused, no connection stays checked out.
    backup = await make_backup()
    pool = app.state.database.engine.pool
    requests = [
        ("GET", "/admin/api/database-backups", 200),
        ("GET", f"/admin/api/database-backups/{backup.id}", 200),
        ("GET", "/admin/api/database-backups/424242", 404),
        ("POST", f"/admin/api/database-backups/{backup.id}/trash", 200),
        ("POST", f"/admin/api/database-backups/{backup.id}/trash", 409),
        ("GET", f"/admin/api/database-backups/{backup.id}/restores", 200),
        ("GET", "/admin/api/audit-events", 200),
        ("POST", "/api/auth/logout", 200),
        ("GET", "/admin/api/database-backups", 401),
    ]
    for method, path, expected in requests:
        response = await admin_client.request(method, path)
        assert response.status_code == expected, (path, response.text)
        assert pool.checkedout() == 0, (method, path)


# ---- the target database and the schedule in /health ------------------------------------------


class _CountingEngine:
    """The real engine, counting (and optionally slowing) the target probes."""

    def __init__(self, engine: object, *, delay: float = 0.0) -> None:
        self.engine = engine
        self.delay = delay
        self.probes = 0

    async def _admin_sql(self, *args: object, **kwargs: object) -> str:
        import asyncio

        self.probes += 1
        await asyncio.sleep(self.delay)
        return str(await self.engine._admin_sql(*args, **kwargs))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)


async def test_health_logs_in_to_the_target_and_caches_the_answer(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    counting = _CountingEngine(app.state.engine)
    app.state.engine = counting
    first = (await client.get("/health")).json()["data"]
    target = first["checks"]["target"]
    assert target["status"] == "ok", target
    assert target["critical"] is False
    assert target["details"]["database"] in settings.target_url.get_secret_value()  # type: ignore[union-attr]
    for _ in range(3):
        assert (await client.get("/health")).json()["data"]["checks"]["target"] == target
    assert counting.probes == 1  # cached, not one login per request
    assert first["next_backup_at"] is None  # the tests' schedule is off


async def test_a_target_that_refuses_the_password_makes_health_degraded(
    database: Database, settings: Settings, target_database: str
) -> None:
    from tests import support

    wrong = support.target_url(target_database, password="not-the-password")
    from pydantic import SecretStr

    app = create_app(settings.model_copy(update={"target_url": SecretStr(wrong)}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        response = await c.get("/health")
    body = response.json()
    target = body["data"]["checks"]["target"]
    assert target["status"] == "fail", target
    assert "access denied" in target["message"].lower()
    assert "not-the-password" not in response.text
    assert body["data"]["status"] != "ok"
    if body["data"]["checks"]["dump_tools"]["status"] == "ok":
        assert response.status_code == 200 and body["data"]["status"] == "degraded"


class _GatedEngine(_CountingEngine):
    """The real engine, whose target probes wait until the test opens the gate."""

    def __init__(self, engine: object) -> None:
        super().__init__(engine)
        import asyncio

        self.gate = asyncio.Event()

    async def _admin_sql(self, *args: object, **kwargs: object) -> str:
        await self.gate.wait()
        return await super()._admin_sql(*args, **kwargs)


async def test_a_slow_target_never_holds_health_up(app: FastAPI, client: httpx.AsyncClient) -> None:
    import asyncio

    from app.system.health import TargetCheck

    check = TargetCheck(ttl=0.0, first_wait=0.2)
    app.state.health.register("target", check, critical=False)
    engine = app.state.engine = _GatedEngine(app.state.engine)
    # The target does not answer: /health answers anyway, saying so.
    target = (await client.get("/health")).json()["data"]["checks"]["target"]
    assert target["status"] == "warn" and "no answer yet" in target["message"]
    engine.gate.set()
    for _ in range(200):  # the probe finishes in the background
        if check._refresh is not None and check._refresh.done():
            break
        await asyncio.sleep(0.05)
    engine.gate.clear()
    # Stale (ttl 0): answered from the last result while a new probe waits on the target.
    target = (await client.get("/health")).json()["data"]["checks"]["target"]
    assert target["status"] == "ok"
    assert check._refresh is not None and not check._refresh.done()
    engine.gate.set()
    await check._refresh


def test_next_backup_at_follows_the_schedule(settings: Settings) -> None:
    from datetime import UTC, datetime

    from app.system.health import next_backup_at

    assert next_backup_at(settings) is None  # off
    on = settings.model_copy(
        update={
            "schedule_enabled": True,
            "backup_at": "02:30",
            "schedule_timezone": "Europe/Berlin",
        }
    )
    # 1 a.m. in Berlin (CET, UTC+1) on 3 Dec: today at 02:30 local = 01:30 UTC.
    assert next_backup_at(on, now=datetime(2026, 12, 3, 0, 0, tzinfo=UTC)) == datetime(
        2026, 12, 3, 1, 30, tzinfo=UTC
    )
    # Just after it: tomorrow's.
    assert next_backup_at(on, now=datetime(2026, 12, 3, 1, 31, tzinfo=UTC)) == datetime(
        2026, 12, 4, 1, 30, tzinfo=UTC
    )
    # Across the spring DST change (29 March) the local time stays 12:00: 11:00 UTC, then 10:00.
    noon = on.model_copy(update={"backup_at": "12:00"})
    assert next_backup_at(noon, now=datetime(2026, 3, 28, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 10, 0, tzinfo=UTC
    )


async def test_health_reports_the_next_backup_when_the_schedule_is_on(
    database: Database, settings: Settings
) -> None:
    from datetime import UTC, datetime, timedelta

    app = create_app(settings.model_copy(update={"schedule_enabled": True, "backup_at": "00:00"}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        data = (await c.get("/health")).json()["data"]
    due = datetime.fromisoformat(data["next_backup_at"])
    assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=1)
    assert (due.hour, due.minute) == (0, 0)
