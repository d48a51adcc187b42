"""The notification API's bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

ChannelKindName = Literal["email", "webhook", "apprise"]
EventName = Literal[
    "backup.failed",
    "backup.completed",
    "backup.degraded",
    "restore.finished",
    "verification.failed",
    "health.changed",
]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _events(value: list[EventName] | None) -> list[EventName] | None:
    if value is None:
        return None
    return [event for event in get_args(EventName) if event in value]  # contract order, once


def _default_events() -> list[EventName]:
    return ["backup.failed"]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=NAME_PATTERN, examples=["ops-mail"])
    kind: ChannelKindName
    config: dict[str, Any] = Field(
        default_factory=dict,
        description='email {"to": [addresses]}; webhook {"url", "secret"} (the secret is '
        'write-only, 16+ characters); apprise {"url"} (the Apprise URL, write-only).',
        examples=[{"to": ["ops@example.com"]}],
    )
    events: list[EventName] = Field(default_factory=_default_events, max_length=20)
    enabled: bool = True

    _check_events = field_validator("events")(_events)


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    config: dict[str, Any] | None = Field(
        default=None,
        description="Replaces the plain fields; a secret field left out keeps its stored value.",
    )
    events: list[EventName] | None = Field(default=None, max_length=20)
    enabled: bool | None = None

    _check_events = field_validator("events")(_events)


class ChannelRead(BaseModel):
    id: int
    name: str
    kind: ChannelKindName
    config: dict[str, Any] = Field(description="The plain fields; secrets are never returned.")
    secrets_set: list[str] = Field(description="Which write-only fields hold a value.")
    events: list[EventName]
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
