"""``Annotated`` dependency aliases for routes: settings, sessions, the caller, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, AuditService
from app.auth.cookies import SESSION_COOKIE
from app.auth.csrf import require_csrf
from app.auth.models import Role, User
from app.auth.service import AuthService, Principal
from app.backups.service import BackupService
from app.config import Settings
from app.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.http.sessions import request_session
from app.queue import JobQueue
from app.sources.service import SourceService
from app.storage.base import BackupStorage

ADMIN_ONLY = "Only administrators can manage database backups."

# Every dependency is ``async def`` even when it does no I/O: FastAPI runs a plain ``def``
# dependency in a worker thread, a hop that cost more than the rest of a list request.


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(request: Request) -> AsyncSession:
    """The request's metadata-store session, closed after the response (app/http/sessions.py)."""
    return request_session(request)


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_storage_dep(request: Request) -> BackupStorage:
    storage: BackupStorage | None = getattr(request.app.state, "storage", None)
    if storage is None:
        raise ServiceUnavailable("Backup storage is not available in this process.")
    return storage


StorageDep = Annotated[BackupStorage, Depends(get_storage_dep)]


async def get_queue(request: Request) -> JobQueue | None:
    queue: JobQueue | None = getattr(request.app.state, "queue", None)
    return queue


QueueDep = Annotated[JobQueue | None, Depends(get_queue)]


def client_ip(request: Request) -> str | None:
    """The peer address; behind a proxy listed in DBKEEP_TRUSTED_PROXIES, the client's."""
    return request.client.host[:45] if request.client else None


async def get_auth_service(request: Request) -> AuthService:
    return AuthService(request_session(request), settings=request.app.state.settings)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_audit_service(request: Request) -> AuditService:
    return AuditService(request_session(request))


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]


async def get_principal(request: Request) -> Principal:
    """The authenticated caller: a bearer token, or a session cookie (plus CSRF when unsafe)."""
    # Its service is made here, not asked of FastAPI: every dependency FastAPI solves costs a
    # request ~15 µs whatever it does, and this one runs on every request (docs/benchmarks.md).
    auth = await get_auth_service(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("Use 'Authorization: Bearer <API token>'.")
        principal = await auth.authenticate_token(credentials.strip())
        if principal is None:
            raise Unauthorized("The API token is invalid, expired or revoked.")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await auth.authenticate_session(cookie)
        if principal is None:
            raise Unauthorized("Your session has expired; log in again.")
        require_csrf(request, principal)
        return principal
    raise Unauthorized("Unauthenticated.")


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def ensure_admin(principal: Principal) -> Principal:
    """``principal``, who must be an admin (the original's System Admin)."""
    if principal.user.role is not Role.admin:
        raise Forbidden(ADMIN_ONLY)
    return principal


async def require_admin(principal: CurrentPrincipal) -> Principal:
    return ensure_admin(principal)


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


async def get_current_admin(principal: AdminPrincipal) -> User:
    return principal.user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]


async def get_actor(request: Request, principal: AdminPrincipal) -> Actor:
    """The admin making this request, for the audit log."""
    return principal.actor(client_ip(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_backup_service(request: Request, principal: CurrentPrincipal) -> BackupService:
    # The admin check, session, settings, storage and queue straight from the app: each
    # dependency FastAPI solves costs ~15 µs, and this one is on every backup route
    # (docs/benchmarks.md).
    ensure_admin(principal)
    state = request.app.state
    return BackupService(
        request_session(request),
        settings=state.settings,
        storage=await get_storage_dep(request),
        queue=getattr(state, "queue", None),
        actor=principal.actor(client_ip(request)),
    )


BackupServiceDep = Annotated[BackupService, Depends(get_backup_service)]


async def get_source_service(request: Request, principal: CurrentPrincipal) -> SourceService:
    ensure_admin(principal)
    state = request.app.state
    return SourceService(
        request_session(request),
        settings=state.settings,
        engines=state.engines,
        actor=principal.actor(client_ip(request)),
    )


SourceServiceDep = Annotated[SourceService, Depends(get_source_service)]
