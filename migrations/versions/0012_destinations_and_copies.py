"""destinations and backup copies (issue 14)

* ``destinations``: local directories and S3-compatible buckets; ``config`` (JSON, shown) and
  ``secrets`` (JSON, encrypted at rest with DBKEEP_ENCRYPTION_KEY, never returned).
* ``backup_copies``: one row per backup per destination, with its own status, size, checksum,
  verification time, error and storage key.
* ``sources.destination_ids``: the ordered destinations of a source ([] = the bootstrap
  ``local``).
* The bootstrap ``local`` destination is made here with DBKEEP_BACKUP_DIR's path left for start-up
  to fill in (``sync_local_destination``); every existing completed backup gets a stored copy on
  it, a failed or pending one none.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    destinations = op.create_table(
        "destinations",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("from_environment", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_destinations_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "backup_copies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "backup_id",
            ID,
            sa.ForeignKey(
                "database_backups.id",
                ondelete="CASCADE",
                name="fk_backup_copies_backup_id_database_backups",
            ),
            nullable=False,
        ),
        sa.Column(
            "destination_id",
            ID,
            sa.ForeignKey(
                "destinations.id",
                ondelete="RESTRICT",
                name="fk_backup_copies_destination_id_destinations",
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("checksum_sha256", sa.String(length=64), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "backup_id", "destination_id", name="uq_backup_copies_backup_destination"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_backup_copies_backup_id", "backup_copies", ["backup_id"])
    op.create_index("ix_backup_copies_destination_id", "backup_copies", ["destination_id"])
    # Plain ADD COLUMN: SQLite's batch mode would rebuild ``sources``.
    op.add_column("sources", sa.Column("destination_ids", sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE sources SET destination_ids = '[]'"))

    now = datetime.now(UTC)
    op.bulk_insert(
        destinations,
        [
            {
                "name": "local",
                "kind": "local",
                "config": {"path": ""},
                "secrets": None,
                "from_environment": True,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    # Every backup whose file was written (completed, or in the trash from completed) has it
    # on the bootstrap directory: that is its one copy.
    op.execute(
        sa.text(
            "INSERT INTO backup_copies (backup_id, destination_id, position, status, storage_key,"
            " size, checksum_sha256, verified_at, error_message, created_at, updated_at) "
            "SELECT b.id, d.id, 0, 'stored', b.path, b.file_size, b.checksum_sha256, "
            "b.verified_at, NULL, :now, :now FROM database_backups b, destinations d "
            "WHERE d.name = 'local' AND (b.status = 'completed' OR "
            "(b.status = 'in_trash' AND b.status_before_trash = 'completed'))"
        ).bindparams(sa.bindparam("now", now, type_=UTCDateTime()))
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE sources DROP COLUMN destination_ids")
    else:
        op.drop_column("sources", "destination_ids")
    op.drop_table("backup_copies")
    op.drop_table("destinations")
