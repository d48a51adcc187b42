"""One tiny base class per channel kind: check a config, send one message.

Channels know nothing of settings, the ORM or HTTP: what they need (the SMTP server, timeouts)
reaches them in a ``ChannelContext``. A send either returns or raises ``DeliveryError`` with a
one-line reason that names no secret; ``permanent`` says that retrying cannot help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.kit.secret import Secret


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class ChannelConfigError(ValueError):
    """A channel's config is unusable: ``field`` says which part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    use_tls: bool  # smtps:// (TLS from the first byte); smtp:// upgrades with STARTTLS if offered
    username: str | None
    password: Secret | None
    sender: str


@dataclass(frozen=True)
class ChannelContext:
    smtp: SmtpServer | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Message:
    """One notification, in every form a channel may send."""

    event: str
    subject: str
    text: str  # plain text, for email and chat services
    body: dict[str, Any] = field(default_factory=dict)  # the JSON document a webhook posts


class Channel(ABC):
    kind: ClassVar[str]
    # Config keys that are secrets: stored encrypted, never returned.
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: dict[str, Any], secrets: dict[str, Secret]) -> None:
        self.config = config
        self.secrets = secrets

    @classmethod
    @abstractmethod
    def check_config(cls, config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
        """The plain config, normalised; ``ChannelConfigError`` for a bad one. ``secrets``
        holds the secret fields given (on an update, only those being changed)."""

    @classmethod
    def required_secrets(cls) -> frozenset[str]:
        return cls.secret_fields

    @abstractmethod
    async def send(self, message: Message, context: ChannelContext) -> None:
        """Deliver ``message`` or raise ``DeliveryError``."""
