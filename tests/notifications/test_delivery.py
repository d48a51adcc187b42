"""Notifications delivered to real servers on loopback: a failed backup's mail through
aiosmtpd, a signed webhook, a receiver that is down then up, an Apprise json:// URL."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
from datetime import timedelta
from email.message import Message as MailMessage

from sqlalchemy import select, text

from app.audit.service import Actor
from app.backups.models import BackupStatus
from app.backups.runner import BackupRunner, TransientBackupFailure
from app.backups.service import BackupService
from app.config import Settings
from app.db import Database, utcnow
from app.engines import get_engine
from app.kit.secret import Secret
from app.notifications.delivery import deliver_due
from app.notifications.models import NotificationDelivery
from app.notifications.service import notify_backup_finished
from app.sources.models import Source
from app.storage import get_storage
from tests import support
from tests.notifications.conftest import WEBHOOK_SECRET
from tests.notifications.receivers import HttpReceiver, SmtpServer, free_port

WRONG_PASSWORD = "wrong-Pw-7731xq"


async def add_source(database: Database, url: str, name: str = "shop-db") -> Source:
    async with database.sessionmaker() as session:
        source = Source(
            name=name,
            engine="mysql",
            url=Secret(url),
            databases=[],
            exclude=[],
            timezone="UTC",
            retention={},
        )
        session.add(source)
        await session.commit()
        return source


async def run_failed_backup(
    database: Database, settings: Settings, source: Source, target: str, *, attempts: int = 1
) -> int:
    async with database.sessionmaker() as session:
        service = BackupService(
            session,
            settings=settings,
            storage=get_storage(settings),
            queue=None,
            actor=Actor.system("test"),
        )
        backup_id = (await service.create(source=source, database=target, enqueue=False)).id
    runner = BackupRunner(
        database=database,
        settings=settings,
        engine=get_engine(settings),
        storage=get_storage(settings),
    )
    for attempt in range(1, attempts + 1):
        try:
            await runner.run_backup(backup_id, attempt=attempt, max_attempts=attempts)
        except TransientBackupFailure:
            continue
    return backup_id


async def deliveries(database: Database) -> list[NotificationDelivery]:
    async with database.sessionmaker() as session:
        return list(
            await session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id))
        )


def mail_text(raw: bytes) -> tuple[MailMessage, str]:
    message = email.message_from_bytes(raw)
    part = message.get_payload(decode=True) if not message.is_multipart() else None
    assert isinstance(part, bytes)
    return message, part.decode()


async def test_a_backup_with_a_wrong_password_mails_its_failure_without_any_secret(
    database: Database,
    notify_settings: Settings,
    smtp: SmtpServer,
    channel_factory,  # type: ignore[no-untyped-def]
    target_database: str,
) -> None:
    channel = await channel_factory(
        "email", {"to": ["ops@example.com", "dba@example.com"]}, ["backup.failed"]
    )
    # Not subscribed / disabled: they get nothing.
    await channel_factory("email", {"to": ["quiet@example.com"]}, ["backup.completed"])
    await channel_factory("email", {"to": ["off@example.com"]}, ["backup.failed"], enabled=False)
    url = support.target_url(target_database, password=WRONG_PASSWORD)
    source = await add_source(database, url)

    backup_id = await run_failed_backup(database, notify_settings, source, target_database)

    queued = await deliveries(database)
    assert [(d.channel_id, d.event, d.status) for d in queued] == [
        (channel.id, "backup.failed", "pending")
    ]
    results = await deliver_due(database.sessionmaker, notify_settings)
    assert [r.ok for r in results] == [True], results
    assert smtp.logins == ["mailer"]  # the login in DBKEEP_SMTP_URL was used
    assert len(smtp.mailbox.messages) == 1
    sender, recipients, raw = smtp.mailbox.messages[0]
    assert sender == "dbkeep@example.com"
    assert recipients == ["ops@example.com", "dba@example.com"]
    message, body = mail_text(raw)
    assert message["Subject"] == f"[dbkeep] Backup failed: shop-db/{target_database}"
    assert "Source: shop-db (mysql)" in body
    assert f"Database: {target_database}" in body
    assert "access denied for user" in body  # the server's reason
    assert f"https://backups.example.com/admin/database-backups?selected={backup_id}" in body
    whole = raw.decode(errors="replace")
    for secret in (WRONG_PASSWORD, smtp.password, support.test_password()):
        assert secret not in whole
    [row] = await deliveries(database)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    assert row.attempt_log[0]["ok"] is True
    assert WRONG_PASSWORD not in json.dumps(row.payload)


async def test_a_retried_backup_is_one_notification_not_one_per_try(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    target_database: str,
    receiver: HttpReceiver,
) -> None:
    await channel_factory(
        "webhook",
        {"url": receiver.url + "/hook", "secret": WEBHOOK_SECRET},
        ["backup.failed", "backup.completed"],
    )
    # Nothing listens there: "can't connect" is transient, so the runner tries twice.
    url = f"mysql://{support.TEST_USER}:{WRONG_PASSWORD}@127.0.0.1:{free_port()}/{target_database}"
    source = await add_source(database, url)
    backup_id = await run_failed_backup(
        database, notify_settings, source, target_database, attempts=2
    )
    async with database.sessionmaker() as session:
        status = await session.scalar(
            text("SELECT status FROM database_backups WHERE id = :id"), {"id": backup_id}
        )
    assert status == BackupStatus.failed.value
    queued = await deliveries(database)
    assert [d.event for d in queued] == ["backup.failed"]


async def test_the_webhook_is_signed_and_retried_until_the_receiver_is_up_then_sent_once(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
    target_database: str,
) -> None:
    channel = await channel_factory(
        "webhook", {"url": receiver.url + "/dbkeep", "secret": WEBHOOK_SECRET}, ["backup.failed"]
    )
    source = await add_source(
        database, support.target_url(target_database, password=WRONG_PASSWORD)
    )
    backup_id = await run_failed_backup(database, notify_settings, source, target_database)

    # The receiver is down: the attempt fails and the next one waits the backoff.
    first = utcnow()
    [result] = await deliver_due(database.sessionmaker, notify_settings, now=first)
    assert not result.ok and result.status == "pending"
    assert "could not reach" in (result.error or "")
    # Not due yet: a sweep now sends nothing.
    assert await deliver_due(database.sessionmaker, notify_settings, now=utcnow()) == []

    receiver.start()
    later = first + timedelta(seconds=notify_settings.notify_backoff_seconds + 1)
    [result] = await deliver_due(database.sessionmaker, notify_settings, now=later)
    assert result.ok and result.status == "delivered"
    # Delivered: later sweeps send nothing more.
    assert (
        await deliver_due(database.sessionmaker, notify_settings, now=later + timedelta(hours=2))
        == []
    )

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/dbkeep"
    expected = hmac.new(WEBHOOK_SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-dbkeep-signature"] == f"sha256={expected}"
    assert got.headers["content-type"] == "application/json"
    document = got.json()
    assert set(document) == {"event", "occurred_at", "source", "backup"}
    assert document["event"] == "backup.failed"
    assert document["source"] == {"id": source.id, "name": "shop-db", "engine": "mysql"}
    assert document["backup"]["id"] == backup_id
    assert document["backup"]["database"] == target_database
    assert document["backup"]["status"] == "failed"
    assert "access denied" in document["backup"]["error_message"]
    assert document["backup"]["url"].endswith(f"?selected={backup_id}")
    assert WRONG_PASSWORD not in got.body.decode() and WEBHOOK_SECRET not in got.body.decode()

    [row] = await deliveries(database)
    assert row.channel_id == channel.id and row.status == "delivered" and row.attempts == 2
    assert [a["ok"] for a in row.attempt_log] == [False, True]
    assert row.attempt_log[0]["error"].startswith("could not reach")


async def test_a_delivery_gives_up_after_its_attempts(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
) -> None:
    receiver.status = 503
    receiver.start()
    await channel_factory(
        "webhook", {"url": receiver.url, "secret": WEBHOOK_SECRET}, ["backup.completed"]
    )
    settings = notify_settings.model_copy(update={"notify_max_attempts": 3})
    from tests.backups.factories import make_backup

    backup = await make_backup(database)
    await notify_backup_finished(database, settings, backup.id)
    now = utcnow()
    statuses = []
    for _ in range(5):
        now += timedelta(hours=2)
        statuses += [r.status for r in await deliver_due(database.sessionmaker, settings, now=now)]
    assert statuses == ["pending", "pending", "failed"]
    assert len(receiver.received) == 3
    [row] = await deliveries(database)
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error == f"127.0.0.1:{receiver.port} answered 503"


async def test_a_redirect_is_not_followed(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
) -> None:
    elsewhere = HttpReceiver()
    elsewhere.start()
    try:
        receiver.status = 307
        receiver.headers_out = {"Location": elsewhere.url + "/stolen"}
        receiver.start()
        await channel_factory(
            "webhook", {"url": receiver.url, "secret": WEBHOOK_SECRET}, ["backup.completed"]
        )
        from tests.backups.factories import make_backup

        backup = await make_backup(database)
        await notify_backup_finished(database, notify_settings, backup.id)
        [result] = await deliver_due(database.sessionmaker, notify_settings)
        assert result.status == "failed" and "redirect, not followed" in (result.error or "")
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


async def test_apprise_delivers_to_a_loopback_json_receiver(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
) -> None:
    receiver.status = 200
    receiver.start()
    token = "apprise-token-q81"
    await channel_factory(
        "apprise",
        {"url": f"json://127.0.0.1:{receiver.port}/notify/{token}"},
        ["backup.completed"],
    )
    from tests.backups.factories import make_backup

    backup = await make_backup(database, target_database="blog")
    await notify_backup_finished(database, notify_settings, backup.id)
    [result] = await deliver_due(database.sessionmaker, notify_settings)
    assert result.ok, result.error
    [got] = receiver.received
    assert got.path == f"/notify/{token}"
    document = got.json()
    assert document["title"] == "[dbkeep] Backup completed: blog"
    assert f"Backup: #{backup.id} {backup.filename}" in document["message"]
    assert f"?selected={backup.id}" in document["message"]
    # The Apprise URL (it holds the service's token) is stored encrypted.
    async with database.sessionmaker() as session:
        raw = await session.scalar(text("SELECT secrets FROM notification_channels"))
    assert raw and token not in raw


async def test_finished_deliveries_are_forgotten_after_the_keep_days_pending_ones_never(
    database: Database,
    notify_settings: Settings,
    channel_factory,  # type: ignore[no-untyped-def]
    receiver: HttpReceiver,
) -> None:
    from app.notifications.delivery import prune_deliveries
    from tests.backups.factories import make_backup

    receiver.start()
    await channel_factory(
        "webhook", {"url": receiver.url, "secret": WEBHOOK_SECRET}, ["backup.completed"]
    )
    first = await make_backup(database)
    await notify_backup_finished(database, notify_settings, first.id)
    await deliver_due(database.sessionmaker, notify_settings)  # delivered
    receiver.stop()
    second = await make_backup(database)
    await notify_backup_finished(database, notify_settings, second.id)  # stays pending
    keep = timedelta(days=notify_settings.notify_keep_days)

    assert await prune_deliveries(database.sessionmaker, notify_settings) == 0
    later = utcnow() + keep + timedelta(minutes=1)
    assert await prune_deliveries(database.sessionmaker, notify_settings, now=later) == 1
    [left] = await deliveries(database)
    assert left.status == "pending" and left.payload["backup"]["id"] == second.id
