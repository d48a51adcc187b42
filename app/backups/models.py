"""The original's ``database_backups`` table, and restore operations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import Base, UTCDateTime, utcnow
from app.sources.models import Source
from app.types import BigIntId


class BackupStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    in_trash = "in_trash"


class BackupTrigger(StrEnum):
    manual = "manual"
    scheduled = "scheduled"
    cli = "cli"
    pre_restore = "pre_restore"
    # An existing dump uploaded (POST /admin/api/sources/{id}/imports, ``backup:import``).
    upload = "upload"


class RestoreStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    rolled_back = "rolled_back"


class RestorePhase(StrEnum):
    """What a restore is doing now; its bytes and total are those of this phase."""

    queued = "queued"
    safety_backup = "safety_backup"
    loading = "loading"
    rolling_back = "rolling_back"
    finished = "finished"


class IntegrityStatus(StrEnum):
    ok = "ok"
    missing = "missing"
    corrupt = "corrupt"


def _enum(cls: type[StrEnum], length: int = 20) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class SourceLabel(Base):
    """A source's id and name, read-only: what a backup row shows of its source, joined
    without loading (and decrypting) the source's URL."""

    __table__ = Source.__table__
    __mapper_args__ = {"include_properties": ["id", "name"]}

    id: Mapped[int]
    name: Mapped[str]


class DatabaseBackup(Base):
    __tablename__ = "database_backups"
    __table_args__ = (
        Index("ix_database_backups_status", "status"),
        Index("ix_database_backups_backup_date", "backup_date"),
        Index("ix_database_backups_trashed_at", "trashed_at"),
        Index("ix_database_backups_status_backup_date", "status", "backup_date"),
        # Sorting a page by name or size must not sort the whole table.
        Index("ix_database_backups_filename", "filename"),
        Index("ix_database_backups_file_size", "file_size"),
        # One source's backups, newest first, without reading the others'.
        Index("ix_database_backups_source_backup_date", "source_id", "backup_date"),
        # One database's backups (``?database=``), the same way (migration 0011).
        Index("ix_database_backups_database_backup_date", "target_database", "backup_date"),
        # Each source's and database's newest backups by status, for health (migration 0015).
        Index(
            "ix_database_backups_source_db_status_id",
            "source_id",
            "target_database",
            "status",
            "id",
        ),
    )

    # The original's columns
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(255))
    unique_identifier: Mapped[str] = mapped_column(String(32), unique=True)
    # A storage key relative to the backup store's root, never an absolute path.
    path: Mapped[str] = mapped_column(String(512))
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[BackupStatus] = mapped_column(_enum(BackupStatus), default=BackupStatus.pending)
    error_message: Mapped[str | None] = mapped_column(Text)
    backup_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # dbkeep's additions
    compression: Mapped[str] = mapped_column(String(8), default="zstd")
    checksum_sha256: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    trigger: Mapped[BackupTrigger] = mapped_column(
        _enum(BackupTrigger, 16), default=BackupTrigger.manual
    )
    status_before_trash: Mapped[BackupStatus | None] = mapped_column(_enum(BackupStatus))
    target_database: Mapped[str | None] = mapped_column(String(64))
    # The source it was taken from (its database is ``target_database``); NULL once a source
    # deleted with "keep its backups" is gone.
    # BIGINT like the ids it points at (a bare FK column would be INTEGER, and PostgreSQL's
    # driver casts its parameters to int4).
    source_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("sources.id", ondelete="SET NULL")
    )
    dump_tool_version: Mapped[str | None] = mapped_column(String(255))
    server_version: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Progress: uncompressed bytes dumped so far, and an estimate of the total.
    bytes_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_bytes: Mapped[int | None] = mapped_column(BigInteger)
    raw_size: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # One backup per cron slot however many workers run the schedule.
    # "<source id>:<database>:<slot's UTC instant>", unique: one backup per source, database
    # and slot however many workers run the schedule.
    # SQLite enforces no length, and changing a column's declared type there would rebuild the
    # table (dropping its triggers): it keeps the 40 it was made with.
    schedule_slot: Mapped[str | None] = mapped_column(
        String(160).with_variant(String(40), "sqlite"), unique=True
    )
    integrity_status: Mapped[IntegrityStatus | None] = mapped_column(_enum(IntegrityStatus, 16))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set in the same update that ends a backup a user cancelled (its status is "failed", as the
    # original's): a cancel is the user's choice, never counted as a failure.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Never trashed by retention, whatever its age or rule (``PATCH {"pinned": true}``).
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # Joined when rows are read, so a page names who started each backup in the same query.
    creator: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[created_by])
    # Likewise the source's name: only the name, never its (encrypted) URL.
    source_label: Mapped[SourceLabel | None] = relationship(
        lazy="joined", foreign_keys=[source_id], viewonly=True
    )

    @property
    def source_name(self) -> str | None:
        label = self.__dict__.get("source_label")
        return None if label is None else str(label.name)

    @property
    def created_by_email(self) -> str | None:
        return _loaded_email(self, "creator")

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


