"""Password hashing with argon2 (pwdlib), off the event loop."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_PASSWORD_LENGTH = 8
# Bounded so that a login request can't make the server hash megabytes.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHash((Argon2Hasher(),))


def validate_new_password(password: str) -> None:
    """Raise ``ValueError`` with a readable reason when ``password`` is not acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches; the second item is a new hash when parameters changed."""
    try:
        return _hasher.verify_and_update(password, password_hash)
    except Exception:  # an unreadable stored hash is a mismatch, never a crash
        return False, None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("dbkeep-timing-equaliser")


async def hash_password_async(password: str) -> str:
    """``hash_password`` in a thread: argon2 takes tens of milliseconds of CPU."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(
    password: str, password_hash: str | None
) -> tuple[bool, str | None]:
    """``verify_password`` in a thread; with no hash (unknown user) it spends the same time."""
    if password_hash is None:
        await asyncio.to_thread(verify_password, password, _dummy_hash())
        return False, None
    return await asyncio.to_thread(verify_password, password, password_hash)
