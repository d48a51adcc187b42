"""The notification channels API (contract part 2, admins only): list, create, read, change,
delete, send a test, list deliveries. Routes parse, call one service method and wrap it."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BeforeValidator

from app.backups.router import AUTH_ERRORS
from app.deps import CurrentPrincipal, client_ip, ensure_admin
from app.http.envelope import (
    DataEnvelope,
    MessageEnvelope,
    PageEnvelope,
    PageMeta,
    error_responses,
)
from app.http.params import MAX_ID, PageNumber, PerPage, whole_number
from app.http.sessions import request_session
from app.notifications.delivery import AttemptResult
from app.notifications.models import NotificationChannel, NotificationDelivery
from app.notifications.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    DeliveryRead,
    TestResult,
)
from app.notifications.service import NotificationService, secret_names

router = APIRouter(prefix="/admin/api/notification-channels", tags=["notifications"])

ChannelId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The notification channel's id.", examples=[1]),
    BeforeValidator(whole_number),
]


async def get_notification_service(
    request: Request, principal: CurrentPrincipal
) -> NotificationService:
    ensure_admin(principal)
    return NotificationService(
        request_session(request),
        settings=request.app.state.settings,
        actor=principal.actor(client_ip(request)),
    )


NotificationServiceDep = Annotated[NotificationService, Depends(get_notification_service)]


class ChannelEnvelope(DataEnvelope[ChannelRead]):
    pass


class ChannelListEnvelope(DataEnvelope[list[ChannelRead]]):
    pass


class ChannelMessageEnvelope(MessageEnvelope[ChannelRead]):
    pass


class DeletedChannelEnvelope(MessageEnvelope[dict[str, int]]):
    pass


class TestResultEnvelope(MessageEnvelope[TestResult]):
    pass


class DeliveryPageEnvelope(PageEnvelope[DeliveryRead]):
    pass


def _read(channel: NotificationChannel) -> ChannelRead:
    return ChannelRead(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        config=dict(channel.config),
        secrets_set=secret_names(channel),
        events=list(channel.events),
        enabled=channel.enabled,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _delivery(row: NotificationDelivery) -> DeliveryRead:
    return DeliveryRead.model_validate(row, from_attributes=True)


def _test(result: AttemptResult) -> TestResult:
    return TestResult(
        delivery_id=result.delivery_id,
        ok=result.ok,
        status=result.status,
        error=result.error,
        duration_ms=result.duration_ms,
    )


@router.get(
    "",
    operation_id="list_notification_channels",
    response_model=ChannelListEnvelope,
    responses=error_responses(*AUTH_ERRORS),
)
async def list_channels(service: NotificationServiceDep) -> ChannelListEnvelope:
    """Every notification channel, by name (secrets never included)."""
    return ChannelListEnvelope(data=[_read(c) for c in await service.channels()])


@router.post(
    "",
    operation_id="create_notification_channel",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 409, 422),
)
async def create_channel(
    body: ChannelCreate, service: NotificationServiceDep
) -> ChannelMessageEnvelope:
    """Add a channel: email, a signed webhook or an Apprise URL, and the events it gets."""
    channel = await service.create(body)
    return ChannelMessageEnvelope(data=_read(channel), message="Notification channel added.")


@router.get(
    "/{channel_id}",
    operation_id="get_notification_channel",
    response_model=ChannelEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def get_channel(channel_id: ChannelId, service: NotificationServiceDep) -> ChannelEnvelope:
    """One channel (secrets never included; ``secrets_set`` says which are stored)."""
    return ChannelEnvelope(data=_read(await service.get(channel_id)))


@router.patch(
    "/{channel_id}",
    operation_id="update_notification_channel",
    response_model=ChannelMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def update_channel(
    channel_id: ChannelId, body: ChannelUpdate, service: NotificationServiceDep
) -> ChannelMessageEnvelope:
    """Change the fields sent; a secret left out of ``config`` keeps its stored value."""
    channel = await service.update(channel_id, body)
    return ChannelMessageEnvelope(data=_read(channel), message="Notification channel saved.")


@router.delete(
    "/{channel_id}",
    operation_id="delete_notification_channel",
    response_model=DeletedChannelEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def delete_channel(
    channel_id: ChannelId, service: NotificationServiceDep
) -> DeletedChannelEnvelope:
    """Delete a channel and its delivery history."""
    await service.delete(channel_id)
    return DeletedChannelEnvelope(data={"id": channel_id}, message="Notification channel deleted.")


@router.post(
    "/{channel_id}/test",
    operation_id="test_notification_channel",
    response_model=TestResultEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def test_channel(
    channel_id: ChannelId, service: NotificationServiceDep
) -> TestResultEnvelope:
    """Send a test notification now, once, and report the attempt (``ok``, ``error``)."""
    result = await service.test(channel_id)
    message = "Test notification sent." if result.ok else "The test notification failed."
    return TestResultEnvelope(data=_test(result), message=message)


@router.get(
    "/{channel_id}/deliveries",
    operation_id="list_notification_deliveries",
    response_model=DeliveryPageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def list_deliveries(
    channel_id: ChannelId,
    service: NotificationServiceDep,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> DeliveryPageEnvelope:
    """The channel's deliveries, newest first, each with its attempts."""
    rows, total = await service.deliveries(channel_id, page=page, per_page=per_page)
    return DeliveryPageEnvelope(
        data=[_delivery(row) for row in rows],
        meta=PageMeta(
            current_page=page,
            per_page=per_page,
            total=total,
            last_page=max(1, math.ceil(total / per_page)),
        ),
    )
