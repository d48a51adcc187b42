"""Channel kinds, by the ``kind`` a channel row names."""

from __future__ import annotations

from app.notifications.channels.apprise import AppriseChannel
from app.notifications.channels.base import Channel
from app.notifications.channels.email import EmailChannel
from app.notifications.channels.webhook import WebhookChannel

CHANNEL_KINDS: dict[str, type[Channel]] = {
    channel.kind: channel for channel in (EmailChannel, WebhookChannel, AppriseChannel)
}


def channel_class(kind: str) -> type[Channel]:
    """The class for ``kind``; ``KeyError`` for an unknown one."""
    return CHANNEL_KINDS[kind]


__all__ = ["CHANNEL_KINDS", "Channel", "channel_class"]
