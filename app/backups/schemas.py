"""Request and response bodies of the backup API (never the storage path)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    IntegrityStatus,
    RestorePhase,
    RestoreStatus,
)
from app.destinations.schemas import CopyRead
from app.engines.base import DATABASE_NAME_PATTERN, validate_database_name
from app.http.envelope import DataEnvelope, MessageEnvelope, PageEnvelope

MAX_ID = 2**63 - 1
MAX_BULK_IDS = 100
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10


class BackupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[42])
    filename: str = Field(examples=["shop_2026-01-31_000000_3f9c2a7e.sql.zst"])
    unique_identifier: str = Field(examples=["3f9c2a7e5b8d4c1fa0e6b7d2c9f81a34"])
    file_size: int = Field(description="Stored (compressed) size in bytes.", examples=[1048576])
    status: BackupStatus
    error_message: str | None
    backup_date: datetime
    trashed_at: datetime | None
    completed_at: datetime | None
    created_by: int | None
    created_by_email: str | None = Field(
        default=None, description="E-mail of the user who started it, when a user did."
    )
    created_at: datetime
    updated_at: datetime
    compression: str = Field(examples=["zstd"])
    checksum_sha256: str | None
    duration_ms: int | None
    trigger: BackupTrigger
    status_before_trash: BackupStatus | None
    target_database: str | None
    # Defaults (never used: rows and records always carry them) keep them optional in the
    # dashboard's generated types, like created_by_email.
    source_id: int | None = Field(
        default=None,
        description="The source it was taken from; null once that source was deleted.",
        examples=[1],
    )
    source_name: str | None = Field(default=None, examples=["default"])
    database_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_name", "target_database"),
        description="The database it is a backup of (the same as target_database).",
        examples=["shop"],
    )
    started_at: datetime | None
    bytes_processed: int = Field(description="Uncompressed bytes dumped so far.")
    estimated_bytes: int | None = Field(description="Estimated uncompressed size of the dump.")
    raw_size: int | None = Field(description="Uncompressed size of the finished dump.")
    attempts: int
    cancel_requested_at: datetime | None
    integrity_status: IntegrityStatus | None
    verified_at: datetime | None
    pinned: bool = Field(
        default=False, description="A pinned backup is never trashed or purged by retention."
    )
    encrypted: bool = Field(
        default=False,
        description="The stored file is age-encrypted (age-encryption.org/v1); its checksum "
        "and size are those of the encrypted bytes.",
    )
    cancelled: bool = Field(
        default=False,
        description='True when it ended because a user cancelled it (its status is "failed"); '
        "a cancelled backup is not counted as a failure.",
    )
    manifest: dict[str, Any] | None = Field(
        default=None,
        description='What the dump holds, counted from its stream: {"format", "engine", '
        '"server_version", "tables": [{"name", "rows"}], "objects": {kind: count}}; null '
        "for a backup taken before manifests or by an engine without one.",
    )
    copies: list[CopyRead] = Field(
        default_factory=list,
        description="Its stored objects, one per destination, in the order reads try them.",
    )
    degraded: bool = Field(
        default=False,
        description="Completed, but a copy failed (it can be retried).",
    )

    def with_copies(self, copies: list[CopyRead]) -> BackupRead:
        degraded = self.status is BackupStatus.completed and any(
            copy.status == "failed" for copy in copies
        )
        return self.model_copy(update={"copies": copies, "degraded": degraded})

    @model_validator(mode="before")
    @classmethod
    def _cancelled_from_row(cls, data: Any) -> Any:
        # A row or a list record: ``cancelled`` is whether ``cancelled_at`` is set.
        return _with_cancelled(data)


class RestoreRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[3])
    backup_id: int = Field(examples=[42])
    status: RestoreStatus
    requested_by: int | None
    requested_by_email: str | None = Field(
        default=None, description="E-mail of the user who asked for it, when a user did."
    )
    use_safety_backup: bool
    safety_backup_id: int | None
    target_source_id: int | None = Field(
        default=None,
        description="The source whose server it loads into (null: DBKEEP_TARGET_URL's, for a "
        "backup from before sources, or that source was deleted since).",
    )
    target_database: str | None = Field(description="The database it loads into there.")
    error_message: str | None
    bytes_processed: int
    total_bytes: int | None
    attempts: int
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    created_at: datetime
    updated_at: datetime
    cancel_requested_at: datetime | None = Field(
        default=None, description="When someone asked to cancel it (a running one rolls back)."
    )
    cancelled: bool = Field(
        default=False,
        description="True when it ended because a user cancelled it (status failed or "
        "rolled_back); not a failure.",
    )
    phase: RestorePhase = Field(
        default=RestorePhase.queued,
        description="What it does now: queued, safety_backup (bytes_processed and total_bytes "
        "are the safety backup's; total_bytes null when no estimate), loading (the backup's), "
        "rolling_back (loading the safety backup), finished.",
    )
    keep_existing_objects: bool = Field(
        default=False,
        description="Objects the backup does not have are kept; by default the restore leaves "
        "exactly the backup's database.",
    )

    @model_validator(mode="before")
    @classmethod
    def _cancelled_from_row(cls, data: Any) -> Any:
        return _with_cancelled(data)


def _with_cancelled(data: Any) -> Any:
    """``cancelled`` for a list record (a mapping of columns); rows have it as a property."""
    if isinstance(data, Mapping) and "cancelled" not in data and "cancelled_at" in data:
        return {**data, "cancelled": data["cancelled_at"] is not None}
    return data


class Statistics(BaseModel):
    """The original's eight statistics (sizes in bytes)."""

    total_backups: int
    completed_backups: int
    failed_backups: int = Field(description="Failed backups, not counting cancelled ones.")
    cancelled_backups: int = Field(
        default=0, description="Backups that ended because a user cancelled them."
    )
    trashed_backups: int
    total_size: int
    average_size: int
    latest_backup: BackupRead | None
    oldest_backup: BackupRead | None
    trash_after_days: float = Field(
        description="Completed and failed backups older than this move to the trash.",
        examples=[15],
    )
    purge_after_days: float = Field(
        description="Trash items are deleted for good this long after they were trashed.",
        examples=[7],
    )


