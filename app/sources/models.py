"""The ``sources`` table: a database server connection and which databases on it to back up."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.models import NEVER_REUSE_IDS
from app.db import Base, UTCDateTime, utcnow
from app.kit.encryption import EncryptedSecret
from app.kit.secret import Secret
from app.types import BigIntId

# The source DBKEEP_TARGET_URL stands for (contract: "the bootstrap source named default").
DEFAULT_SOURCE = "default"
ALL_DATABASES = "*"


class SourceEngine(StrEnum):
    mysql = "mysql"
    postgresql = "postgresql"
    sqlite = "sqlite"


class Source(Base):
    __tablename__ = "sources"
    __table_args__ = NEVER_REUSE_IDS  # an id freed by a delete never names another source

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    engine: Mapped[str] = mapped_column(String(16))
    # Encrypted at rest (DBKEEP_ENCRYPTION_KEY); read back as a Secret that never prints.
    url: Mapped[Secret] = mapped_column(EncryptedSecret())
    # Names, or ["*"]: every non-system database on the server but those in ``exclude``.
    databases: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude: Mapped[list[str]] = mapped_column(JSON, default=list)
    schedule: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    retention: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # {"enabled": bool, "recipients": ["age1…"]}; NULL: not encrypted (app/encryption).
    encryption: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Test restores: when (cron, in ``timezone``), and on which server scratch databases may be
    # created (encrypted like ``url``; never the source's own database).
    verify_schedule: Mapped[str | None] = mapped_column(String(120))
    verify_url: Mapped[Secret | None] = mapped_column(EncryptedSecret())
    # Destination ids in order (reads try the first copy first); [] = the bootstrap ``local``.
    destination_ids: Mapped[list[int] | None] = mapped_column(JSON, default=list)
    # Kept in sync with DBKEEP_TARGET_URL at start-up: its URL is the environment's to change.
    from_environment: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def all_databases(self) -> bool:
        return self.databases == [ALL_DATABASES]
