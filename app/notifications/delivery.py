"""Sending deliveries: claim a due row, send it through its channel, record the attempt.

State lives in ``notification_deliveries``: a row is ``pending`` with a ``next_attempt_at``
until it is ``delivered`` or has used its attempts (``failed``). A claim moves the next try past
the attempt's longest possible duration, so two sweeps never send one row at once and a worker
killed mid-send leaves the row due again. Retries wait ``backoff`` (doubling, capped).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.kit.secret import Secret
from app.notifications.channels import channel_class
from app.notifications.channels.base import (
    Channel,
    ChannelContext,
    DeliveryError,
    SmtpServer,
)
from app.notifications.models import DeliveryStatus, NotificationChannel, NotificationDelivery
from app.notifications.repository import NotificationRepository
from app.notifications.texts import render

log = structlog.get_logger("dbkeep.notifications")

MAX_BACKOFF_SECONDS = 3600
SWEEP_BATCH = 100
PRUNE_BATCH = 1000


class SmtpUrlError(ValueError):
    pass


def smtp_server(url: str, sender: str) -> SmtpServer:
    """``smtp://user:pass@host:port`` or ``smtps://...`` as a server (no secret in errors)."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise SmtpUrlError("DBKEEP_SMTP_URL must be smtp://user:pass@host:port or smtps://...")
    try:
        port = parts.port
    except ValueError:
        raise SmtpUrlError("DBKEEP_SMTP_URL has a bad port") from None
    use_tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if use_tls else 587),
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
        sender=sender,
    )


def channel_context(settings: Settings) -> ChannelContext:
    smtp = None
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value():
        smtp = smtp_server(settings.smtp_url.get_secret_value(), settings.smtp_from)
    return ChannelContext(smtp=smtp, timeout_seconds=settings.notify_timeout_seconds)


def base_url(settings: Settings) -> str:
    """Where links in notifications point: DBKEEP_PUBLIC_URL, else where ``serve`` listens."""
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: base, 2x base, 4x base ... at most 1 h."""
    seconds = settings.notify_backoff_seconds * 2 ** min(attempts - 1, 20)
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, seconds))


def channel_for(row: NotificationChannel) -> Channel:
    """The channel object a row describes, its secrets decrypted (``KeyError``: unknown kind)."""
    secrets: dict[str, Secret] = {}
    if row.secrets is not None:
        stored: dict[str, Any] = json.loads(row.secrets.reveal())
        secrets = {key: Secret(str(value)) for key, value in stored.items()}
    return channel_class(row.kind)(dict(row.config), secrets)


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: int
    ok: bool
    status: str
    error: str | None
    duration_ms: int
    attempts: int


async def deliver_one(
    session: AsyncSession, settings: Settings, delivery_id: int, *, now: datetime | None = None
) -> AttemptResult | None:
    """One attempt at a due delivery; None when it is not due or another sweep has it."""
    now = now or utcnow()
    repo = NotificationRepository(session)
    lease = timedelta(seconds=3 * settings.notify_timeout_seconds + 30)
    if not await repo.claim(delivery_id, now=now, lease_until=now + lease):
        await session.commit()
        return None
    await session.commit()
    delivery = await repo.delivery(delivery_id)
    if delivery is None:
        return None
    channel_row = await repo.channel(delivery.channel_id)
    started = time.monotonic()
    error: str | None = None
    permanent = False
    if channel_row is None or not channel_row.enabled:
        error, permanent = "the channel was disabled before the delivery was sent", True
    else:
        try:
            channel = channel_for(channel_row)
            message = render(delivery.payload, base_url(settings))
            await channel.send(message, channel_context(settings))
        except DeliveryError as exc:
            error, permanent = exc.message, exc.permanent
        except SmtpUrlError as exc:
            error = str(exc)
        except Exception as exc:  # a channel bug must not wedge the queue; the row says so
            # The type only: a library's message or traceback may quote a URL with its token.
            log.error("notification.crashed", delivery_id=delivery_id, error=type(exc).__name__)
            error = f"the send failed unexpectedly ({type(exc).__name__}); see the worker log"
    return await _record(
        session, settings, delivery, error=error, permanent=permanent, started=started
    )


async def _record(
    session: AsyncSession,
    settings: Settings,
    delivery: NotificationDelivery,
    *,
    error: str | None,
    permanent: bool,
    started: float,
) -> AttemptResult:
    finished = utcnow()
    duration_ms = int((time.monotonic() - started) * 1000)
    attempts = delivery.attempts + 1
    entry = {
        "at": finished.isoformat(),
        "ok": error is None,
        "error": error,
        "duration_ms": duration_ms,
    }
    values: dict[str, Any] = {
        "attempts": attempts,
        "attempt_log": [*(delivery.attempt_log or []), entry],
        "last_error": error,
    }
    if error is None:
        values |= {"status": DeliveryStatus.delivered.value, "delivered_at": finished}
        values["next_attempt_at"] = None
        log.info(
            "notification.delivered", delivery_id=delivery.id, notification_event=delivery.event
        )
    elif permanent or attempts >= delivery.max_attempts:
        values |= {"status": DeliveryStatus.failed.value, "next_attempt_at": None}
        log.warning(
            "notification.failed",
            delivery_id=delivery.id,
            notification_event=delivery.event,
            reason=error,
        )
    else:
        values["next_attempt_at"] = finished + backoff(settings, attempts)
        log.info("notification.retrying", delivery_id=delivery.id, attempt=attempts, reason=error)
    repo = NotificationRepository(session)
    await repo.record(delivery.id, values)
    await session.commit()
    return AttemptResult(
        delivery_id=delivery.id,
        ok=error is None,
        status=values.get("status", DeliveryStatus.pending.value),
        error=error,
        duration_ms=duration_ms,
        attempts=attempts,
    )


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = SWEEP_BATCH,
) -> list[AttemptResult]:
    """Send every delivery that is due now (up to ``limit``), one attempt each."""
    now = now or utcnow()
    async with sessionmaker() as session:
        due = await NotificationRepository(session).due_ids(now, limit=limit)
    results: list[AttemptResult] = []
    for delivery_id in due:
        async with sessionmaker() as session:
            result = await deliver_one(session, settings, delivery_id, now=now)
        if result is not None:
            results.append(result)
    return results


async def prune_deliveries(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> int:
    """Forget finished deliveries older than DBKEEP_NOTIFY_KEEP_DAYS (a batch per call)."""
    before = (now or utcnow()) - timedelta(days=settings.notify_keep_days)
    async with sessionmaker() as session:
        pruned = await NotificationRepository(session).prune(before, limit=PRUNE_BATCH)
        await session.commit()
    return pruned