def _unique(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def _json_integer(value: Any) -> int:
    # JSON Schema's "integer" includes 3.0; strings and booleans are not ids, whatever they say.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer, not a string or a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


BackupIdItem = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_json_integer)]
# The pattern is published for clients; the validator checks it with a message saying the rule.
DatabaseName = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": DATABASE_NAME_PATTERN}),
    AfterValidator(validate_database_name),
]


class BulkRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"backup_ids": [1, 2, 3]}]}
    )

    backup_ids: Annotated[
        list[BackupIdItem],
        Field(
            min_length=1,
            max_length=MAX_BULK_IDS,
            description=f"1 to {MAX_BULK_IDS} positive integer ids; duplicates count once.",
        ),
        AfterValidator(_unique),
    ]


class RestoreRequest(BaseModel):
    # Strict: only JSON true/false are booleans here, never 0, "no", "off", "f" or 0.0.
    model_config = ConfigDict(extra="forbid", strict=True)

    target_source_id: BackupIdItem | None = Field(
        default=None,
        description="The source to restore into, of the backup's engine; default: the source "
        "the backup came from.",
    )
    database: DatabaseName | None = Field(
        default=None,
        description="The database to restore into (created when it doesn't exist); default: "
        "the backup's own on its source, or the target source's only one. Required for a "
        'source of every database (["*"]).',
    )

    use_safety_backup: bool = Field(
        default=True,
        description="Back the target up first so a failed restore can be rolled back.",
    )
    keep_existing_objects: bool = Field(
        default=False,
        strict=True,
        description="Objects the backup does not have are kept; by default the restore leaves "
        "exactly the backup's database (tables, views and routines created after the backup "
        "are dropped; they are in the safety backup).",
    )


class BackupUpdate(BaseModel):
    # Strict: only JSON true/false pin or unpin, never 1, "yes" or "true".
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"pinned": True}]}
    )

    pinned: bool = Field(description="Pin (retention never trashes it) or unpin the backup.")


class BulkItem(BaseModel):
    id: int
    success: bool
    status: int = Field(description="The HTTP status this item would have had on its own.")
    message: str


class BulkResult(BaseModel):
    results: list[BulkItem]
    succeeded: int
    failed: int


class BackupEnvelope(DataEnvelope[BackupRead]):
    pass


class BackupMessageEnvelope(MessageEnvelope[BackupRead]):
    pass


class BackupPage(PageEnvelope[BackupRead]):
    pass


class StatisticsEnvelope(DataEnvelope[Statistics]):
    pass


class RestoreMessageEnvelope(MessageEnvelope[RestoreRead]):
    pass


class RestoreListEnvelope(DataEnvelope[list[RestoreRead]]):
    pass


class BulkEnvelope(MessageEnvelope[BulkResult]):
    pass


class DeletedEnvelope(MessageEnvelope[None]):
    pass
