"""``encryption_identities``: dbkeep's own age X25519 key pairs, the secret half encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.kit.encryption import EncryptedSecret
from app.kit.secret import Secret
from app.types import BigIntId


class EncryptionIdentity(Base):
    """One X25519 identity. The newest one not retired encrypts new backups; every one, retired
    or not, stays to decrypt the backups made with it (rotation never deletes a key)."""

    __tablename__ = "encryption_identities"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    public_key: Mapped[str] = mapped_column(String(100), unique=True)
    # ``AGE-SECRET-KEY-1…``, Fernet-encrypted with DBKEEP_ENCRYPTION_KEY (key:rotate rewraps it).
    secret_key: Mapped[Secret] = mapped_column(EncryptedSecret())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
