"""``source_health_state``: each source's last evaluated health, so a change of status is seen
once (``health.changed``) rather than on every evaluation (migration 0015)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.types import BigIntId


class SourceHealthState(Base):
    __tablename__ = "source_health_state"

    source_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))
    # [{"code", "severity", "message", "database"}], as the API shows them.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # When the status last changed, and when it was last evaluated.
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
