"""health per source (issue 15): ``source_health_state`` and an index for the health query

* ``source_health_state``: each source's last evaluated health (status, reasons, when it changed),
  so a change is reported once as ``health.changed``. Deleted with its source.
* ``ix_database_backups_source_db_status_id`` on (source_id, target_database, status, id): the
  health query ranks each source's and database's newest completed and failed backups from this
  index alone, without reading or sorting the table's rows.

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INDEX = "ix_database_backups_source_db_status_id"


def upgrade() -> None:
    op.create_table(
        "source_health_state",
        sa.Column("source_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_health_state_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", name="pk_source_health_state"),
    )
    op.create_index(_INDEX, "database_backups", ["source_id", "target_database", "status", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="database_backups")
    op.drop_table("source_health_state")
