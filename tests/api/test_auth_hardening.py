"""Issue 11: the login throttle under parallel attempts and per (account, address), address and
account; ids and sessions that never pass to another user; relative slash redirects; the origin
check; trusted proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from app.audit.models import AuditEvent
from app.auth.models import LoginCounter, Role, User
from app.auth.service import INVALID_CREDENTIALS, AuthService
from app.config import Settings
from app.db import Database
from app.errors import Conflict
from app.main import create_app
from tests.api.conftest import (
    BASE_URL,
    PASSWORD,
    TokenClient,
    UserFactory,
    assert_failure,
    forget_queue,
    login,
    make_client,
)

LOGIN = "/api/auth/login"
BACKUPS = "/admin/api/database-backups"


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@asynccontextmanager
async def app_with(settings: Settings, **changes: object) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update=changes))
    async with application.router.lifespan_context(application):
        yield application
    await forget_queue(settings)


async def wrong(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": "wrong-password"})


async def failed_logins_audited(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).where(AuditEvent.action == "auth.login_failed")
        return int(await session.scalar(query) or 0)


async def unblock(database: Database) -> None:
    """As if every delay had run out."""
    async with database.sessionmaker() as session:
        await session.execute(
            update(LoginCounter).values(blocked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


# ---- item 3: counted before the password is checked ----------------------------------------


async def test_parallel_wrong_passwords_check_no_more_than_the_limit(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    responses = await asyncio.gather(*(wrong(client, admin_user.email) for _ in range(30)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 5 + [429] * 25
    # Only five reached the password check (each failed one is audited).
    assert await failed_logins_audited(database) == 5
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
    # And the right password from this client waits too.
    assert_failure(
        await client.post(LOGIN, json={"email": admin_user.email, "password": PASSWORD}), 429
    )


# ---- item 4: nobody can lock an account out -----------------------------------------------


async def test_a_failing_client_does_not_lock_out_the_owner(app: FastAPI, admin_user: User) -> None:
    async with client_at(app, "198.51.100.7") as attacker, client_at(app, "203.0.113.9") as owner:
        for _ in range(5):
            body = assert_failure(await wrong(attacker, admin_user.email), 401)
            assert body["message"] == INVALID_CREDENTIALS
        sixth = await wrong(attacker, admin_user.email)
        assert_failure(sixth, 429)
        assert 0 < int(sixth.headers["retry-after"]) <= 15 * 60
        # The owner, from a client that has not been failing, logs in at once.
        assert (await login(owner, admin_user.email)).status_code == 200
        # Hammering a blocked key counts nothing: the attacker is still at five.
        for _ in range(10):
            assert_failure(await wrong(attacker, admin_user.email), 429)


async def test_unknown_user_and_wrong_password_get_the_same_401(
    client: httpx.AsyncClient, admin_user: User
) -> None:
    unknown = assert_failure(await wrong(client, "nobody@example.com"), 401)
    known = assert_failure(await wrong(client, admin_user.email), 401)
    assert unknown["message"] == known["message"] == INVALID_CREDENTIALS


async def test_delays_grow_with_each_further_failure(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    for _ in range(5):
        assert_failure(await wrong(client, admin_user.email), 401)
    first = int((await wrong(client, admin_user.email)).headers["retry-after"])
    await unblock(database)
    assert_failure(await wrong(client, admin_user.email), 401)  # the sixth is checked
    second = int((await wrong(client, admin_user.email)).headers["retry-after"])
    await unblock(database)
    assert_failure(await wrong(client, admin_user.email), 401)
    third = int((await wrong(client, admin_user.email)).headers["retry-after"])
    assert first <= 60 < second <= 120 < third <= 240
    # The right password after the delay works and starts the count again.
    await unblock(database)
    assert (await login(client, admin_user.email)).status_code == 200


async def test_one_address_trying_many_accounts_is_throttled(
    settings: Settings, database: Database, make_user: UserFactory
) -> None:
    owner = await make_user("owner@example.com")
    async with (
        app_with(settings, login_max_failures_per_address=3) as app,
        client_at(app, "198.51.100.7") as sprayer,
        client_at(app, "203.0.113.9") as other,
    ):
        for n in range(3):
            assert_failure(await wrong(sprayer, f"guess-{n}@example.com"), 401)
        refused = await wrong(sprayer, "guess-4@example.com")
        assert_failure(refused, 429)
        assert int(refused.headers["retry-after"]) > 0
        assert_failure(
            await sprayer.post(LOGIN, json={"email": owner.email, "password": PASSWORD}), 429
        )
        # Another address is not affected.
        assert (await login(other, owner.email)).status_code == 200


async def test_an_account_under_a_spread_attack_waits_seconds_not_minutes(
    settings: Settings, database: Database, admin_user: User
) -> None:
    async with app_with(settings, login_max_failures_per_account=3) as app:
        for n in range(3):
            async with client_at(app, f"192.0.2.{n + 1}") as attacker:
                assert_failure(await wrong(attacker, admin_user.email), 401)
        async with client_at(app, "203.0.113.9") as owner:
            refused = await owner.post(
                LOGIN, json={"email": admin_user.email, "password": PASSWORD}
            )
            assert_failure(refused, 429)
            assert 0 < int(refused.headers["retry-after"]) <= 60
            # A refused try costs the owner nothing: after the delay they are in.
            await unblock(database)
            assert (await login(owner, admin_user.email)).status_code == 200


# ---- item 6: ids and sessions never pass to another user ------------------------------------


async def test_ids_of_deleted_users_and_tokens_are_never_reused(
    database: Database, settings: Settings, admin_user: User
) -> None:
    async with database.sessionmaker() as session:
        auth = AuthService(session, settings=settings)
        first = await auth.create_user(email="a@example.com", password=PASSWORD, role=Role.viewer)
        token, _ = await auth.create_api_token(email=first.email, name="t")
        await auth.delete_user(first.email)
        second = await auth.create_user(email="b@example.com", password=PASSWORD, role=Role.viewer)
        other_token, _ = await auth.create_api_token(email=second.email, name="t")
    assert second.id > first.id
    assert other_token.id > token.id


async def _remove_user_by_hand(database: Database, user_id: int) -> None:
    """What an operator editing the store without its foreign keys does (the sqlite3 shell)."""
    async with database.engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        elif dialect == "mysql":
            await conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        else:
            await conn.exec_driver_sql("SET session_replication_role = replica")
        await conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
        await conn.commit()
        if dialect == "sqlite":
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        elif dialect == "mysql":
            await conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        else:
            await conn.exec_driver_sql("SET session_replication_role = DEFAULT")


async def test_a_removed_users_session_and_token_never_answer_as_a_new_user_with_its_id(
    app: FastAPI, database: Database, admin_user: User, admin_token: TokenClient
) -> None:
    async with make_client(app) as browser:
        assert (await login(browser, admin_user.email)).status_code == 200
        await _remove_user_by_hand(database, admin_user.id)
        # The id comes back (inserted by hand too): the old credentials must not follow it.
        now = datetime.now(UTC)
        async with database.sessionmaker() as session:
            session.add(
                User(
                    id=admin_user.id,
                    email="newcomer@example.com",
                    password_hash=admin_user.password_hash,
                    role=Role.admin,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()
        assert_failure(await browser.get("/api/auth/me"), 401)
        assert_failure(await admin_token.client.get("/api/auth/me"), 401)


async def test_disabling_a_user_ends_their_sessions_and_tokens_at_once(
    app: FastAPI,
    database: Database,
    settings: Settings,
    admin_user: User,
    make_user: UserFactory,
    admin_token: TokenClient,
) -> None:
    await make_user("second-admin@example.com", role=Role.admin)
    async with make_client(app) as browser:
        assert (await login(browser, admin_user.email)).status_code == 200
        assert (await browser.get("/api/auth/me")).status_code == 200
        async with database.sessionmaker() as session:
            await AuthService(session, settings=settings).disable_user(admin_user.email)
        assert_failure(await browser.get("/api/auth/me"), 401)
        assert_failure(await admin_token.client.get(BACKUPS), 401)
        assert_failure(await login(browser, admin_user.email), 401)

        async with database.sessionmaker() as session:
            await AuthService(session, settings=settings).enable_user(admin_user.email)
        # Enabled again: a new login works, what was ended stays ended.
        assert_failure(await admin_token.client.get(BACKUPS), 401)
        assert (await login(browser, admin_user.email)).status_code == 200


async def test_the_only_active_admin_is_not_disabled_or_deleted(
    database: Database, settings: Settings, admin_user: User
) -> None:
    async with database.sessionmaker() as session:
        auth = AuthService(session, settings=settings)
        with pytest.raises(Conflict, match="only active admin"):
            await auth.disable_user(admin_user.email)
        with pytest.raises(Conflict, match="only active admin"):
            await auth.delete_user(admin_user.email)


# ---- item 7: redirects never name a host from the request -----------------------------------


async def test_trailing_slash_redirect_is_relative_whatever_the_host(
    admin_token: TokenClient,
) -> None:
    response = await admin_token.client.get(f"{BACKUPS}/?page=2", headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == f"{BACKUPS}?page=2"
    followed = await admin_token.client.get(response.headers["location"])
    assert followed.status_code == 200
    # Not a way to write "//host" into a Location either.
    twice = await admin_token.client.get(f"{BASE_URL}//evil.example/")
    assert "evil" not in twice.headers.get("location", "")
    assert_failure(await admin_token.client.get("/no/such/page/"), 404)


# ---- item 10: origin check, trusted proxies -------------------------------------------------


async def test_cookie_requests_from_another_origin_are_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver:8443"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ):
        body = assert_failure(await admin_client.post("/api/auth/logout", headers=headers), 403)
        assert "Cross-site" in body["message"]
    # Still logged in: nothing above did anything.
    assert (await admin_client.get("/api/auth/me")).status_code == 200
    # The dashboard's own requests, and a script's without Origin, pass.
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert (await admin_client.post("/api/auth/logout", headers=same)).status_code == 200


async def test_a_client_without_origin_headers_needs_only_the_csrf_token(
    admin_client: httpx.AsyncClient,
) -> None:
    assert (await admin_client.post("/api/auth/logout")).status_code == 200


async def test_the_origin_is_dbkeep_public_url_when_set(
    settings: Settings, admin_user: User
) -> None:
    async with (
        app_with(settings, public_url="https://backups.example.com/") as app,
        make_client(app) as browser,
    ):
        assert (await login(browser, admin_user.email)).status_code == 200
        # The Host the request came to no longer counts, the public URL does.
        assert_failure(
            await browser.post("/api/auth/logout", headers={"Origin": "http://testserver"}),
            403,
        )
        ok = await browser.post(
            "/api/auth/logout", headers={"Origin": "https://backups.example.com"}
        )
        assert ok.status_code == 200


async def test_bearer_requests_need_no_origin(admin_token: TokenClient) -> None:
    response = await admin_token.client.post(
        "/api/auth/logout", headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 200


async def _login_audit_ips(database: Database) -> list[str | None]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(select(AuditEvent.client_ip).order_by(AuditEvent.id))
        return list(rows)


async def test_x_forwarded_for_counts_only_from_trusted_proxies(
    settings: Settings, database: Database, admin_user: User
) -> None:
    forwarded = {"X-Forwarded-For": "6.6.6.6, 203.0.113.5"}
    async with (
        app_with(settings, trusted_proxies="198.51.100.0/24") as app,
        client_at(app, "198.51.100.7") as proxy,
        client_at(app, "192.0.2.8") as direct,
    ):
        await proxy.post(
            LOGIN, json={"email": admin_user.email, "password": "x"}, headers=forwarded
        )
        await direct.post(
            LOGIN, json={"email": admin_user.email, "password": "x"}, headers=forwarded
        )
    # The proxy's client is the rightmost address it did not write itself; a peer that is not
    # a trusted proxy is its own client, whatever it claims.
    assert await _login_audit_ips(database) == ["203.0.113.5", "192.0.2.8"]


async def test_x_forwarded_for_is_ignored_by_default(
    client: httpx.AsyncClient, database: Database, admin_user: User
) -> None:
    await client.post(
        LOGIN,
        json={"email": admin_user.email, "password": "x"},
        headers={"X-Forwarded-For": "6.6.6.6"},
    )
    assert await _login_audit_ips(database) == ["198.51.100.7"]


async def test_counters_of_finished_runs_are_dropped(
    client: httpx.AsyncClient, admin_user: User, database: Database
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with database.sessionmaker() as session:
        session.add_all(
            LoginCounter(
                email=f"old-{n}@example.com",
                client_ip="192.0.2.1",
                failures=3,
                last_failure_at=long_ago,
                blocked_until=None if n else long_ago,
                attempt="x",
            )
            for n in range(3)
        )
        await session.commit()
    assert_failure(await wrong(client, admin_user.email), 401)
    async with database.sessionmaker() as session:
        left = set(await session.scalars(select(LoginCounter.email)))
    assert left == {"", admin_user.email}  # this attempt's address, pair and account
