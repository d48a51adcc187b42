"""The ``notification_channels`` and ``notification_deliveries`` tables.

A channel's secrets (a webhook's signing secret, an Apprise URL) live in one encrypted column,
as JSON, apart from the plain ``config`` the API returns. A delivery is one event for one
channel: its state, its next try and the log of every attempt are in the row, so a worker that
restarts finds what is still to send.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.models import NEVER_REUSE_IDS
from app.db import Base, UTCDateTime, utcnow
from app.kit.encryption import EncryptedSecret
from app.kit.secret import Secret
from app.types import BigIntId


class NotificationEvent(StrEnum):
    backup_failed = "backup.failed"
    backup_completed = "backup.completed"
    backup_degraded = "backup.degraded"
    restore_finished = "restore.finished"
    verification_failed = "verification.failed"
    health_changed = "health.changed"


# A delivery made by "send a test" (never subscribed to, never retried).
TEST_EVENT = "test"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class NotificationChannel(Base):
    __tablename__ = "notification_channels"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # What the API shows: e.g. {"to": [...]} or {"url": "https://..."}.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Write-only fields as a JSON object, encrypted at rest (DBKEEP_ENCRYPTION_KEY).
    secrets: Mapped[Secret | None] = mapped_column(EncryptedSecret())
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_channel", "channel_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Every attempt: [{"at", "ok", "error", "duration_ms"}], oldest first.
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
