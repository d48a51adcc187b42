"""The encryption keys of one process: from the settings into the kit (start-up, CLI, worker)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import ENCRYPTION_KEY_VARIABLE, Settings
from app.kit.encryption import install_key_ring
from app.kit.key_rotation import DEFAULT_BATCH_SIZE, ColumnRotation, rotate_encrypted_columns
from app.kit.keyring import KeyRing


def configure_encryption(settings: Settings) -> KeyRing:
    """Build the key ring from the settings (generating the dev key if needed) and install it
    as the one encrypted columns use. Raises ``EncryptionKeyError`` with a clear message."""
    ring = KeyRing(settings.resolved_encryption_keys(), source=ENCRYPTION_KEY_VARIABLE)
    install_key_ring(ring)
    return ring


async def rotate_encryption_keys(
    settings: Settings,
    engine: AsyncEngine,
    *,
    metadata: MetaData | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ColumnRotation]:
    """Re-encrypt every credential of the metadata store with the first configured key.

    ``metadata`` defaults to every model of dbkeep; start-up may call this after
    ``configure_encryption`` (it writes nothing when every value is already current).
    """
    if metadata is None:
        from app.models import Base

        metadata = Base.metadata
    ring = configure_encryption(settings)
    return await rotate_encrypted_columns(engine, metadata, ring, batch_size=batch_size)
