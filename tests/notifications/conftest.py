"""Notification test fixtures: the key ring, loopback receivers, a source and a channel."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from app.audit.service import Actor
from app.config import Settings
from app.db import Database
from app.keys import configure_encryption
from app.kit.encryption import install_key_ring
from app.notifications.models import NotificationChannel
from app.notifications.schemas import ChannelCreate
from app.notifications.service import NotificationService
from tests.notifications.receivers import HttpReceiver, SmtpServer, start_smtp


@pytest.fixture(autouse=True)
def key_ring(settings: Settings) -> Iterator[None]:
    configure_encryption(settings)
    yield
    install_key_ring(None)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp("mailer", "smtp-pw-" + secrets.token_hex(6))
    yield server
    server.controller.stop()


@pytest.fixture
def notify_settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": SecretStr(smtp.url),
            "smtp_from": "dbkeep@example.com",
            "public_url": "https://backups.example.com",
            "notify_timeout_seconds": 3,
            "notify_backoff_seconds": 30,
        }
    )


WEBHOOK_SECRET = "whsec-" + "k" * 24


async def add_channel(
    database: Database,
    settings: Settings,
    kind: str,
    config: dict[str, Any],
    events: list[str],
    *,
    name: str | None = None,
    enabled: bool = True,
) -> NotificationChannel:
    async with database.sessionmaker() as session:
        service = NotificationService(session, settings=settings, actor=Actor.system("test"))
        return await service.create(
            ChannelCreate(
                name=name or f"{kind}-{secrets.token_hex(3)}",
                kind=kind,  # type: ignore[arg-type]
                config=config,
                events=events,
                enabled=enabled,
            )
        )


@pytest.fixture
async def channel_factory(database: Database, notify_settings: Settings) -> AsyncIterator[Any]:
    async def make(kind: str, config: dict[str, Any], events: list[str], **kw: Any):  # type: ignore[no-untyped-def]
        return await add_channel(database, notify_settings, kind, config, events, **kw)

    yield make
