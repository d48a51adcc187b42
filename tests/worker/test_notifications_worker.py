"""Notifications through a real ``dbkeep worker`` process: the failure mail of a backup with a
wrong password reaches an SMTP server, and a delivery survives the worker being killed."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.service import Actor
from app.config import Settings
from app.db import Database
from app.jobs.queue import ArqJobQueue
from app.kit.secret import Secret
from app.notifications.models import NotificationDelivery
from app.notifications.schemas import ChannelCreate
from app.notifications.service import NotificationService
from app.sources.models import Source
from tests import support
from tests.notifications.receivers import HttpReceiver, SmtpServer, start_smtp
from tests.worker.conftest import WorkerFactory, wait_for

WRONG_PASSWORD = "Wrong-pw-" + secrets.token_hex(4)
HOOK_SECRET = "worker-hook-secret-" + "s" * 12


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp("mailer", "smtp-pw-" + secrets.token_hex(6))
    yield server
    server.controller.stop()


async def add_channel(
    database: Database, settings: Settings, kind: str, config: dict[str, Any]
) -> int:
    async with database.sessionmaker() as session:
        service = NotificationService(session, settings=settings, actor=Actor.system("test"))
        channel = await service.create(
            ChannelCreate(name=f"{kind}-w", kind=kind, config=config, events=["backup.failed"])  # type: ignore[arg-type]
        )
        return channel.id


async def queue_wrong_password_backup(
    database: Database, service_factory: Callable[..., Any], queue: ArqJobQueue, target: str
) -> int:
    async with database.sessionmaker() as session:
        source = Source(
            name="orders",
            engine="mysql",
            url=Secret(support.target_url(target, password=WRONG_PASSWORD)),
            databases=[target],
            exclude=[],
            timezone="UTC",
            retention={},
        )
        session.add(source)
        await session.commit()
    async with service_factory(queue) as service:
        backup = await service.create(source=source, database=target)
    return int(backup.id)


async def deliveries(database: Database) -> list[NotificationDelivery]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(NotificationDelivery)))


async def test_the_worker_mails_the_failure_of_a_backup_with_a_wrong_password(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    worker_settings: Settings,
    target_database: str,
    smtp: SmtpServer,
) -> None:
    await add_channel(database, worker_settings, "email", {"to": ["ops@example.com"]})
    workers.start(
        smtp_url=smtp.url,
        smtp_from="dbkeep@example.com",
        public_url="https://backups.example.com",
        notify_sweep_seconds=1,
    )
    backup_id = await queue_wrong_password_backup(database, service_factory, queue, target_database)

    async def mailed() -> bool:
        return bool(smtp.mailbox.messages)

    await wait_for(mailed, timeout=40, what="the failure mail")
    [(_, rcpts, raw)] = smtp.mailbox.messages
    assert rcpts == ["ops@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_content()
    assert message["Subject"] == f"[dbkeep] Backup failed: orders/{target_database}"
    assert "access denied for user" in body
    assert f"https://backups.example.com/admin/database-backups?selected={backup_id}" in body
    for secret in (WRONG_PASSWORD, smtp.password):
        assert secret not in raw.decode(errors="replace")
        assert secret not in workers.logs()
    [row] = await deliveries(database)
    assert row.status == "delivered" and row.attempts == 1


@pytest.mark.slow
async def test_a_delivery_survives_a_killed_worker_and_is_sent_once_when_the_receiver_is_up(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    receiver = HttpReceiver()
    try:
        await add_channel(
            database, worker_settings, "webhook", {"url": receiver.url, "secret": HOOK_SECRET}
        )
        fast = {"notify_sweep_seconds": 1, "notify_backoff_seconds": 1}
        first = workers.start(**fast)
        await queue_wrong_password_backup(database, service_factory, queue, target_database)

        async def tried() -> bool:
            rows = await deliveries(database)
            return bool(rows) and rows[0].attempts >= 1

        await wait_for(tried, timeout=40, what="a first, failed attempt")
        first.kill()  # SIGKILL: nothing is cleaned up; the row alone says what is left
        [row] = await deliveries(database)
        assert row.status == "pending" and row.last_error
        failed_tries = row.attempts

        receiver.start()
        workers.start(**fast)

        async def delivered() -> bool:
            rows = await deliveries(database)
            return rows[0].status == "delivered"

        await wait_for(delivered, timeout=40, what="the delivery after the restart")
        [row] = await deliveries(database)
        assert row.attempts >= failed_tries + 1
        assert [a["ok"] for a in row.attempt_log] == [False] * (row.attempts - 1) + [True]
        assert len(receiver.received) == 1
        got = receiver.received[0]
        digest = hmac.new(HOOK_SECRET.encode(), got.body, hashlib.sha256).hexdigest()
        assert got.headers["x-dbkeep-signature"] == f"sha256={digest}"
        assert got.json()["event"] == "backup.failed"
    finally:
        receiver.stop()


async def test_a_restore_run_by_the_worker_notifies_once_that_it_finished(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    from app.backups.models import BackupStatus, RestoreStatus
    from app.backups.repository import BackupRepository, RestoreRepository
    from tests.worker.conftest import seed

    receiver = HttpReceiver()
    receiver.start()
    try:
        async with database.sessionmaker() as session:
            service = NotificationService(
                session, settings=worker_settings, actor=Actor.system("test")
            )
            await service.create(
                ChannelCreate(
                    name="restores",
                    kind="webhook",
                    config={"url": receiver.url, "secret": HOOK_SECRET},
                    events=["restore.finished"],
                )
            )
        seed(target_database, rows=50)
        workers.start(notify_sweep_seconds=1)
        async with service_factory(queue) as backups:
            backup_id = (await backups.create()).id

        async def completed() -> bool:
            async with database.sessionmaker() as session:
                row = await BackupRepository(session).get(backup_id)
            assert row is not None and row.status is not BackupStatus.failed, row
            return row.status is BackupStatus.completed

        await wait_for(completed, timeout=40, what="the backup")
        async with service_factory(queue) as backups:
            operation = await backups.request_restore(backup_id)

        async def received() -> bool:
            return bool(receiver.received)

        await wait_for(received, timeout=60, what="the restore.finished webhook")
        async with database.sessionmaker() as session:
            restore = await RestoreRepository(session).get(operation.id)
        assert restore is not None and restore.status is RestoreStatus.completed
        [got] = receiver.received
        document = got.json()
        assert document["event"] == "restore.finished"
        assert document["restore"]["id"] == operation.id
        assert document["restore"]["status"] == "completed"
        assert document["backup"]["id"] == backup_id
        # The safety backup is a backup too, but this channel only gets restore.finished.
        assert len(await deliveries(database)) == 1
    finally:
        receiver.stop()
