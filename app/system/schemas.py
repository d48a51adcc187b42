"""The shapes ``/health`` answers with (the contract's; ``/metrics`` is Prometheus text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.sources.health_schemas import SourceHealthEntry

CheckStatus = Literal["ok", "warn", "fail"]


class CheckRead(BaseModel):
    status: CheckStatus
    critical: bool
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "unhealthy"]
    checks: dict[str, CheckRead]
    next_backup_at: datetime | None = Field(
        default=None,
        description="When the next scheduled backup is due; null when the schedule is off.",
    )
    sources: list[SourceHealthEntry] = Field(
        default_factory=list,
        description="Each source's health (ok, warning or failing, with reasons); a source "
        "that is not ok makes the status degraded (the `sources` check).",
    )


class HealthEnvelope(BaseModel):
    success: bool
    message: str | None = None
    data: HealthReport
