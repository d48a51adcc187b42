"""pinned backups and restores into another source (issue 12)

* ``database_backups.pinned``: never trashed by retention.
* ``backup_restores.target_source_id`` (ON DELETE SET NULL): a restore into another source of
  the same engine, or NULL for the backup's own.

Plain ``ADD COLUMN`` (SQLite's batch mode would rebuild the tables and drop their triggers); on
SQLite the foreign key is a column constraint.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK = "fk_backup_restores_target_source_id_sources"  # the naming convention's


def upgrade() -> None:
    op.add_column(
        "database_backups",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE backup_restores ADD COLUMN target_source_id INTEGER CONSTRAINT {_FK} "
            "REFERENCES sources (id) ON DELETE SET NULL"
        )
    else:
        op.add_column(
            "backup_restores", sa.Column("target_source_id", sa.BigInteger(), nullable=True)
        )
        op.create_foreign_key(
            _FK, "backup_restores", "sources", ["target_source_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(_FK, "backup_restores", type_="foreignkey")
    op.drop_column("backup_restores", "target_source_id")
    op.drop_column("database_backups", "pinned")
