"""``GET /health`` and ``GET /metrics``: dbkeep's own state, for probes and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from app.system.health import HealthRegistry
from app.system.metrics import Metrics
from app.system.schemas import HealthEnvelope

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
