"""The notification API's bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.notifications.models import NotificationEvent

ChannelKindName = Literal["email", "webhook", "apprise"]
EVENTS = [event.value for event in NotificationEvent]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [event for event in value if event not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event(s): {', '.join(unknown[:5])}; use {', '.join(EVENTS)}")
    return [event for event in EVENTS if event in value]  # contract order, no duplicates


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, examples=["ops-mail"])
    kind: ChannelKindName
    config: dict[str, Any] = Field(
        default_factory=dict,
        description='email {"to": [addresses]}; webhook {"url", "secret"} (the secret is '
        'write-only, 16+ characters); apprise {"url"} (the Apprise URL, write-only).',
        examples=[{"to": ["ops@example.com"]}],
    )
    events: list[str] = Field(default_factory=lambda: ["backup.failed"], max_length=20)
    enabled: bool = True

    _check_events = field_validator("events")(_events)


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    config: dict[str, Any] | None = Field(
        default=None,
        description="Replaces the plain fields; a secret field left out keeps its stored value.",
    )
    events: list[str] | None = Field(default=None, max_length=20)
    enabled: bool | None = None

    _check_events = field_validator("events")(_events)


class ChannelRead(BaseModel):
    id: int
    name: str
    kind: ChannelKindName
    config: dict[str, Any] = Field(description="The plain fields; secrets are never returned.")
    secrets_set: list[str] = Field(description="Which write-only fields hold a value.")
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AttemptRead(BaseModel):
    at: datetime
    ok: bool
    error: str | None = None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: int
    channel_id: int
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    attempt_log: list[AttemptRead]
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


class TestResult(BaseModel):
    delivery_id: int
    ok: bool
    status: Literal["pending", "delivered", "failed"]
    error: str | None
    duration_ms: int
