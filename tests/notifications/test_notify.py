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


async def test_the_health_job_queues_one_health_changed_per_change(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
) -> None:
    from datetime import timedelta

    from app.backups.models import BackupStatus
    from app.db import utcnow
    from app.sources.health_service import refresh_source_health
    from app.sources.health_tasks import notify_health_changes
    from tests.api.conftest import insert_backups

    channel = await channel_factory(
        "webhook", {"url": "http://127.0.0.1:9/", "secret": WEBHOOK_SECRET}, ["health.changed"]
    )
    now = utcnow()
    async with database.sessionmaker() as session:
        source = Source(
            name="orders",
            engine="mysql",
            url=Secret(f"mysql://app:{SOURCE_PASSWORD}@db.internal:3306/orders"),
            databases=["orders"],
            exclude=[],
            schedule="0 * * * *",
            timezone="UTC",
            retention={},
        )
        session.add(source)
        await session.commit()
    await insert_backups(
        database,
        [
            {
                "source_id": source.id,
                "target_database": "orders",
                "status": BackupStatus.failed,
                "backup_date": now - timedelta(minutes=5),
                "error_message": "Access denied for user 'app'",
            }
        ],
    )

    async def run_job(at: timedelta) -> None:
        async with database.sessionmaker() as session:
            changes = await refresh_source_health(session, backup_dir=None, now=now + at)
            await notify_health_changes(session, changes)

    await run_job(timedelta(0))
    await run_job(timedelta(minutes=1))  # still failing: no second notification
    async with database.sessionmaker() as session:
        rows = (await session.scalars(select(NotificationDelivery))).all()
    assert [(r.channel_id, r.event) for r in rows] == [(channel.id, "health.changed")]
    body = rows[0].payload
    assert body["source"]["name"] == "orders"
    assert body["health"]["previous"] == "ok" and body["health"]["status"] == "failing"
    assert SOURCE_PASSWORD not in str(body)
