"""All SQL on ``encryption_identities``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.encryption.models import EncryptionIdentity


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> EncryptionIdentity | None:
        """The newest identity not retired (it encrypts new backups)."""
        return await self.session.scalar(
            select(EncryptionIdentity)
            .where(EncryptionIdentity.retired_at.is_(None))
            .order_by(EncryptionIdentity.id.desc())
            .limit(1)
        )

    async def all(self) -> list[EncryptionIdentity]:
        """Every identity, newest first (each may have encrypted some backup)."""
        rows = await self.session.scalars(
            select(EncryptionIdentity).order_by(EncryptionIdentity.id.desc())
        )
        return list(rows)

    def add(self, identity: EncryptionIdentity) -> None:
        self.session.add(identity)

    async def retire_all(self, *, at: datetime) -> None:
        await self.session.execute(
            update(EncryptionIdentity)
            .where(EncryptionIdentity.retired_at.is_(None))
            .values(retired_at=at)
        )