class RestoreOperation(Base):
    """One restore of a backup into the target database, tracked like a backup."""

    __tablename__ = "backup_restores"
    __table_args__ = (Index("ix_backup_restores_status", "status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    backup_id: Mapped[int] = mapped_column(
        ForeignKey("database_backups.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[RestoreStatus] = mapped_column(
        _enum(RestoreStatus), default=RestoreStatus.pending
    )
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    use_safety_backup: Mapped[bool] = mapped_column(Boolean, default=True)
    safety_backup_id: Mapped[int | None] = mapped_column(
        ForeignKey("database_backups.id", ondelete="SET NULL")
    )
    target_database: Mapped[str | None] = mapped_column(String(64))
    # The source whose server it loads into (set by every request since restores name a
    # target; NULL: part 1's DBKEEP_TARGET_URL, or a row from before, meaning the backup's own
    # source); ``target_database`` is the database there.
    target_source_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("sources.id", ondelete="SET NULL")
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    bytes_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set by a cancel request; the worker stops the load and rolls back.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set in the same update that ends a restore a user cancelled (status failed or rolled_back).
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phase: Mapped[RestorePhase] = mapped_column(
        _enum(RestorePhase, 16), default=RestorePhase.queued, server_default="queued"
    )
    # True: objects of the target that the backup does not have are kept (default: dropped).
    keep_existing_objects: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    requester: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[requested_by])

    @property
    def requested_by_email(self) -> str | None:
        return _loaded_email(self, "requester")

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


def _loaded_email(row: Base, relation: str) -> str | None:
    """The related user's e-mail if it was loaded with the row; never a lazy load (async).

    A loaded relationship sits in the instance's ``__dict__``; reading it there costs nothing,
    where ``inspect(row).attrs`` built a state object per attribute on every call.
    """
    user = row.__dict__.get(relation)
    return None if user is None else str(user.email)


class BackupCounter(Base):
    """Row counts and sizes per (status, status before trash, cancelled), kept by database triggers.

    Counting a large table on every list request is the slow part of a page; these counters are
    maintained in the same transaction as every insert, update and delete of ``database_backups``
    (see migration 0002), so they are never stale.
    """

    __tablename__ = "backup_counters"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    # '' when the row is not in the trash; the status it had otherwise.
    status_before_trash: Mapped[str] = mapped_column(String(20), primary_key=True)
    # 1 for backups a user cancelled (``cancelled_at`` set), 0 otherwise (see migration 0008).
    cancelled: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    size_sum: Mapped[int] = mapped_column(BigInteger, default=0)


class BackupListVersion(Base):
    """One row whose ``version`` changes, by database triggers, in the same transaction as every
    change that can move a backup in or out of a list: an insert, a delete, or an update of its
    status, status before trash, filename or identifier (see migration 0005).

    A search's total needs every row read, so the API keeps recent totals with the version they
    were counted at (app/backups/totals.py); the version is read in the same statement as the
    page, so a kept total is served only when it is exactly that snapshot's.

    The version is a random 53-bit number rather than a counter: a store that is recreated or
    restored while an API process runs must not meet a number that process has already seen.
    """

    __tablename__ = "backup_list_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class TargetActivity(Base):
    """What runs on each target database, kept by database triggers (see migration 0007).

    Every insert, update and delete of ``database_backups`` and ``backup_restores`` adjusts the
    target's row in the same transaction: ``restores`` counts pending and running restores,
    ``backups`` pending and running backups (a restore's own safety backup is not counted). The
    checks make "one restore, and never a restore beside a backup, per target" a property of the
    store: of two requests racing for one target, the second one's insert fails, whichever
    process or host made it. Backups of one target may be queued together (they run one at a
    time, under the worker's lock).
    """

    __tablename__ = "target_activity"
    __table_args__ = (
        CheckConstraint("restores <= 1", name="one_restore"),
        CheckConstraint("restores = 0 OR backups = 0", name="restore_alone"),
    )

    target_database: Mapped[str] = mapped_column(String(64), primary_key=True)
    restores: Mapped[int] = mapped_column(Integer, default=0)
    backups: Mapped[int] = mapped_column(Integer, default=0)
