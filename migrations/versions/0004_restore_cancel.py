"""a running restore can be cancelled: backup_restores.cancel_requested_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would rebuild the table and drop its triggers.
    op.add_column("backup_restores", sa.Column("cancel_requested_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backup_restores", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested_at")
