"""The shape of a source's health in the API (contract part 2: ``{"status", "reasons"}``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthReasonRead(BaseModel):
    code: str = Field(
        description="stale, shrunken, last_backup_failed, low_free_space, failed_copy, "
        "failed_verification or destination_unreachable."
    )
    severity: Literal["warning", "failing"]
    message: str
    database: str | None = Field(default=None, description="The database it is about, if one.")


class SourceHealthRead(BaseModel):
    status: Literal["ok", "warning", "failing"]
    reasons: list[HealthReasonRead] = Field(default_factory=list)


class SourceHealthEntry(SourceHealthRead):
    """One source in ``/health``'s ``sources`` section."""

    id: int
    name: str
