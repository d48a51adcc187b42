"""The destinations API (contract part 2, admins only): list, add, read, change, delete, test.
Routes parse, call one service method and wrap the result; a secret is never in an answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BeforeValidator

from app.deps import CurrentPrincipal, client_ip, ensure_admin
from app.destinations.schemas import (
    CopyRead,
    DestinationCreate,
    DestinationRead,
    DestinationTest,
    DestinationUpdate,
)
from app.destinations.service import CopyRetryService, DestinationService, DestinationView
from app.http.envelope import DataEnvelope, MessageEnvelope, error_responses
from app.http.params import MAX_ID, BackupId, whole_number
from app.http.sessions import request_session

router = APIRouter(prefix="/admin/api/destinations", tags=["destinations"])
AUTH_ERRORS = (401, 403)

DestinationId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The destination's id.", examples=[1]),
    BeforeValidator(whole_number),
]


async def get_destination_service(
    request: Request, principal: CurrentPrincipal
) -> DestinationService:
    ensure_admin(principal)
    return DestinationService(request_session(request), actor=principal.actor(client_ip(request)))


DestinationServiceDep = Annotated[DestinationService, Depends(get_destination_service)]


class DestinationEnvelope(DataEnvelope[DestinationRead]):
    pass


class DestinationListEnvelope(DataEnvelope[list[DestinationRead]]):
    pass


class DestinationMessageEnvelope(MessageEnvelope[DestinationRead]):
    pass


class DestinationTestEnvelope(MessageEnvelope[DestinationTest]):
    pass


class DestinationDeletedEnvelope(MessageEnvelope[dict[str, int]]):
    pass


def _read(view: DestinationView) -> DestinationRead:
    return DestinationRead.model_validate(view, from_attributes=True)


@router.get(
    "",
    operation_id="list_destinations",
    response_model=DestinationListEnvelope,
    responses=error_responses(*AUTH_ERRORS),
)
async def list_destinations(destinations: DestinationServiceDep) -> DestinationListEnvelope:
    """Every destination, by name, with the objects and bytes stored on it."""
    return DestinationListEnvelope(data=[_read(view) for view in await destinations.overview()])


@router.post(
    "",
    operation_id="create_destination",
    status_code=status.HTTP_201_CREATED,
    response_model=DestinationMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 409, 422),
)
async def create_destination(
    body: DestinationCreate, destinations: DestinationServiceDep
) -> DestinationMessageEnvelope:
    """Add a destination. Its secret (an S3 secret key) is stored encrypted, never returned."""
    destination = await destinations.create(body)
    return DestinationMessageEnvelope(
        data=_read(await destinations.view(destination)), message="Destination added."
    )


@router.get(
    "/{destination_id}",
    operation_id="get_destination",
    response_model=DestinationEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def get_destination(
    destination_id: DestinationId, destinations: DestinationServiceDep
) -> DestinationEnvelope:
    """One destination (without its secret)."""
    destination = await destinations.get(destination_id)
    return DestinationEnvelope(data=_read(await destinations.view(destination)))


@router.patch(
    "/{destination_id}",
    operation_id="update_destination",
    response_model=DestinationMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def update_destination(
    destination_id: DestinationId, body: DestinationUpdate, destinations: DestinationServiceDep
) -> DestinationMessageEnvelope:
    """Change the fields sent; a secret not sent again is kept. The bootstrap ``local``
    follows DBKEEP_BACKUP_DIR (409)."""
    destination = await destinations.update(destination_id, body)
    return DestinationMessageEnvelope(
        data=_read(await destinations.view(destination)), message="Destination saved."
    )


@router.delete(
    "/{destination_id}",
    operation_id="delete_destination",
    response_model=DestinationDeletedEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def delete_destination(
    destination_id: DestinationId, destinations: DestinationServiceDep
) -> DestinationDeletedEnvelope:
    """Delete a destination: 409 while a source uses it or a backup copy lives on it."""
    await destinations.delete(destination_id)
    return DestinationDeletedEnvelope(data={"id": destination_id}, message="Destination deleted.")


@router.post(
    "/{destination_id}/test",
    operation_id="test_destination",
    response_model=DestinationTestEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def test_destination(
    destination_id: DestinationId, destinations: DestinationServiceDep
) -> DestinationTestEnvelope:
    """Write, read back and delete a probe object; ``ok`` false says which step failed and why."""
    result = await destinations.test(destination_id)
    return DestinationTestEnvelope(data=result, message=result.message)


copies_router = APIRouter(prefix="/admin/api/database-backups", tags=["backups"])


async def get_copy_retry_service(request: Request, principal: CurrentPrincipal) -> CopyRetryService:
    ensure_admin(principal)
    return CopyRetryService(
        request_session(request),
        actor=principal.actor(client_ip(request)),
        queue=getattr(request.app.state, "queue", None),
    )


class CopyListEnvelope(MessageEnvelope[list[CopyRead]]):
    pass


@copies_router.post(
    "/{backup_id}/copies/{destination_id}/retry",
    operation_id="retry_backup_copy",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CopyListEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422, 503),
)
async def retry_backup_copy(
    backup_id: BackupId,
    destination_id: DestinationId,
    service: Annotated[CopyRetryService, Depends(get_copy_retry_service)],
) -> CopyListEnvelope:
    """Store a failed copy again, from another copy whose size and SHA-256 check out (a job)."""
    copies = await service.request_retry(backup_id, destination_id)
    return CopyListEnvelope(data=copies, message="Copy queued for another try.")
