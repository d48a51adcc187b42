"""Notification channels (create, change, test, delete) and ``notify``: queue one delivery per
enabled channel subscribed to an event.

``notify(session, event, ...)`` is what other features call (verification.failed,
health.changed): it adds the rows to the caller's session, which commits them with the change
they report. The backup and restore runners call ``notify_backup_finished`` /
``notify_restore_finished``, which use their own session and never raise: a notification
problem must not fail a backup. The worker's sweep (``app.notifications.tasks``) sends them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.backups.models import BackupStatus, DatabaseBackup, RestoreOperation, RestoreStatus
from app.config import Settings
from app.db import Database, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.kit.secret import Secret
from app.notifications.channels import CHANNEL_KINDS
from app.notifications.channels.base import ChannelConfigError
from app.notifications.delivery import AttemptResult, deliver_one
from app.notifications.models import (
    TEST_EVENT,
    DeliveryStatus,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
)
from app.notifications.repository import NotificationRepository
from app.notifications.schemas import ChannelCreate, ChannelUpdate
from app.notifications.texts import scrub
from app.sources.models import Source

log = structlog.get_logger("dbkeep.notifications")

DEFAULT_MAX_ATTEMPTS = 8


# ---- payloads --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _source_secrets(source: Source | None) -> tuple[str, ...]:
    """The source URL's password (raw and decoded), to scrub from anything a payload holds."""
    if source is None:
        return ()
    password = urlsplit(source.url.reveal()).password or ""
    return tuple({p for p in (password, unquote(password)) if len(p) >= 3})


def _source_database(source: Source | None) -> str | None:
    if source is None:
        return None
    return urlsplit(source.url.reveal()).path.lstrip("/") or None


