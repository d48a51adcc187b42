"""Request and response bodies of the sources API. A source's URL is never returned whole: its
password shows as ``***``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.encryption.schemas import EncryptionSettings
from app.engines.base import (
    DATABASE_NAME_PATTERN,
    ConnectionReport,
    ToolStatus,
    validate_database_name,
)
from app.sources.cron import CronError, parse_cron, resolve_timezone
from app.sources.health_schemas import SourceHealthRead
from app.sources.models import ALL_DATABASES, SourceEngine
from app.sources.retention import RetentionRule

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_DATABASES = 1000
MAX_URL_LENGTH = 2048


def _database_name(value: str) -> str:
    if value == ALL_DATABASES:
        return value
    try:
        return validate_database_name(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _cron(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    try:
        parse_cron(value)
    except CronError as exc:
        raise ValueError(str(exc)) from None
    return value


def _timezone(value: str) -> str:
    try:
        resolve_timezone(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


# The pattern is published for clients; the validator checks it with a message saying the rule.
DatabaseName = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": rf"^\*$|{DATABASE_NAME_PATTERN}"}),
    AfterValidator(_database_name),
]
DestinationRefs = Annotated[
    list[Annotated[int, Field(ge=1)] | Annotated[str, Field(min_length=1, max_length=63)]],
    Field(min_length=1, max_length=20),
]


def _bootstrap_destinations() -> list[int | str]:
    return ["local"]


Cron = Annotated[str | None, Field(max_length=120), AfterValidator(_cron)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_timezone)]


class RetentionIn(BaseModel):
    """The original's ages, and GFS counts (restic ``forget``) when any ``keep_*`` is set."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Numbers of days (fractions allowed, as DBKEEP_TRASH_AFTER_DAYS takes them); JSON numbers.
    trash_after_days: float = Field(default=15, gt=0, le=36_500)
    purge_after_days: float = Field(default=7, gt=0, le=36_500)
    keep_last: int | None = Field(default=None, ge=1, le=100_000)
    keep_daily: int | None = Field(default=None, ge=1, le=100_000)
    keep_weekly: int | None = Field(default=None, ge=1, le=100_000)
    keep_monthly: int | None = Field(default=None, ge=1, le=100_000)
    keep_yearly: int | None = Field(default=None, ge=1, le=100_000)

    def rule(self) -> RetentionRule:
        return RetentionRule.from_mapping(self.model_dump())


