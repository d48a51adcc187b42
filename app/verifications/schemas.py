"""Request and response bodies of verifications (contract part 2, "Verification")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.http.envelope import DataEnvelope, MessageEnvelope
from app.http.params import MAX_ID
from app.verifications.models import VerificationStatus


class VerificationTable(BaseModel):
    name: str
    expected_rows: int | None = Field(description="Rows the dump held (its manifest).")
    restored_rows: int | None = Field(description="Rows the test restore has; null: missing.")


class VerificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    backup_id: int
    status: VerificationStatus
    tables: list[VerificationTable]
    duration_ms: int | None
    error_message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    source_id: int | None = None
    trigger: str = Field(default="api", description='"api", "cli" or "schedule".')
    created_at: datetime | None = None


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    backup_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="One of the source's completed backups; default: its newest.",
    )


class VerificationEnvelope(DataEnvelope[VerificationRead]):
    pass


class VerificationMessageEnvelope(MessageEnvelope[VerificationRead]):
    pass


class VerificationListEnvelope(DataEnvelope[list[VerificationRead]]):
    pass
