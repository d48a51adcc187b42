"""The verifications API (contract part 2, admins only): ask for a test restore, read results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.params import Path
from pydantic import BeforeValidator

from app.backups.router import AUTH_ERRORS
from app.deps import CurrentPrincipal, client_ip, ensure_admin
from app.http.envelope import error_responses
from app.http.params import MAX_ID, SourceId, whole_number
from app.http.sessions import request_session
from app.verifications.schemas import (
    VerificationEnvelope,
    VerificationListEnvelope,
    VerificationMessageEnvelope,
    VerificationRead,
    VerificationRequest,
)
from app.verifications.service import VerificationService

router = APIRouter(tags=["verifications"])

VerificationId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The verification's id.", examples=[7]),
    BeforeValidator(whole_number),
]


async def get_verification_service(
    request: Request, principal: CurrentPrincipal
) -> VerificationService:
    ensure_admin(principal)
    return VerificationService(
        request_session(request),
        queue=getattr(request.app.state, "queue", None),
        actor=principal.actor(client_ip(request)),
    )


VerificationServiceDep = Annotated[VerificationService, Depends(get_verification_service)]


@router.get(
    "/admin/api/sources/{source_id}/verifications",
    operation_id="list_source_verifications",
    response_model=VerificationListEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def list_source_verifications(
    source_id: SourceId, service: VerificationServiceDep
) -> VerificationListEnvelope:
    """The source's newest verifications (test restores), newest first."""
    rows = await service.of_source(source_id)
    return VerificationListEnvelope(data=[VerificationRead.model_validate(r) for r in rows])


@router.post(
    "/admin/api/sources/{source_id}/verifications",
    operation_id="verify_source",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerificationMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 413, 415, 422, 503),
)
async def verify_source(
    source_id: SourceId,
    service: VerificationServiceDep,
    body: VerificationRequest | None = None,
) -> VerificationMessageEnvelope:
    """Test-restore a backup (default: the newest completed one) into a scratch database on
    the source's verify_url and compare its rows with the manifest."""
    verification = await service.request_for_source(
        source_id, backup_id=body.backup_id if body else None
    )
    return VerificationMessageEnvelope(
        message="Verification queued.", data=VerificationRead.model_validate(verification)
    )


@router.get(
    "/admin/api/verifications/{verification_id}",
    operation_id="get_verification",
    response_model=VerificationEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def get_verification(
    verification_id: VerificationId, service: VerificationServiceDep
) -> VerificationEnvelope:
    """One verification and its per-table counts."""
    return VerificationEnvelope(
        data=VerificationRead.model_validate(await service.get(verification_id))
    )
