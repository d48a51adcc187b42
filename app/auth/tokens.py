"""Random secrets for sessions, CSRF and API tokens; only their SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_TOKEN_PREFIX = "dbk_"  # noqa: S105 (a label, not a secret)
# How much of an API token is kept in clear to tell tokens apart in listings.
API_TOKEN_DISPLAY_LENGTH = 12
# Longest credential we bother hashing; anything longer is not one of ours.
MAX_CREDENTIAL_LENGTH = 256


def new_secret() -> str:
    """A URL-safe random string with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A new bearer token, recognisable by its ``dbk_`` prefix."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    """The lookup key stored for a session cookie or an API token."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
