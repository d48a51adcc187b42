"""The ``encryption`` field of a source: ``{"enabled": bool, "recipients": ["age1…"]}``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.pipeline.crypto import RecipientInvalid, parse_recipient

MAX_RECIPIENTS = 20


def _recipient(value: str) -> str:
    try:
        parse_recipient(value)
    except RecipientInvalid as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


AgeRecipient = Annotated[
    str,
    Field(
        max_length=100, examples=["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
    ),
    AfterValidator(_recipient),
]


class EncryptionSettings(BaseModel):
    """Each backup of the source is encrypted (age) to dbkeep's own key plus ``recipients``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = False
    recipients: list[AgeRecipient] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Extra X25519 age public keys (age1…, as `age-keygen` prints them) that "
        "can decrypt the backups with the standard `age` tool.",
    )

    @field_validator("recipients")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a recipient is listed twice")
        return value

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> EncryptionSettings:
        """A source row's ``encryption`` column (NULL: disabled) as settings."""
        if not stored:
            return cls()
        return cls(
            enabled=bool(stored.get("enabled")), recipients=list(stored.get("recipients", []))
        )

    def stored(self) -> dict[str, Any] | None:
        """What the source row keeps (NULL when disabled with no recipients)."""
        if not self.enabled and not self.recipients:
            return None
        return {"enabled": self.enabled, "recipients": list(self.recipients)}
