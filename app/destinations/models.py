"""The ``destinations`` and ``backup_copies`` tables.

A destination's ``config`` holds what may be shown (a path, an endpoint, a bucket); the fields
that must not (an S3 secret key) live in ``secrets``, a JSON object encrypted at rest with
DBKEEP_ENCRYPTION_KEY (app/kit/encryption.py), never returned.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.models import NEVER_REUSE_IDS
from app.db import Base, UTCDateTime, utcnow
from app.kit.encryption import EncryptedString
from app.storage.registry import BOOTSTRAP_DESTINATION
from app.types import BigIntId

__all__ = ["BOOTSTRAP_DESTINATION", "BackupCopy", "CopyStatus", "Destination", "DestinationKind"]


class DestinationKind(StrEnum):
    local = "local"
    s3 = "s3"


# The config fields of each kind that are write-only (stored encrypted, never returned).
SECRET_FIELDS: dict[str, frozenset[str]] = {
    DestinationKind.local: frozenset(),
    DestinationKind.s3: frozenset({"secret_access_key"}),
}


class CopyStatus(StrEnum):
    pending = "pending"
    uploading = "uploading"
    stored = "stored"
    failed = "failed"
    deleted = "deleted"


class Destination(Base):
    __tablename__ = "destinations"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # JSON of the write-only fields, encrypted at rest; None when the kind has none.
    secrets: Mapped[str | None] = mapped_column(EncryptedString())
    # The bootstrap ``local`` destination: its path follows DBKEEP_BACKUP_DIR.
    from_environment: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BackupCopy(Base):
    """One stored object of a backup on one destination."""

    __tablename__ = "backup_copies"
    __table_args__ = (
        UniqueConstraint("backup_id", "destination_id", name="uq_backup_copies_backup_destination"),
        # Failed copies are few: health finds them without reading every copy.
        Index("ix_backup_copies_status", "status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    backup_id: Mapped[int] = mapped_column(
        BigIntId,
        ForeignKey("database_backups.id", ondelete="CASCADE"),
        index=True,
    )
    destination_id: Mapped[int] = mapped_column(
        BigIntId,
        ForeignKey("destinations.id", ondelete="RESTRICT"),
        index=True,
    )
    position: Mapped[int] = mapped_column(default=0)  # the source's order: reads try it first
    status: Mapped[str] = mapped_column(String(16), default=CopyStatus.pending.value)
    storage_key: Mapped[str] = mapped_column(String(1000))
    size: Mapped[int | None] = mapped_column(BigInteger)
    checksum_sha256: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
