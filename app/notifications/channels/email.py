"""Email over SMTP (aiosmtplib): the server is DBKEEP_SMTP_URL, the recipients the channel's."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from app.notifications.channels.base import (
    Channel,
    ChannelConfigError,
    ChannelContext,
    DeliveryError,
    Message,
)

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+|[^@\s<>,;\"]+@localhost")
MAX_RECIPIENTS = 50


class EmailChannel(Channel):
    kind: ClassVar[str] = "email"

    @classmethod
    def check_config(cls, config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
        to = config.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to:
            raise ChannelConfigError("config.to", "give at least one e-mail address in 'to'")
        if len(to) > MAX_RECIPIENTS:
            raise ChannelConfigError("config.to", f"at most {MAX_RECIPIENTS} addresses")
        clean: list[str] = []
        for address in to:
            if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
                raise ChannelConfigError("config.to", "each entry must be an e-mail address")
            if address.strip() not in clean:
                clean.append(address.strip())
        unknown = set(config) - {"to"}
        if unknown:
            raise ChannelConfigError("config", f"unknown field(s): {', '.join(sorted(unknown))}")
        return {"to": clean}

    async def send(self, message: Message, context: ChannelContext) -> None:
        import aiosmtplib  # here: it takes ~0.14 s to load, and only a send needs it

        smtp = context.smtp
        if smtp is None:
            raise DeliveryError("DBKEEP_SMTP_URL is not set: no mail server to send through")
        mail = EmailMessage()
        mail["From"] = smtp.sender
        mail["To"] = ", ".join(self.config["to"])
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain="dbkeep")
        mail["X-Dbkeep-Event"] = message.event
        mail.set_content(message.text)
        try:
            await aiosmtplib.send(
                mail,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.reveal() if smtp.password else None,
                use_tls=smtp.use_tls,
                start_tls=None if not smtp.use_tls else False,
                timeout=context.timeout_seconds,
            )
        except aiosmtplib.SMTPAuthenticationError:
            raise DeliveryError(
                f"the mail server {smtp.host}:{smtp.port} refused the login in DBKEEP_SMTP_URL"
            ) from None
        except aiosmtplib.SMTPRecipientsRefused:
            raise DeliveryError("the mail server refused the recipients", permanent=True) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"the mail server answered {exc.code}: {str(exc.message)[:200]}",
                permanent=500 <= exc.code < 600 and exc.code != 554,
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(
                f"could not send through {smtp.host}:{smtp.port}: {type(exc).__name__}"
            ) from None