def source_part(source: Source | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {"id": source.id, "name": source.name, "engine": source.engine}


def backup_part(backup: DatabaseBackup, source: Source | None = None) -> dict[str, Any]:
    return {
        "id": backup.id,
        "filename": backup.filename,
        "database": backup.target_database or _source_database(source),
        "status": backup.status.value,
        "trigger": backup.trigger.value,
        "error_message": backup.error_message,
        "file_size": backup.file_size,
        "checksum_sha256": backup.checksum_sha256,
        "duration_ms": backup.duration_ms,
        "completed_at": _iso(backup.completed_at),
    }


async def notify(
    session: AsyncSession,
    event: NotificationEvent | str,
    *,
    source: Source | None = None,
    backup: DatabaseBackup | None = None,
    restore: RestoreOperation | None = None,
    verification: dict[str, Any] | None = None,
    health: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[NotificationDelivery]:
    """Queue ``event`` for every enabled channel subscribed to it: one delivery row each, in
    ``session`` (the caller commits). ``verification`` / ``health`` are the contract's shapes
    (health: ``{"status", "previous", "reasons"}``). Returns the rows queued."""
    name = NotificationEvent(event).value
    repo = NotificationRepository(session)
    channels = [c for c in await repo.enabled_channels() if name in (c.events or [])]
    if not channels:
        return []
    now = occurred_at or utcnow()
    payload: dict[str, Any] = {
        "event": name,
        "occurred_at": now.isoformat(),
        "source": source_part(source),
    }
    if backup is not None:
        payload["backup"] = backup_part(backup, source)
    if restore is not None:
        payload["restore"] = {
            "id": restore.id,
            "status": restore.status.value,
            "database": restore.target_database,
            "error_message": restore.error_message,
            "safety_backup_id": restore.safety_backup_id,
        }
    if verification is not None:
        payload["verification"] = verification
    if health is not None:
        payload["health"] = health
    payload = scrub(payload, _source_secrets(source))
    rows = []
    for channel in channels:
        row = NotificationDelivery(
            channel_id=channel.id,
            event=name,
            payload=payload,
            status=DeliveryStatus.pending.value,
            attempts=0,
            max_attempts=max_attempts,
            next_attempt_at=now,
            attempt_log=[],
            created_at=now,
        )
        repo.add(row)
        rows.append(row)
    log.info("notification.queued", notification_event=name, deliveries=len(rows))
    return rows


async def notify_backup_finished(
    database: Database, settings: Settings, backup_id: int, *, degraded: bool = False
) -> None:
    """Queue backup.completed / backup.failed (or, with ``degraded``, backup.degraded) for a
    backup that just finished. Never raises."""
    try:
        async with database.sessionmaker() as session:
            backup = await session.get(DatabaseBackup, backup_id)
            if backup is None:
                return
            if degraded:
                event = NotificationEvent.backup_degraded
            elif backup.status is BackupStatus.completed:
                event = NotificationEvent.backup_completed
            elif backup.status is BackupStatus.failed:
                event = NotificationEvent.backup_failed
            else:
                return
            source = await session.get(Source, backup.source_id) if backup.source_id else None
            await notify(
                session,
                event,
                source=source,
                backup=backup,
                max_attempts=settings.notify_max_attempts,
            )
            await session.commit()
    except Exception:
        log.exception("notification.queue_failed", backup_id=backup_id)


async def notify_restore_finished(database: Database, settings: Settings, restore_id: int) -> None:
    """Queue restore.finished for a restore that just ended (completed, failed, rolled back).
    Never raises."""
    try:
        async with database.sessionmaker() as session:
            restore = await session.get(RestoreOperation, restore_id)
            if restore is None or restore.status not in (
                RestoreStatus.completed,
                RestoreStatus.failed,
                RestoreStatus.rolled_back,
            ):
                return
            backup = await session.get(DatabaseBackup, restore.backup_id)
            source_id = restore.target_source_id or (backup.source_id if backup else None)
            source = await session.get(Source, source_id) if source_id else None
            await notify(
                session,
                NotificationEvent.restore_finished,
                source=source,
                backup=backup,
                restore=restore,
                max_attempts=settings.notify_max_attempts,
            )
            await session.commit()
    except Exception:
        log.exception("notification.queue_failed", restore_id=restore_id)


# ---- channels --------------------------------------------------------------------------------


def secret_names(channel: NotificationChannel) -> list[str]:
    if channel.secrets is None:
        return []
    return sorted(json.loads(channel.secrets.reveal()))


def _split(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``config`` as (plain fields, secret fields); a secret must be a string."""
    cls = CHANNEL_KINDS[kind]
    plain = {k: v for k, v in config.items() if k not in cls.secret_fields}
    secrets: dict[str, str] = {}
    for key in cls.secret_fields & set(config):
        value = config[key]
        if not isinstance(value, str) or not value:
            raise ValidationFailed(
                "The channel's config is not valid.",
                errors={f"config.{key}": ["must be a non-empty string"]},
            )
        secrets[key] = value
    return plain, secrets


def _checked(
    kind: str, plain: dict[str, Any], secrets: dict[str, str], stored: set[str]
) -> dict[str, Any]:
    cls = CHANNEL_KINDS[kind]
    missing = sorted(cls.secret_fields - set(secrets) - stored)
    if missing:
        raise ValidationFailed(
            "The channel's config is not valid.",
            errors={f"config.{key}": ["required"] for key in missing},
        )
    try:
        return cls.check_config(plain, secrets)
    except ChannelConfigError as exc:
        raise ValidationFailed(
            "The channel's config is not valid.", errors={exc.field: [exc.message]}
        ) from None


class NotificationService:
    def __init__(self, session: AsyncSession, *, settings: Settings, actor: Actor) -> None:
        self.session = session
        self.settings = settings
        self.actor = actor
        self.repo = NotificationRepository(session)

    async def channels(self) -> list[NotificationChannel]:
        """Every channel, by name."""
        return await self.repo.channels()

    async def get(self, channel_id: int) -> NotificationChannel:
        channel = await self.repo.channel(channel_id)
        if channel is None:
            raise NotFound(f"Notification channel {channel_id} was not found.")
        return channel

    async def _name_free(self, name: str, channel_id: int | None = None) -> None:
        other = await self.repo.channel_by_name(name)
        if other is not None and other.id != channel_id:
            raise Conflict(f"A notification channel named {name!r} already exists.")

    async def create(self, data: ChannelCreate) -> NotificationChannel:
        """Add a channel; its secret fields are stored encrypted and never returned."""
        await self._name_free(data.name)
        plain, secrets = _split(data.kind, data.config)
        config = _checked(data.kind, plain, secrets, set())
        now = utcnow()
        channel = NotificationChannel(
            name=data.name,
            kind=data.kind,
            config=config,
            secrets=Secret(json.dumps(secrets)) if secrets else None,
            events=list(data.events),
            enabled=data.enabled,
            created_at=now,
            updated_at=now,
        )
        self.repo.add(channel)
        await self.session.flush()
        self._audit("notification_channel.create", channel)
        await self.session.commit()
        return channel

    async def update(self, channel_id: int, data: ChannelUpdate) -> NotificationChannel:
        """Change the fields sent; a secret left out of ``config`` keeps its value."""
        channel = await self.get(channel_id)
        if data.name is not None and data.name != channel.name:
            await self._name_free(data.name, channel.id)
            channel.name = data.name
        if data.config is not None:
            stored: dict[str, str] = (
                json.loads(channel.secrets.reveal()) if channel.secrets is not None else {}
            )
            plain, secrets = _split(channel.kind, data.config)
            channel.config = _checked(channel.kind, plain, secrets, set(stored))
            if secrets:
                channel.secrets = Secret(json.dumps({**stored, **secrets}))
        if data.events is not None:
            channel.events = list(data.events)
        if data.enabled is not None:
            channel.enabled = data.enabled
        channel.updated_at = utcnow()
        self._audit("notification_channel.update", channel)
        await self.session.commit()
        return channel

    async def delete(self, channel_id: int) -> None:
        """Delete a channel and its deliveries."""
        channel = await self.get(channel_id)
        self._audit("notification_channel.delete", channel)
        await self.repo.delete_channel(channel)
        await self.session.commit()

    async def test(self, channel_id: int) -> AttemptResult:
        """Send a test message now (one attempt, recorded as a delivery) and say how it went."""
        channel = await self.get(channel_id)
        now = utcnow()
        delivery = NotificationDelivery(
            channel_id=channel.id,
            event=TEST_EVENT,
            payload={"event": TEST_EVENT, "occurred_at": now.isoformat(), "source": None},
            status=DeliveryStatus.pending.value,
            attempts=0,
            max_attempts=1,
            next_attempt_at=now,
            attempt_log=[],
            created_at=now,
        )
        self.repo.add(delivery)
        await self.session.commit()
        result = await deliver_one(self.session, self.settings, delivery.id, now=now)
        if result is None:  # a sweep took it first: it was sent, or is being sent, there
            raise Conflict("The test is already being sent; see the channel's deliveries.")
        return result

    async def deliveries(
        self, channel_id: int, *, page: int, per_page: int
    ) -> tuple[list[NotificationDelivery], int]:
        """A channel's deliveries, newest first."""
        await self.get(channel_id)
        return await self.repo.deliveries_page(channel_id, page=page, per_page=per_page)

    def _audit(self, action: str, channel: NotificationChannel) -> None:
        record_event(
            self.session,
            actor=self.actor,
            action=action,
            target_type="notification_channel",
            target_id=channel.id,
            details={"name": channel.name, "kind": channel.kind},
        )
