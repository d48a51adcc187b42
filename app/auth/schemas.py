"""Request and response bodies of the auth API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.auth.models import Role
from app.auth.passwords import MAX_PASSWORD_LENGTH
from app.auth.service import MAX_EMAIL_LENGTH


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"email": "admin@example.com", "password": "s3cret-pass"}]},
    )

    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1])
    email: str = Field(examples=["admin@example.com"])
    role: Role
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime


class LoginData(BaseModel):
    user: UserRead
    csrf_token: str = Field(
        description="Send it back as the X-CSRF-Token header on POST, PUT, PATCH and DELETE "
        "(it is also in the readable csrf_token cookie)."
    )
    expires_at: datetime


class MeData(BaseModel):
    user: UserRead
    auth: str = Field(description="How the request was authenticated.", examples=["session"])
