"""The key ring that encrypts credentials at rest: Fernet keys, the first encrypts, all decrypt.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) authenticates every value, so a wrong
key is detected, never turned into garbage. ``MultiFernet`` gives rotation: a value written
under an older key still decrypts, and ``rotate`` rewrites it under the first.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

HOW_TO_MAKE_A_KEY = (
    "make one with `dbkeep key:generate` or "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class EncryptionKeyError(ValueError):
    """A key is missing or is not a Fernet key. The message never contains key text."""


class DecryptionError(Exception):
    """No key of the ring opens a stored value. The message never contains the value."""


def generate_key() -> str:
    """A new random key, as ``DBKEEP_ENCRYPTION_KEY`` takes it."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str, *, source: str) -> list[str]:
    """``"k1,k2"`` as a list of Fernet keys; ``source`` names where they came from in errors."""
    keys = [item.strip() for item in text.split(",") if item.strip()]
    if not keys:
        raise EncryptionKeyError(f"{source} holds no key: {HOW_TO_MAKE_A_KEY}")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, binascii.Error):
            which = f"key {position} of {len(keys)}" if len(keys) > 1 else "the key"
            raise EncryptionKeyError(
                f"{source}: {which} is not a Fernet key (44 characters of url-safe base64 "
                f"encoding 32 bytes); {HOW_TO_MAKE_A_KEY}"
            ) from None
    return keys


class KeyRing:
    """Encrypts with the first key, decrypts with any; holds no plaintext but the keys."""

    __slots__ = ("_current", "_ring", "key_count")

    def __init__(self, keys: Sequence[str], *, source: str = "the encryption key") -> None:
        keys = parse_keys(",".join(keys), source=source)
        fernets = [Fernet(key) for key in keys]
        self._current = fernets[0]
        self._ring = MultiFernet(fernets)
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"KeyRing(<{self.key_count} key{'s' if self.key_count != 1 else ''}>)"

    def encrypt(self, plaintext: str) -> str:
        return self._ring.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._ring.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise self._cannot_decrypt() from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already encrypted with the first key (rotation skips it)."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the first key (``DecryptionError`` if no key opens it)."""
        try:
            return self._ring.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise self._cannot_decrypt() from None

    def _cannot_decrypt(self) -> DecryptionError:
        return DecryptionError(
            f"a stored credential could not be decrypted with any of the {self.key_count} "
            "configured encryption key(s) (DBKEEP_ENCRYPTION_KEY): it was encrypted with a key "
            "that is no longer listed, or the stored value is damaged"
        )
