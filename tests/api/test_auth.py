"""Login, sessions, CSRF, API tokens, throttling and the admin-only policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, update

from app.audit.models import AuditEvent
from app.auth.models import LoginCounter, Role, User, UserSession
from app.auth.service import AuthService
from app.auth.tokens import sha256_hex
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.api.conftest import (
    PASSWORD,
    TokenClient,
    UserFactory,
    assert_failure,
    login,
    make_client,
)

BACKUPS = "/admin/api/database-backups"


def set_cookie_headers(response: httpx.Response) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


async def test_login_sets_httponly_session_and_readable_csrf_cookie(
    client: httpx.AsyncClient, admin_user: User
) -> None:
    response = await login(client, admin_user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["user"]["email"] == "admin@example.com"
    assert body["data"]["user"]["role"] == "admin"
    assert "password_hash" not in body["data"]["user"]
    cookies = set_cookie_headers(response)
    session_cookie, csrf_cookie = cookies["dbkeep_session"], cookies["csrf_token"]
    assert "HttpOnly" in session_cookie and "samesite=lax" in session_cookie.lower()
    assert "HttpOnly" not in csrf_cookie and "samesite=lax" in csrf_cookie.lower()
    assert "Secure" not in session_cookie
    assert client.cookies["csrf_token"] == body["data"]["csrf_token"]
    assert response.headers["cache-control"] == "no-store"

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["data"] == {
        "user": me.json()["data"]["user"],
        "auth": "session",
    }
    assert me.json()["data"]["user"]["id"] == admin_user.id


async def test_session_cookie_is_stored_as_a_hash(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    await login(client, admin_user.email)
    token = client.cookies["dbkeep_session"]
    async with database.sessionmaker() as session:
        ids = list(await session.scalars(select(UserSession.id)))
    assert ids == [sha256_hex(token)]


async def test_secure_cookies_behind_https(
    database: Database, settings: Settings, admin_user: User
) -> None:
    app = create_app(settings.model_copy(update={"public_url_https": True}))
    async with app.router.lifespan_context(app), make_client(app) as c:
        response = await login(c, admin_user.email)
    cookies = set_cookie_headers(response)
    assert "Secure" in cookies["dbkeep_session"] and "Secure" in cookies["csrf_token"]
    assert "max-age=31536000" in response.headers["strict-transport-security"]


@pytest.mark.parametrize(
    "email,password",
    [
        ("nobody@example.com", PASSWORD),
        ("admin@example.com", "wrong-password"),
        ("disabled@example.com", PASSWORD),
    ],
)
async def test_same_401_for_unknown_user_wrong_password_and_disabled_account(
    client: httpx.AsyncClient,
    admin_user: User,
    make_user: UserFactory,
    email: str,
    password: str,
) -> None:
    await make_user("disabled@example.com", is_active=False)
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    body = assert_failure(response, 401)
    assert body["message"] == "These credentials do not match our records."
    assert "dbkeep_session" not in client.cookies


async def test_email_is_case_insensitive(client: httpx.AsyncClient, admin_user: User) -> None:
    response = await login(client, "  ADMIN@Example.COM ")
    assert response.status_code == 200


async def test_login_rotates_the_session(
    client: httpx.AsyncClient, admin_user: User, app: FastAPI
) -> None:
    await login(client, admin_user.email)
    first = client.cookies["dbkeep_session"]
    first_csrf = client.cookies["csrf_token"]
    await login(client, admin_user.email)
    second = client.cookies["dbkeep_session"]
    assert second != first and client.cookies["csrf_token"] != first_csrf

    async with make_client(app) as other:
        other.cookies.set("dbkeep_session", first)
        assert_failure(await other.get("/api/auth/me"), 401)
        other.cookies.set("dbkeep_session", second)
        assert (await other.get("/api/auth/me")).status_code == 200


async def test_logout_invalidates_the_old_cookie(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    old_cookie = admin_client.cookies["dbkeep_session"]
    response = await admin_client.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Logged out.", "data": None}
    assert "dbkeep_session" not in admin_client.cookies

    async with make_client(app) as replay:
        replay.cookies.set("dbkeep_session", old_cookie)
        assert_failure(await replay.get("/api/auth/me"), 401)
        assert_failure(await replay.get(BACKUPS), 401)


async def test_expired_session_is_refused(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    async with database.sessionmaker() as session:
        await session.execute(
            update(UserSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    body = assert_failure(await admin_client.get("/api/auth/me"), 401)
    assert "expired" in body["message"]


@pytest.mark.parametrize("header", [None, "", "wrong-token"])
async def test_unsafe_cookie_request_without_the_right_csrf_header_is_403(
    admin_client: httpx.AsyncClient, database: Database, header: str | None
) -> None:
    del admin_client.headers["X-CSRF-Token"]
    headers = {} if header is None else {"X-CSRF-Token": header}
    response = await admin_client.post(
        f"{BACKUPS}/bulk-trash", json={"backup_ids": [1]}, headers=headers
    )
    body = assert_failure(response, 403)
    assert "CSRF" in body["message"]
    assert_failure(await admin_client.post("/api/auth/logout", headers=headers), 403)
    # Nothing happened: the session still works.
    assert (await admin_client.get("/api/auth/me")).status_code == 200


async def test_csrf_header_must_match_this_session(
    app: FastAPI, admin_user: User, make_user: UserFactory
) -> None:
    other = await make_user("other-admin@example.com")
    async with make_client(app) as a, make_client(app) as b:
        await login(a, admin_user.email)
        await login(b, other.email)
        a.headers["X-CSRF-Token"] = b.headers["X-CSRF-Token"]
        assert_failure(await a.post("/api/auth/logout"), 403)


async def test_safe_methods_need_no_csrf(admin_client: httpx.AsyncClient) -> None:
    del admin_client.headers["X-CSRF-Token"]
    assert (await admin_client.get(BACKUPS)).status_code == 200


async def test_bearer_token_works_without_csrf(admin_token: TokenClient) -> None:
    me = await admin_token.client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["data"]["auth"] == "token"
    response = await admin_token.client.post(f"{BACKUPS}/bulk-trash", json={"backup_ids": [5]})
    assert response.status_code == 200
    assert response.json()["data"]["results"][0]["status"] == 404


async def test_token_is_stored_hashed_and_revocable(
    admin_token: TokenClient, database: Database, settings: Settings
) -> None:
    async with database.sessionmaker() as session:
        service = AuthService(session, settings=settings)
        tokens = await service.list_api_tokens("admin@example.com")
        assert [t.token_hash for t in tokens] == [sha256_hex(admin_token.token)]
        assert admin_token.token not in tokens[0].token_prefix + "x"
        await service.revoke_api_token(admin_token.token_id)
    body = assert_failure(await admin_token.client.get(BACKUPS), 401)
    assert "revoked" in body["message"]


@pytest.mark.parametrize(
    "authorization", ["Bearer nope", "Bearer ", "Basic YWRtaW46cGFzcw==", "Bearer " + "x" * 5000]
)
async def test_bad_authorization_header_is_401(
    client: httpx.AsyncClient, admin_user: User, authorization: str
) -> None:
    response = await client.get(BACKUPS, headers={"Authorization": authorization})
    assert_failure(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_anonymous_is_401_and_viewer_is_403(
    client: httpx.AsyncClient, viewer_client: httpx.AsyncClient
) -> None:
    for method, path in [
        ("GET", BACKUPS),
        ("POST", BACKUPS),
        ("GET", f"{BACKUPS}/statistics"),
        ("GET", f"{BACKUPS}/1"),
        ("DELETE", f"{BACKUPS}/1"),
        ("POST", f"{BACKUPS}/1/restore"),
        ("POST", f"{BACKUPS}/1/trash"),
        ("POST", f"{BACKUPS}/1/restore-from-trash"),
        ("POST", f"{BACKUPS}/1/cancel"),
        ("GET", f"{BACKUPS}/1/restores"),
        ("GET", "/admin/database-backups/1/download"),
        ("GET", "/admin/api/audit-events"),
    ]:
        assert_failure(await client.request(method, path), 401)
        assert_failure(await viewer_client.request(method, path), 403)
    for method, path in [("POST", f"{BACKUPS}/bulk-trash"), ("DELETE", f"{BACKUPS}/bulk-delete")]:
        assert_failure(await client.request(method, path, json={"backup_ids": [1]}), 401)
        assert_failure(await viewer_client.request(method, path, json={"backup_ids": [1]}), 403)
    # A viewer may still ask who they are (the dashboard says "admins only").
    assert (await viewer_client.get("/api/auth/me")).json()["data"]["user"]["role"] == "viewer"


async def test_sixth_failed_login_is_throttled_with_retry_after(
    client: httpx.AsyncClient, admin_user: User, make_user: UserFactory, database: Database
) -> None:
    other = await make_user("other@example.com")
    for _ in range(5):
        assert_failure(
            await client.post(
                "/api/auth/login", json={"email": admin_user.email, "password": "nope-nope"}
            ),
            401,
        )
    # Even the right password is refused now.
    response = await client.post(
        "/api/auth/login", json={"email": admin_user.email, "password": PASSWORD}
    )
    assert_failure(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    # The throttle is per account.
    assert (await login(client, other.email)).status_code == 200

    # Once the delay is over, the account may log in again.
    async with database.sessionmaker() as session:
        await session.execute(
            update(LoginCounter).values(blocked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert (await login(client, admin_user.email)).status_code == 200


async def test_success_resets_the_failure_count(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    for _ in range(4):
        await client.post("/api/auth/login", json={"email": admin_user.email, "password": "x"})
    assert (await login(client, admin_user.email)).status_code == 200
    async with database.sessionmaker() as session:
        pair = await session.scalar(
            select(func.count())
            .select_from(LoginCounter)
            .where(LoginCounter.email == admin_user.email, LoginCounter.client_ip != "")
        )
    assert pair == 0
    # Four more wrong passwords are allowed again before the fifth blocks.
    for _ in range(4):
        assert_failure(
            await client.post("/api/auth/login", json={"email": admin_user.email, "password": "x"}),
            401,
        )


async def test_auth_events_are_audited_with_the_client_address(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    await client.post("/api/auth/login", json={"email": admin_user.email, "password": "bad-pass"})
    await login(client, admin_user.email)
    await client.post("/api/auth/logout")
    async with database.sessionmaker() as session:
        events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["auth.login_failed", "auth.login", "auth.logout"]
    assert all(e.client_ip == "198.51.100.7" for e in events)
    assert all(e.user_id == admin_user.id for e in events)
    assert all(e.actor == "admin@example.com" for e in events)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "admin@example.com"},
        {"email": "a" * 300 + "@example.com", "password": "x"},
        {"email": "admin@example.com", "password": "x" * 5000},
        {"email": 5, "password": []},
        [],
    ],
)
async def test_login_input_is_validated(
    client: httpx.AsyncClient, admin_user: User, payload: object
) -> None:
    body = assert_failure(await client.post("/api/auth/login", json=payload), 422)
    assert body["errors"]


async def test_login_with_a_non_json_body_is_415(
    client: httpx.AsyncClient, admin_user: User
) -> None:
    response = await client.post(
        "/api/auth/login",
        content="email=admin@example.com&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_failure(response, 415)
    broken = await client.post(
        "/api/auth/login", content="{not json", headers={"Content-Type": "application/json"}
    )
    assert_failure(broken, 422)


async def test_first_admin_is_created_at_start_up(database: Database, settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "admin_email": "First@Example.com",
            "admin_password": SecretStr("first-admin-pass"),
        }
    )
    app = create_app(configured)
    async with app.router.lifespan_context(app), make_client(app) as c:
        response = await login(c, "first@example.com", "first-admin-pass")
        assert response.status_code == 200
        assert response.json()["data"]["user"]["role"] == "admin"
    # A second start does not create another one.
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        pass
    async with database.sessionmaker() as session:
        users = list(await session.scalars(select(User)))
    assert [(u.email, u.role) for u in users] == [("first@example.com", Role.admin)]
