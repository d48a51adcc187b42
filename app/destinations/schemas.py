"""Request and response bodies of the destinations API. Secret config fields are write-only:
accepted, stored encrypted, never returned (``has_secret`` says one is set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class LocalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    path: str = Field(min_length=1, max_length=1024, pattern=r"^/", examples=["/var/backups/db"])


class S3Config(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    endpoint_url: str | None = Field(default=None, max_length=1024, pattern=r"^https?://")
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(default="", max_length=512)
    region: str | None = Field(default=None, max_length=64)
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: str | None = Field(
        default=None, max_length=256, description="Write-only: stored encrypted, never returned."
    )
    force_path_style: bool = False
    storage_class: str | None = Field(default=None, max_length=64)


class DestinationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=NAME_PATTERN, examples=["offsite"])
    kind: Literal["local", "s3"]
    config: dict[str, Any] = Field(
        description='local: {"path"}; s3: {"endpoint_url", "bucket", "prefix", "region", '
        '"access_key_id", "secret_access_key", "force_path_style", "storage_class"}.'
    )


class DestinationUpdate(BaseModel):
    """Only the fields sent change; a secret not sent again is kept."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    config: dict[str, Any] | None = None


class DestinationRead(BaseModel):
    id: int
    name: str
    kind: str
    config: dict[str, Any] = Field(description="Without the write-only fields.")
    has_secret: bool = Field(description="A write-only secret is stored.")
    from_environment: bool = Field(description="The bootstrap `local` (DBKEEP_BACKUP_DIR).")
    objects_stored: int
    bytes_stored: int
    free_bytes: int | None = Field(description="Free space where the backend can tell.")
    created_at: datetime
    updated_at: datetime


class ProbeStep(BaseModel):
    name: Annotated[str, Field(examples=["write"])]
    ok: bool
    message: str


class DestinationTest(BaseModel):
    ok: bool
    message: str
    steps: list[ProbeStep]
    free_bytes: int | None


class CopyRead(BaseModel):
    destination_id: int
    destination_name: str
    status: str = Field(examples=["stored"])
    size: int | None
    checksum_sha256: str | None
    verified_at: datetime | None
    error_message: str | None
