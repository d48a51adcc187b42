"""An index on backup_copies.status: health counts failed copies without reading them all.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_backup_copies_status", "backup_copies", ["status"])


def downgrade() -> None:
    op.drop_index("ix_backup_copies_status", table_name="backup_copies")
