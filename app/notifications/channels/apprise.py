"""Apprise URLs (chat services and more): the URL holds the service's token, so it is a secret.

apprise is imported when a channel is checked or used (it takes ~0.3 s to load).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from app.notifications.channels.base import (
    Channel,
    ChannelConfigError,
    ChannelContext,
    DeliveryError,
    Message,
)

if TYPE_CHECKING:
    import apprise


def _apprise_for(url: str) -> apprise.Apprise:
    import apprise

    # Apprise's debug lines print the service's URL path, where tokens live: never below INFO.
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() < logging.INFO:
        apprise_log.setLevel(logging.INFO)
    client = apprise.Apprise()
    if not client.add(url):
        raise ValueError("not an Apprise URL")
    return client


class AppriseChannel(Channel):
    kind: ClassVar[str] = "apprise"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"url"})

    @classmethod
    def check_config(cls, config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
        if "url" in secrets:
            url = secrets["url"]
            if len(url) > 2000:
                raise ChannelConfigError("config.url", "at most 2000 characters")
            try:
                _apprise_for(url)
            except ValueError:
                # Not the URL in the message: it holds the service's token.
                raise ChannelConfigError(
                    "config.url", "Apprise does not know this URL (see its wiki for the forms)"
                ) from None
        if config:
            raise ChannelConfigError("config", f"unknown field(s): {', '.join(sorted(config))}")
        return {}

    async def send(self, message: Message, context: ChannelContext) -> None:
        try:
            client = _apprise_for(self.secrets["url"].reveal())
        except ValueError:
            raise DeliveryError("the stored Apprise URL is not usable", permanent=True) from None
        service = type(client[0]).__name__ if len(client) else "service"
        result = await client.async_notify(body=message.text, title=message.subject)
        if not bool(result):
            raise DeliveryError(f"the Apprise {service} did not accept the notification")
