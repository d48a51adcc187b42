"""A signed webhook: POST the event as JSON with ``X-Dbkeep-Signature: sha256=<hex HMAC>``.

The signature is the HMAC-SHA256 of the exact body bytes with the channel's secret. Redirects
are not followed (a 3xx is a failed attempt), so a delivery never goes to another host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar
from urllib.parse import urlsplit

from app import __version__
from app.notifications.channels.base import (
    Channel,
    ChannelConfigError,
    ChannelContext,
    DeliveryError,
    Message,
)

SIGNATURE_HEADER = "X-Dbkeep-Signature"
MIN_SECRET = 16


def signature(secret: str, body: bytes) -> str:
    """The header's value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()


class WebhookChannel(Channel):
    kind: ClassVar[str] = "webhook"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret"})

    @classmethod
    def check_config(cls, config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
        url = config.get("url")
        if not isinstance(url, str) or len(url) > 2000:
            raise ChannelConfigError("config.url", "give the URL to POST to")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ChannelConfigError("config.url", "must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise ChannelConfigError(
                "config.url", "must not hold credentials: the secret signs each request"
            )
        if "secret" in secrets and len(secrets["secret"]) < MIN_SECRET:
            raise ChannelConfigError("config.secret", f"at least {MIN_SECRET} characters")
        unknown = set(config) - {"url"}
        if unknown:
            raise ChannelConfigError("config", f"unknown field(s): {', '.join(sorted(unknown))}")
        return {"url": url}

    async def send(self, message: Message, context: ChannelContext) -> None:
        import httpx  # here: only a send needs it

        body = encode_body(message.body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"dbkeep/{__version__}",
            "X-Dbkeep-Event": message.event,
            SIGNATURE_HEADER: signature(self.secrets["secret"].reveal(), body),
        }
        host = urlsplit(self.config["url"]).netloc
        try:
            async with httpx.AsyncClient(
                follow_redirects=False, timeout=context.timeout_seconds, trust_env=False
            ) as client:
                response = await client.post(self.config["url"], content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(
                f"{host} did not answer within {context.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"could not reach {host}: {type(exc).__name__}") from None
        if 200 <= response.status_code < 300:
            return
        if 300 <= response.status_code < 400:
            raise DeliveryError(
                f"{host} answered {response.status_code} (a redirect, not followed)",
                permanent=True,
            )
        retry = response.status_code >= 500 or response.status_code in {408, 425, 429}
        raise DeliveryError(f"{host} answered {response.status_code}", permanent=not retry)
