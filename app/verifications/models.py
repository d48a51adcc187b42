"""The ``backup_verifications`` table: one test restore of a backup and what it found."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.types import BigIntId

# The scratch database of backup N is ``dbkeep_verify_N``; the reconciler drops leftovers by it.
SCRATCH_PREFIX = "dbkeep_verify_"


def scratch_database(backup_id: int) -> str:
    return f"{SCRATCH_PREFIX}{int(backup_id)}"


def verifiable(source: Any) -> bool:
    """Whether a source has somewhere to restore into: its verify_url, or (SQLite) none needed
    (the scratch file goes under dbkeep's var directory)."""
    return source.verify_url is not None or source.engine == "sqlite"


class VerificationStatus(StrEnum):
    pending = "pending"
    running = "running"
    passed = "passed"
    failed = "failed"


class BackupVerification(Base):
    __tablename__ = "backup_verifications"
    __table_args__ = (Index("ix_backup_verifications_status", "status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    backup_id: Mapped[int] = mapped_column(
        ForeignKey("database_backups.id", ondelete="CASCADE"), index=True
    )
    # Kept as the source at the time (a backup's source may be deleted later).
    source_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[VerificationStatus] = mapped_column(
        Enum(VerificationStatus, native_enum=False, length=16, validate_strings=True),
        default=VerificationStatus.pending,
    )
    # [{"name", "expected_rows", "restored_rows"}]
    tables: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_message: Mapped[str | None] = mapped_column(Text)
    # "api", "cli" or "schedule"
    trigger: Mapped[str] = mapped_column(String(16), default="api")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
