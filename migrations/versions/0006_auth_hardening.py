"""auth hardening (issue 11): ids never reused, sessions and tokens bound to their user's epoch,
login counters per (account, address), account and address instead of failure rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:30:00

On SQLite ``users`` and ``api_tokens`` are rebuilt with AUTOINCREMENT (batch mode); env.py turns
foreign keys off around migrations there, or dropping the old ``users`` would cascade into every
session and token.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EPOCH = sa.String(length=32)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", app.db.UTCDateTime(), nullable=True),
        sa.Column("attempt", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("email", "client_ip", name=op.f("pk_login_throttles")),
    )
    op.create_index(
        op.f("ix_login_throttles_last_failure_at"), "login_throttles", ["last_failure_at"]
    )
    op.drop_index("ix_login_failures_email_at", table_name="login_failures")
    op.drop_table("login_failures")

    bind = op.get_bind()
    users = sa.table("users", sa.column("id", ID), sa.column("auth_epoch", EPOCH))
    op.add_column("users", sa.Column("auth_epoch", EPOCH, nullable=True))
    for (user_id,) in bind.execute(sa.select(users.c.id)).all():
        bind.execute(
            users.update().where(users.c.id == user_id).values(auth_epoch=secrets.token_hex(16))
        )
    # "always" rebuilds the table on SQLite only; elsewhere batch mode is plain ALTER TABLE.
    autoincrement = {"sqlite_autoincrement": True} if _sqlite() else {}
    rebuild = "always" if _sqlite() else "auto"
    with op.batch_alter_table("users", recreate=rebuild, table_kwargs=autoincrement) as batch:
        batch.alter_column("auth_epoch", existing_type=EPOCH, nullable=False)

    for child in ("user_sessions", "api_tokens"):
        # Rows whose user is gone (a store edited by hand) are exactly what must never answer.
        op.execute(f"DELETE FROM {child} WHERE user_id NOT IN (SELECT id FROM users)")
        op.add_column(child, sa.Column("auth_epoch", EPOCH, nullable=True))
        op.execute(
            f"UPDATE {child} SET auth_epoch = "
            f"(SELECT users.auth_epoch FROM users WHERE users.id = {child}.user_id)"
        )
        kwargs = autoincrement if child == "api_tokens" else {}
        with op.batch_alter_table(
            child, recreate=rebuild if kwargs else "auto", table_kwargs=kwargs
        ) as batch:
            batch.alter_column("auth_epoch", existing_type=EPOCH, nullable=False)


def downgrade() -> None:
    for child in ("api_tokens", "user_sessions"):
        with op.batch_alter_table(child) as batch:
            batch.drop_column("auth_epoch")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("auth_epoch")

    op.create_table(
        "login_failures",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.Column("failed_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_email_at", "login_failures", ["email", "failed_at"])
    op.drop_index(op.f("ix_login_throttles_last_failure_at"), table_name="login_throttles")
    op.drop_table("login_throttles")