def _databases_shape(value: list[str]) -> list[str]:
    if ALL_DATABASES in value and value != [ALL_DATABASES]:
        raise ValueError('"*" (every database on the server) stands alone: ["*"]')
    if len(set(value)) != len(value):
        raise ValueError("a database is named twice")
    return value


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=NAME_PATTERN, examples=["shop"])
    engine: SourceEngine = Field(default=SourceEngine.mysql, strict=False)  # JSON has no enums
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="mysql://user:password@host:3306/db (?socket=/path); the password is "
        "stored encrypted and never returned.",
        examples=["mysql://backup:secret@127.0.0.1:3306/shop"],
    )
    databases: (
        Annotated[list[DatabaseName], Field(min_length=1, max_length=MAX_DATABASES)] | None
    ) = Field(
        default=None,
        description='Names, or ["*"] for every non-system database; default: the URL\'s.',
    )
    exclude: Annotated[list[DatabaseName], Field(max_length=MAX_DATABASES)] = Field(
        default_factory=list
    )
    schedule: Cron = Field(default=None, description="5-field cron, or null: manual only.")
    timezone: TimeZone = "UTC"
    retention: RetentionIn = Field(default_factory=RetentionIn)
    enabled: bool = True
    encryption: EncryptionSettings = Field(
        default_factory=EncryptionSettings,
        description="Encrypt each backup (age) to dbkeep's key plus these recipients.",
    )
    verify_schedule: Cron = Field(
        default=None, description="5-field cron for test restores (verifications), or null."
    )
    verify_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where test restores may create scratch databases (dbkeep_verify_<id>): a "
        "server URL of the source's engine (mysql://, postgresql://), or for SQLite a "
        "sqlite:///directory/ (null: under dbkeep's var directory); stored encrypted, returned "
        "masked.",
    )
    destination_ids: DestinationRefs = Field(
        default_factory=_bootstrap_destinations,
        description="Destination ids (or names), in order: reads try the first copy first.",
    )

    @field_validator("databases")
    @classmethod
    def _shape(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _databases_shape(value)


class SourceUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    databases: (
        Annotated[list[DatabaseName], Field(min_length=1, max_length=MAX_DATABASES)] | None
    ) = None
    exclude: Annotated[list[DatabaseName], Field(max_length=MAX_DATABASES)] | None = None
    schedule: Cron = None
    timezone: TimeZone | None = None
    retention: RetentionIn | None = None
    enabled: bool | None = None
    encryption: EncryptionSettings | None = None
    verify_schedule: Cron = None
    verify_url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    destination_ids: DestinationRefs | None = None

    @field_validator("databases")
    @classmethod
    def _shape(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _databases_shape(value)


class SourceRead(BaseModel):
    id: int
    name: str
    engine: str
    url: str = Field(description="The URL with its password replaced by ***.")
    databases: list[str]
    exclude: list[str]
    schedule: str | None
    timezone: str
    retention: dict[str, Any]
    enabled: bool
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    verify_schedule: str | None = None
    verify_url: str | None = Field(
        default=None, description="The verify URL with its password replaced by ***, or null."
    )
    destination_ids: list[int] = Field(description="Where its backups are stored, in order.")
    from_environment: bool = Field(
        description="Made from DBKEEP_TARGET_URL (the `default` source): its URL follows it."
    )
    next_run_at: datetime | None = Field(description="The schedule's next slot, or null.")
    last_backup_at: datetime | None
    last_backup_status: str | None
    health: SourceHealthRead = Field(
        description="ok, warning or failing, with the reasons (stale, shrunken, …)."
    )
    created_at: datetime
    updated_at: datetime


class ConnectionTest(BaseModel):
    ok: bool
    message: str
    server_version: str | None
    databases: list[str] = Field(description="The non-system databases the account sees.")
    required_privileges: list[str]
    missing_privileges: list[str]
    dump_tool: str | None
    dump_tool_version: str | None
    client_tool: str | None
    client_tool_version: str | None


def connection_test(report: ConnectionReport, tools: ToolStatus) -> ConnectionTest:
    """What the server said and what the tools here are, as one answer: ``ok`` only when both
    are; the message is the server's problem first, then the tools'."""
    return ConnectionTest(
        ok=report.ok and tools.ok,
        message=report.message if not report.ok or tools.ok else tools.message,
        server_version=report.server_version,
        databases=list(report.databases),
        required_privileges=list(report.required_privileges),
        missing_privileges=list(report.missing_privileges),
        dump_tool=tools.dump_tool,
        dump_tool_version=tools.dump_version,
        client_tool=tools.client_tool,
        client_tool_version=tools.client_version,
    )


class SourceBackupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    database: DatabaseName | None = Field(
        default=None, description="One of the source's databases; default: every one."
    )


class RetentionDecisionRead(BaseModel):
    """One backup's fate under the source's rule now, with every reason."""

    backup_id: int
    database_name: str
    backup_date: datetime
    action: str = Field(description='"keep" or "trash".', examples=["trash"])
    reasons: list[str] = Field(examples=[["not kept by keep-daily 7"]])


class RetentionPreview(BaseModel):
    """Which of the source's backups auto-trash would move to the trash now (``trash``), and
    every decision with its reasons (``decisions``, newest first per database)."""

    source_id: int
    rule: dict[str, Any]
    trash: list[int]
    decisions: list[RetentionDecisionRead]
