"""API test fixtures: the app with its lifespan run, an httpx client over ASGI, users, logins;
the session's real S3-compatible server (``tests/s3server.py``)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role, User
from app.auth.passwords import hash_password
from app.auth.service import AuthService
from app.backups.models import BackupStatus, BackupTrigger, DatabaseBackup
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.s3server import s3_server  # noqa: F401  (a session fixture, shared)

PASSWORD = "correct-horse-battery"
BASE_URL = "http://testserver"


@lru_cache(maxsize=1)
def password_hash() -> str:
    # argon2 is deliberately slow: hash the shared test password once per run.
    return hash_password(PASSWORD)


@pytest.fixture
async def app(database: Database, settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan entered (store, storage, queue opened)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    await forget_queue(settings)


async def forget_queue(settings: Settings) -> None:
    """Remove what the test's unique queue left in the shared Redis."""
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"*{settings.queue_name}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def make_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client."""
    async with make_client(app) as c:
        yield c


UserFactory = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(database: Database) -> UserFactory:
    """Insert a user directly; the password is ``PASSWORD`` unless given."""

    async def factory(
        email: str | None = None,
        *,
        role: Role = Role.admin,
        password: str | None = None,
        is_active: bool = True,
    ) -> User:
        now = datetime.now(UTC)
        user = User(
            email=email or f"user-{secrets.token_hex(4)}@example.com",
            password_hash=hash_password(password) if password else password_hash(),
            role=role,
            is_active=is_active,
            created_at=now,
            updated_at=now,
        )
        async with database.sessionmaker() as session:
            session.add(user)
            await session.commit()
        return user

    return factory


@pytest.fixture
async def admin_user(make_user: UserFactory) -> User:
    return await make_user("admin@example.com", role=Role.admin)


@pytest.fixture
async def viewer_user(make_user: UserFactory) -> User:
    return await make_user("viewer@example.com", role=Role.viewer)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Log in; on success the client keeps the cookies and sends the CSRF header from now on."""
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.json()["data"]["csrf_token"]
    return response


@pytest.fixture
async def admin_client(app: FastAPI, admin_user: User) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as an admin through the session cookie, CSRF header set."""
    async with make_client(app) as c:
        response = await login(c, admin_user.email)
        assert response.status_code == 200, response.text
        yield c


@pytest.fixture
async def viewer_client(app: FastAPI, viewer_user: User) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        response = await login(c, viewer_user.email)
        assert response.status_code == 200, response.text
        yield c


@dataclass
class TokenClient:
    client: httpx.AsyncClient
    token: str
    token_id: int


@pytest.fixture
async def admin_token(
    app: FastAPI, database: Database, settings: Settings, admin_user: User
) -> AsyncIterator[TokenClient]:
    """A client authenticated only by an admin's API token (no cookies, no CSRF header)."""
    async with database.sessionmaker() as session:
        row, token = await AuthService(session, settings=settings).create_api_token(
            email=admin_user.email, name="tests"
        )
    async with make_client(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield TokenClient(c, token, row.id)


BackupFactory = Callable[..., Awaitable[DatabaseBackup]]


@pytest.fixture
def make_backup(database: Database) -> BackupFactory:
    """Insert a backup row directly (no file unless the test writes one)."""

    async def factory(**overrides: Any) -> DatabaseBackup:
        return (await insert_backups(database, [overrides]))[0]

    return factory


async def insert_backups(database: Database, rows: list[dict[str, Any]]) -> list[DatabaseBackup]:
    """Insert many backup rows in one transaction, each with sensible defaults."""
    now = datetime.now(UTC)
    backups = []
    for i, overrides in enumerate(rows):
        uid = overrides.pop("unique_identifier", None) or secrets.token_hex(16)
        status = overrides.pop("status", BackupStatus.completed)
        backup_date = overrides.pop("backup_date", now - timedelta(minutes=i))
        filename = overrides.pop(
            "filename", f"shop_{backup_date:%Y-%m-%d_%H%M%S}_{uid[:8]}.sql.zst"
        )
        values: dict[str, Any] = {
            "filename": filename,
            "unique_identifier": uid,
            "path": f"{backup_date:%Y/%m}/{filename}",
            "file_size": 1000 + i,
            "status": status,
            "backup_date": backup_date,
            "completed_at": backup_date if status is BackupStatus.completed else None,
            "created_at": backup_date,
            "updated_at": backup_date,
            "compression": "zstd",
            "trigger": BackupTrigger.manual,
            "target_database": "shop",
            "bytes_processed": 0,
            "attempts": 0,
        }
        if status is BackupStatus.in_trash:
            values["status_before_trash"] = BackupStatus.completed
            values["trashed_at"] = now
        values.update(overrides)
        backups.append(DatabaseBackup(**values))
    async with database.sessionmaker() as session:
        session.add_all(backups)
        await session.commit()
    return backups


def assert_failure(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is the failure envelope with ``status``; returns the body."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"success", "message", "errors"}
    return body
