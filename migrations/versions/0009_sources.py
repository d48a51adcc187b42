"""sources (issue 12): many databases, each backup attached to the source it was taken from

* ``sources``: a server connection (its URL encrypted at rest), which databases on it, its
  schedule, time zone and retention. AUTOINCREMENT on SQLite: an id is never reused.
* ``database_backups.source_id`` (ON DELETE SET NULL: deleting a source may keep its backups),
  with an index on (source_id, backup_date) for one source's list. Existing backups are attached
  to the ``default`` source at start-up, when it is made from ``DBKEEP_TARGET_URL`` (its URL must
  be encrypted with the running key, which a migration does not have).
* ``database_backups.schedule_slot`` widened to 160 (it names the source and database too).

Columns are added with plain ``ADD COLUMN``: SQLite's batch mode would rebuild
``database_backups`` and drop the triggers on it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK = "fk_database_backups_source_id_sources"  # the naming convention's
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("databases", sa.JSON(), nullable=False),
        sa.Column("exclude", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.String(length=120), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("retention", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("from_environment", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_sources_name"),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE database_backups ADD COLUMN source_id INTEGER CONSTRAINT {_FK} "
            "REFERENCES sources (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("database_backups", sa.Column("source_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            _FK,
            "database_backups",
            "sources",
            ["source_id"],
            ["id"],
            ondelete="SET NULL",
        )
        op.alter_column(
            "database_backups",
            "schedule_slot",
            existing_type=sa.String(length=40),
            type_=sa.String(length=160),
            existing_nullable=True,
        )
    op.create_index(
        "ix_database_backups_source_backup_date",
        "database_backups",
        ["source_id", "backup_date"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_database_backups_source_backup_date", table_name="database_backups")
        op.execute("ALTER TABLE database_backups DROP COLUMN source_id")
    else:
        # The foreign key first: MySQL keeps the index for it until it is gone.
        op.drop_constraint(_FK, "database_backups", type_="foreignkey")
        op.drop_index("ix_database_backups_source_backup_date", table_name="database_backups")
        op.drop_column("database_backups", "source_id")
        op.alter_column(
            "database_backups",
            "schedule_slot",
            existing_type=sa.String(length=160),
            type_=sa.String(length=40),
            existing_nullable=True,
        )
    op.drop_table("sources")
