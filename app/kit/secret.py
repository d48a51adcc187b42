"""``Secret``: a decrypted credential that never shows in ``repr``, ``str``, f-strings or logs."""

from __future__ import annotations

import hmac
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


class Secret:
    """Holds a credential (a source URL, a password, an S3 secret); only ``reveal()`` returns it.

    ``repr``/``str``/``format`` print ``***``, so a ``Secret`` that reaches a log line, an
    exception message or a dataclass ``repr`` leaks nothing. Pickling is refused: a pickled job
    argument would carry the plaintext into Redis (jobs take ids and reload their state).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The plaintext: call it only where the credential is used (a connection, a file 0600)."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time: equality is how the ORM notices a changed value.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled: pass the id of the row that holds it")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def masked_url(url: str | Secret) -> str:
    """The URL with its password (if any) replaced by ``***``: what a response may show."""
    text = url.reveal() if isinstance(url, Secret) else url
    parts = urlsplit(text)
    # Split the netloc by hand: ``SplitResult.port`` raises on a bad port, and the mask must
    # work on any text a user typed.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return text
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))
