"""dbkeep's own age identities: made once, rotated for new backups, handed out as a recovery kit.

The newest identity not retired encrypts new backups (with each source's extra recipients);
every identity ever made decrypts, so rotation never makes an old backup unreadable. The
secret halves are Fernet-encrypted at rest with DBKEEP_ENCRYPTION_KEY (``key:rotate`` rewraps
them like every other credential).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.auth.models import User
from app.auth.passwords import verify_password_async
from app.auth.throttle import LoginThrottle, Refused
from app.config import Settings
from app.db import Database, utcnow
from app.encryption.models import EncryptionIdentity
from app.encryption.repository import IdentityRepository
from app.encryption.schemas import EncryptionSettings
from app.errors import Conflict, Forbidden, TooManyRequests, ValidationFailed
from app.kit.keyring import DecryptionError
from app.kit.secret import Secret
from app.pipeline.crypto import generate_identity
from app.sources.models import Source

log = structlog.get_logger("dbkeep.encryption")

MAX_PASSWORD_LENGTH = 1024
PASSWORD_HEADER = "X-Dbkeep-Password"  # noqa: S105 - a header name, not a password


def recipients_of(source: Source | None, own_public_key: str) -> list[str] | None:
    """Who a new backup of ``source`` is encrypted to: dbkeep's key plus the source's
    recipients, or None when the source does not encrypt."""
    if source is None:
        return None
    settings = EncryptionSettings.from_stored(source.encryption)
    if not settings.enabled:
        return None
    return [own_public_key, *(r for r in settings.recipients if r != own_public_key)]


def recovery_kit_text(identities: Sequence[EncryptionIdentity], *, now: datetime) -> str:
    """An age identity file (comments + one ``AGE-SECRET-KEY-1…`` line per identity)."""
    lines = [
        "# dbkeep recovery kit: the age identities (X25519 private keys) that decrypt dbkeep's",
        "# encrypted backups. Anyone holding this file can read every encrypted backup:",
        "# keep it offline (a password manager, a safe), never next to the backups.",
        f"# Written {now:%Y-%m-%d %H:%M:%S} UTC.",
        "#",
        "# Restore a backup with no dbkeep at all (age 1.1+ and zstd, or gzip -d for .gz):",
        "#   age -d -i dbkeep-identity.txt FILE | zstd -d > dump.sql",
        "#   mariadb DATABASE < dump.sql        (or: psql DATABASE < dump.sql)",
        "#",
        "# Keys, newest first; the first encrypts new backups, all of them decrypt.",
    ]
    for identity in identities:
        state = (
            "current" if identity.retired_at is None else f"retired {identity.retired_at:%Y-%m-%d}"
        )
        lines.append(f"# created: {identity.created_at:%Y-%m-%d %H:%M:%S} UTC ({state})")
        lines.append(f"# public key: {identity.public_key}")
        lines.append(identity.secret_key.reveal())
    return "\n".join(lines) + "\n"


class EncryptionService:
    def __init__(self, session: AsyncSession, *, settings: Settings | None = None) -> None:
        self.session = session
        self.settings = settings
        self.identities = IdentityRepository(session)

    async def current_identity(self) -> EncryptionIdentity:
        """The identity that encrypts new backups, made (and committed) the first time."""
        current = await self.identities.current()
        if current is not None:
            return current
        secret, public = generate_identity()
        self.identities.add(EncryptionIdentity(public_key=public, secret_key=Secret(secret)))
        try:
            await self.session.commit()
        except IntegrityError:  # pragma: no cover - a 1-in-2^256 clash of fresh keys
            await self.session.rollback()
        log.info("encryption.identity_created", public_key=public)
        # Two processes making one at once each commit theirs: the newest wins, both decrypt.
        made = await self.identities.current()
        assert made is not None
        return made

    async def recipients_for(self, source: Source | None) -> list[str] | None:
        """The public keys a new backup of ``source`` is encrypted to (None: not encrypted)."""
        if source is None or not EncryptionSettings.from_stored(source.encryption).enabled:
            return None
        current = await self.current_identity()
        return recipients_of(source, current.public_key)

    async def decryption_keys(self) -> list[str]:
        """Every identity dbkeep holds, newest first (``AGE-SECRET-KEY-1…``)."""
        return [identity.secret_key.reveal() for identity in await self.identities.all()]

    async def rotate(self, *, actor: Actor) -> EncryptionIdentity:
        """Retire the current identity and make a new one for new backups; old ones stay."""
        now = utcnow()
        await self.identities.retire_all(at=now)
        secret, public = generate_identity()
        identity = EncryptionIdentity(public_key=public, secret_key=Secret(secret), created_at=now)
        self.identities.add(identity)
        await self.session.flush()
        record_event(
            self.session,
            actor=actor,
            action="encryption.rotate",
            target_type="encryption_identity",
            target_id=identity.id,
            details={"public_key": public},
        )
        await self.session.commit()
        log.info("encryption.identity_rotated", public_key=public)
        return identity

    async def recovery_kit(self, *, actor: Actor) -> str:
        """The identity file with instructions (audited). The caller proved who it is."""
        await self.current_identity()
        identities = await self.identities.all()
        record_event(
            self.session,
            actor=actor,
            action="encryption.recovery_kit",
            target_type="encryption_identity",
            details={"public_keys": [identity.public_key for identity in identities]},
        )
        await self.session.commit()
        log.warning("encryption.recovery_kit_read", actor=actor.name)
        return recovery_kit_text(identities, now=utcnow())

    async def recovery_kit_for(self, user: User, password: str | None, *, actor: Actor) -> str:
        """``recovery_kit`` for a user who re-entered their password (throttled like a login)."""
        if not password:
            raise ValidationFailed(
                f"Re-enter your password (the {PASSWORD_HEADER} header) to read the recovery kit.",
                errors={PASSWORD_HEADER: ["required"]},
            )
        assert self.settings is not None
        throttle = LoginThrottle(self.session, self.settings)
        counted = await throttle.count(user.email, actor.client_ip)
        if isinstance(counted, Refused):
            raise TooManyRequests(
                "Too many wrong passwords; try again later.", retry_after=counted.retry_after
            )
        ok, _ = await verify_password_async(password[:MAX_PASSWORD_LENGTH], user.password_hash)
        if not ok:
            record_event(
                self.session,
                actor=actor,
                action="encryption.recovery_kit_refused",
                target_type="user",
                target_id=user.id,
            )
            await self.session.commit()
            raise Forbidden("The password is wrong; the recovery kit was not shown.")
        await throttle.succeeded(counted)
        return await self.recovery_kit(actor=actor)


async def recipients_for_source(database: Database, source_id: int | None) -> list[str] | None:
    """Who a new backup of the source ``source_id`` is encrypted to (None: it isn't)."""
    if source_id is None:
        return None
    async with database.sessionmaker() as session:
        source = await session.get(Source, source_id)
        try:
            return await EncryptionService(session).recipients_for(source)
        except DecryptionError as exc:  # the identity is under a key no longer configured
            raise Conflict(f"dbkeep's age identity could not be read: {exc}.") from None


async def keys_for_backup(database: Database, *, encrypted: bool) -> list[str] | None:
    """The identities that may open a backup's file (None: the file is not encrypted)."""
    if not encrypted:
        return None
    async with database.sessionmaker() as session:
        try:
            keys = await EncryptionService(session).decryption_keys()
        except DecryptionError as exc:
            raise Conflict(f"dbkeep's age identities could not be read: {exc}.") from None
    if not keys:
        raise Conflict(
            "The backup is encrypted but dbkeep holds no age identity: import the recovery "
            "kit's key, or decrypt the file with `age -d -i KEY FILE`."
        )
    return keys
