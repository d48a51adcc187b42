"""``GET /admin/api/audit-events``: the audit log, newest first (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.deps import AuditServiceDep, CurrentAdmin
from app.http.envelope import PageEnvelope, PageMeta, error_responses
from app.http.params import PageNumber, PerPage, UserIdFilter

router = APIRouter(prefix="/admin/api/audit-events", tags=["audit"])


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    user_id: int | None
    actor: str = Field(examples=["admin@example.com"])
    action: str = Field(examples=["backup.download"])
    target_type: str | None = Field(examples=["backup"])
    target_id: str | None = Field(examples=["42"])
    client_ip: str | None = Field(examples=["203.0.113.7"])
    details: dict[str, Any] | None


class AuditPage(PageEnvelope[AuditEventRead]):
    pass


@router.get(
    "",
    operation_id="list_audit_events",
    response_model=AuditPage,
    responses=error_responses(401, 403, 422),
)
async def list_audit_events(
    _admin: CurrentAdmin,
    audit: AuditServiceDep,
    page: PageNumber = 1,
    per_page: PerPage = 50,
    action: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z][a-z0-9_.:-]*$",
            description="Only this action, e.g. backup.download or auth.login_failed.",
        ),
    ] = None,
    user_id: UserIdFilter = None,
) -> AuditPage:
    """Who did what and when: logins, backups, downloads, restores, trash and deletions."""
    result = await audit.list_events(page=page, per_page=per_page, action=action, user_id=user_id)
    return AuditPage(
        data=[AuditEventRead.model_validate(e) for e in result.events],
        meta=PageMeta(
            current_page=result.page,
            per_page=result.per_page,
            total=result.total,
            last_page=result.last_page,
        ),
    )
