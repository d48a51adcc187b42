"""``notify`` for the events other features raise (verification.failed, health.changed): one
delivery per enabled, subscribed channel, with the contract's body and a readable text."""

from __future__ import annotations

from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.kit.secret import Secret
from app.notifications.delivery import deliver_due
from app.notifications.models import NotificationDelivery
from app.notifications.service import notify
from app.notifications.texts import render
from app.sources.models import Source
from tests.notifications.conftest import WEBHOOK_SECRET
from tests.notifications.receivers import HttpReceiver

SOURCE_PASSWORD = "src-Pass-9021"


async def test_health_and_verification_events_reach_their_subscribers_only(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
) -> None:
    receiver.start()
    health_hook = await channel_factory(
        "webhook", {"url": receiver.url + "/health", "secret": WEBHOOK_SECRET}, ["health.changed"]
    )
    await channel_factory(
        "webhook",
        {"url": receiver.url + "/verify", "secret": WEBHOOK_SECRET},
        ["verification.failed"],
    )
    async with database.sessionmaker() as session:
        source = Source(
            name="billing",
            engine="postgresql",
            url=Secret(f"postgresql://app:{SOURCE_PASSWORD}@db.internal:5432/billing"),
            databases=["billing"],
            exclude=[],
            timezone="UTC",
            retention={},
        )
        session.add(source)
        await session.flush()
        rows = await notify(
            session,
            "health.changed",
            source=source,
            health={
                "status": "failing",
                "previous": "ok",
                # A reason quoting the URL must not carry its password out.
                "reasons": [
                    "the newest backup failed",
                    f"cannot reach postgresql://app:{SOURCE_PASSWORD}@db.internal:5432",
                ],
            },
        )
        await session.commit()
    assert [row.channel_id for row in rows] == [health_hook.id]

    [result] = await deliver_due(database.sessionmaker, notify_settings)
    assert result.ok, result.error
    [got] = receiver.received
    assert got.path == "/health"
    document = got.json()
    assert set(document) == {"event", "occurred_at", "source", "health"}
    assert document["source"]["name"] == "billing"
    assert document["health"]["status"] == "failing"
    assert SOURCE_PASSWORD not in got.body.decode()
    assert "postgresql://app:***@db.internal:5432" in document["health"]["reasons"][1]

    async with database.sessionmaker() as session:
        [stored] = list(await session.scalars(select(NotificationDelivery)))
    message = render(stored.payload, "https://backups.example.com")
    assert message.subject == "[dbkeep] Health changed: billing"
    assert "Health: ok -> failing" in message.text
    assert "- the newest backup failed" in message.text


async def test_notify_for_an_event_nobody_subscribed_to_queues_nothing(
    database: Database,
    channel_factory,  # type: ignore[no-untyped-def]
) -> None:
    await channel_factory("email", {"to": ["ops@example.com"]}, ["backup.failed"])
    async with database.sessionmaker() as session:
        rows = await notify(
            session,
            "verification.failed",
            verification={"id": 4, "backup_id": 9, "status": "failed", "error_message": "rows"},
        )
        await session.commit()
        assert rows == []
        assert list(await session.scalars(select(NotificationDelivery))) == []
