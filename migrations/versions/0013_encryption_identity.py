"""encryption at rest in the age format (issue 14, item 4)

* ``encryption_identities``: dbkeep's own X25519 age key pairs; the secret half is Fernet
  ciphertext under DBKEEP_ENCRYPTION_KEY. The newest one not retired encrypts new backups;
  retired ones stay to decrypt older backups. AUTOINCREMENT on SQLite: an id is never reused.
* ``sources.encryption``: ``{"enabled": bool, "recipients": ["age1…"]}``, NULL = not encrypted.
* ``database_backups.encrypted``: whether the stored file is an age file.

Columns are added with plain ``ADD COLUMN``: SQLite's batch mode would rebuild the tables and
drop the triggers on ``database_backups``.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "encryption_identities",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("secret_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("public_key", name="uq_encryption_identities_public_key"),
        sqlite_autoincrement=True,
    )
    op.add_column("sources", sa.Column("encryption", sa.JSON(), nullable=True))
    op.add_column(
        "database_backups",
        sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("database_backups", "encrypted")
    op.drop_column("sources", "encryption")
    op.drop_table("encryption_identities")
