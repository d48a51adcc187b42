"""Credentials encrypted at rest: the encrypted column types and where their keys come from.

A column declared ``mapped_column(EncryptedString())`` stores Fernet ciphertext and hands back
the plaintext (``EncryptedSecret()``: as a ``Secret``). The key ring is not read at import
time: each value asks a *key provider* for it, by default the ring that start-up installed from
the settings (``install_key_ring``), so tests and processes with other settings pass their own.

The columns of these types in a ``MetaData`` are the registry that key rotation walks
(``encrypted_columns``): declaring a column with the type is all it takes to have it rotated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Column, MetaData, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from app.kit.keyring import KeyRing
from app.kit.secret import Secret

KeyProvider = Callable[[], KeyRing]
_T = TypeVar("_T")


class EncryptionNotConfigured(RuntimeError):
    """A credential was read or written before start-up installed the key ring."""


_installed: KeyRing | None = None


def install_key_ring(ring: KeyRing | None) -> None:
    """Make ``ring`` the one ``EncryptedString`` columns use by default (``None``: none)."""
    global _installed
    _installed = ring


def installed_key_ring() -> KeyRing:
    """The default key provider: the ring installed at start-up."""
    if _installed is None:
        raise EncryptionNotConfigured(
            "the encryption key ring is not set up: the process must call "
            "app.keys.configure_encryption(settings) at start-up"
        )
    return _installed


class EncryptedType(TypeDecorator[_T]):
    """A value stored as Fernet ciphertext (TEXT); reads give the plaintext back.

    The ciphertext differs on every write (random IV), so such a column can't be searched or
    made unique; keep a plaintext identifier (a name) next to it.
    """

    impl = Text
    cache_ok = True

    def __init__(self, key_provider: KeyProvider = installed_key_ring) -> None:
        super().__init__()
        self.key_provider = key_provider

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            # Not the value in the message: it may be the credential in another shape.
            kind = type(value).__name__
            raise TypeError(f"an encrypted column takes a str or Secret, not {kind}")
        return self.key_provider().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> _T | None:
        if value is None:
            return None
        return self.from_plaintext(self.key_provider().decrypt(value))

    def from_plaintext(self, plaintext: str) -> _T:
        raise NotImplementedError


class EncryptedString(EncryptedType[str]):
    """An encrypted column read as ``str``."""

    cache_ok = True

    def from_plaintext(self, plaintext: str) -> str:
        return plaintext


class EncryptedSecret(EncryptedType[Secret]):
    """An encrypted column read as ``Secret``, for values that must never be printed by
    accident (source URLs, passwords, S3 secret keys)."""

    cache_ok = True

    def from_plaintext(self, plaintext: str) -> Secret:
        return Secret(plaintext)


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column[Any]

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def encrypted_columns(metadata: MetaData) -> list[EncryptedColumn]:
    """Every column of an encrypted type in ``metadata``, in table dependency order."""
    return [
        EncryptedColumn(table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedType)
    ]
