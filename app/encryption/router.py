"""``GET /admin/api/encryption/recovery-kit``: dbkeep's age identities, to an admin who
re-enters their password (contract part 2, Encryption). Audited, never cached."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import PlainTextResponse

from app.deps import AdminPrincipal, client_ip
from app.encryption.service import PASSWORD_HEADER, EncryptionService
from app.http.envelope import error_responses
from app.http.sessions import request_session

router = APIRouter(prefix="/admin/api/encryption", tags=["encryption"])

KIT_FILENAME = "dbkeep-identity.txt"


async def get_encryption_service(request: Request) -> EncryptionService:
    return EncryptionService(request_session(request), settings=request.app.state.settings)


EncryptionServiceDep = Annotated[EncryptionService, Depends(get_encryption_service)]


@router.get(
    "/recovery-kit",
    operation_id="get_recovery_kit",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "An age identity file (comments with instructions, then one "
            "AGE-SECRET-KEY-1… line per identity, newest first).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 422, 429),
    },
)
async def get_recovery_kit(
    request: Request,
    principal: AdminPrincipal,
    service: EncryptionServiceDep,
    password: Annotated[
        str,
        Header(
            alias=PASSWORD_HEADER,
            min_length=1,
            max_length=1024,
            description="Your password, re-entered: the kit decrypts every encrypted backup.",
        ),
    ],
) -> PlainTextResponse:
    """dbkeep's private age keys as an identity file: `age -d -i dbkeep-identity.txt FILE`."""
    text = await service.recovery_kit_for(
        principal.user, password, actor=principal.actor(client_ip(request))
    )
    return PlainTextResponse(
        text,
        headers={
            "Content-Disposition": f'attachment; filename="{KIT_FILENAME}"',
            "Cache-Control": "no-store",
        },
    )
