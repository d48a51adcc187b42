"""``/api/auth``: log in (session cookie + CSRF cookie), log out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.auth.cookies import SESSION_COOKIE, clear_login_cookies, set_login_cookies
from app.auth.schemas import LoginData, LoginRequest, MeData, UserRead
from app.deps import AuthServiceDep, CurrentPrincipal, SettingsDep, client_ip
from app.http.content import JsonBody
from app.http.envelope import DataEnvelope, MessageEnvelope, error_responses

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/login",
    operation_id="login",
    response_model=MessageEnvelope[LoginData],
    responses=error_responses(401, 413, 415, 422, 429),
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    settings: SettingsDep,
    _json: JsonBody,
) -> MessageEnvelope[LoginData]:
    """Log in with e-mail and password; sets the session and CSRF cookies.

    After too many failures for one account from one client the answer is 429 with Retry-After,
    even for the right password, for a delay that grows with each further failure; other clients
    are not locked out (see DBKEEP_LOGIN_MAX_FAILURES*). Unknown users and wrong passwords get
    the same 401.
    """
    result = await auth.login(
        email=body.email,
        password=body.password,
        client_ip=client_ip(request),
        previous_session_token=request.cookies.get(SESSION_COOKIE),
    )
    set_login_cookies(
        response,
        session_token=result.session_token,
        csrf_token=result.csrf_token,
        settings=settings,
    )
    return MessageEnvelope(
        message="Logged in.",
        data=LoginData(
            user=UserRead.model_validate(result.user),
            csrf_token=result.csrf_token,
            expires_at=result.expires_at,
        ),
    )


@router.post(
    "/logout",
    operation_id="logout",
    response_model=MessageEnvelope[None],
    responses=error_responses(401, 403),
)
async def logout(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    auth: AuthServiceDep,
    settings: SettingsDep,
) -> MessageEnvelope[None]:
    """End the current session: its cookie stops working at once."""
    await auth.logout(principal, client_ip=client_ip(request))
    clear_login_cookies(response, settings=settings)
    return MessageEnvelope(message="Logged out.", data=None)


@router.get(
    "/me",
    operation_id="me",
    response_model=DataEnvelope[MeData],
    responses=error_responses(401),
)
async def me(principal: CurrentPrincipal) -> DataEnvelope[MeData]:
    """The logged-in user (any role), and whether a session or an API token was used."""
    return DataEnvelope(
        data=MeData(
            user=UserRead.model_validate(principal.user),
            auth="session" if principal.via_cookie else "token",
        )
    )
