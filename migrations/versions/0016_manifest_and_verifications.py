"""backup manifests and verifications (test restores) (issue 15)

* ``database_backups.manifest`` (JSON): what the dump holds, counted from its stream.
* ``sources.verify_schedule`` (cron) and ``sources.verify_url`` (encrypted like ``url``).
* ``backup_verifications``: one test restore of a backup and its per-table counts.

Plain ``ADD COLUMN`` (SQLite's batch mode would rebuild the tables and drop their triggers).

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STATUS = sa.Enum(
    "pending",
    "running",
    "passed",
    "failed",
    name="verificationstatus",
    native_enum=False,
    length=16,
)


def upgrade() -> None:
    op.add_column("database_backups", sa.Column("manifest", sa.JSON(), nullable=True))
    op.add_column("sources", sa.Column("verify_schedule", sa.String(length=120), nullable=True))
    op.add_column("sources", sa.Column("verify_url", sa.Text(), nullable=True))
    op.create_table(
        "backup_verifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("backup_id", ID, nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_id"],
            ["database_backups.id"],
            name="fk_backup_verifications_backup_id_database_backups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_backup_verifications_source_id_sources",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backup_verifications"),
    )
    op.create_index(
        "ix_backup_verifications_backup_id", "backup_verifications", ["backup_id"], unique=False
    )
    op.create_index(
        "ix_backup_verifications_source_id", "backup_verifications", ["source_id"], unique=False
    )
    op.create_index(
        "ix_backup_verifications_status", "backup_verifications", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_table("backup_verifications")
    op.drop_column("sources", "verify_url")
    op.drop_column("sources", "verify_schedule")
    op.drop_column("database_backups", "manifest")
