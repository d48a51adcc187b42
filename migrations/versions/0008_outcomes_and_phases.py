"""cancelled outcomes, restore phases and options (issue 11)

* ``database_backups.cancelled_at`` and ``backup_restores.cancelled_at``: set in the same update
  that ends a backup or restore a user cancelled. Its status stays the original's ("failed", or
  "rolled_back" for a restore); a cancel is the user's choice and is never counted as a failure.
* ``backup_counters`` gains ``cancelled`` (0 or 1) in its key, so the statistics count cancelled
  backups apart from failed ones without reading the table; the counter triggers of migration
  0002 are made again with the new key.
* ``backup_restores.phase`` (queued, safety_backup, loading, rolling_back, finished) and
  ``backup_restores.keep_existing_objects``.

Columns are added with plain ``ADD COLUMN``: SQLite's batch mode would rebuild the tables and drop
the triggers on them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PHASES = ("queued", "safety_backup", "loading", "rolling_back", "finished")


def _key(row: str, *, cancelled: bool) -> str:
    key = f"{row}.status, COALESCE({row}.status_before_trash, '')"
    if cancelled:
        key += f", CASE WHEN {row}.cancelled_at IS NULL THEN 0 ELSE 1 END"
    return key


def _changed(*, cancelled: bool) -> str:
    changed = (
        "OLD.status <> NEW.status"
        " OR COALESCE(OLD.status_before_trash, '') <> COALESCE(NEW.status_before_trash, '')"
        " OR OLD.file_size <> NEW.file_size"
    )
    if cancelled:
        changed += " OR (OLD.cancelled_at IS NULL) <> (NEW.cancelled_at IS NULL)"
    return changed


def _add(key: str, sign: str, size: str, dialect: str, *, cancelled: bool) -> str:
    columns = "status, status_before_trash" + (", cancelled" if cancelled else "")
    insert = (
        f"INSERT INTO backup_counters ({columns}, row_count, size_sum) "
        f"VALUES ({key}, {sign}1, {sign}{size})"
    )
    if dialect == "mysql":
        return (
            f"{insert} ON DUPLICATE KEY UPDATE "
            f"row_count = row_count {sign} 1, size_sum = size_sum {sign} {size}"
        )
    return (
        f"{insert} ON CONFLICT ({columns}) DO UPDATE SET "
        f"row_count = backup_counters.row_count {sign} 1, "
        f"size_sum = backup_counters.size_sum {sign} {size}"
    )


def _create_triggers(dialect: str, *, cancelled: bool) -> list[str]:
    """The counter triggers: 0002's (``cancelled=False``) or this migration's."""
    inc_new = _add(
        _key("NEW", cancelled=cancelled), "+", "NEW.file_size", dialect, cancelled=cancelled
    )
    dec_old = _add(
        _key("OLD", cancelled=cancelled), "-", "OLD.file_size", dialect, cancelled=cancelled
    )
    changed = _changed(cancelled=cancelled)
    if dialect == "mysql":
        return [
            "CREATE TRIGGER trg_backups_counters_insert AFTER INSERT ON database_backups "
            f"FOR EACH ROW {inc_new}",
            "CREATE TRIGGER trg_backups_counters_delete AFTER DELETE ON database_backups "
            f"FOR EACH ROW {dec_old}",
            "CREATE TRIGGER trg_backups_counters_update AFTER UPDATE ON database_backups "
            f"FOR EACH ROW BEGIN IF {changed} THEN {dec_old}; {inc_new}; END IF; END",
        ]
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER trg_backups_counters_insert AFTER INSERT ON database_backups "
            f"BEGIN {inc_new}; END",
            "CREATE TRIGGER trg_backups_counters_delete AFTER DELETE ON database_backups "
            f"BEGIN {dec_old}; END",
            "CREATE TRIGGER trg_backups_counters_update AFTER UPDATE ON database_backups "
            f"WHEN {changed} BEGIN {dec_old}; {inc_new}; END",
        ]
    if dialect == "postgresql":
        return [
            "CREATE FUNCTION dbkeep_backup_counters() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {dec_old}; END IF; "
            f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {inc_new}; END IF; "
            "RETURN NULL; END $$",
            "CREATE TRIGGER trg_backups_counters_insert AFTER INSERT OR DELETE ON database_backups "
            "FOR EACH ROW EXECUTE FUNCTION dbkeep_backup_counters()",
            "CREATE TRIGGER trg_backups_counters_update AFTER UPDATE ON database_backups "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION dbkeep_backup_counters()",
        ]
    raise NotImplementedError(f"no counter triggers for {dialect}")


def _drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_backups_counters_{name} ON database_backups")
        op.execute("DROP FUNCTION IF EXISTS dbkeep_backup_counters()")
        return
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_backups_counters_{name}")


def _rebuild_counters(dialect: str, *, cancelled: bool) -> None:
    """Make the counters table, its triggers and its rows again, with or without ``cancelled``."""
    _drop_triggers(dialect)
    op.drop_table("backup_counters")
    key = ["status", "status_before_trash"] + (["cancelled"] if cancelled else [])
    op.create_table(
        "backup_counters",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_before_trash", sa.String(length=20), nullable=False),
        *([sa.Column("cancelled", sa.Integer(), nullable=False)] if cancelled else []),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("size_sum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_backup_counters")),
    )
    for statement in _create_triggers(dialect, cancelled=cancelled):
        op.execute(statement)
    group = "status, COALESCE(status_before_trash, '')"
    columns = "status, status_before_trash"
    if cancelled:
        group += ", CASE WHEN cancelled_at IS NULL THEN 0 ELSE 1 END"
        columns += ", cancelled"
    op.execute(
        f"INSERT INTO backup_counters ({columns}, row_count, size_sum) "
        f"SELECT {group}, COUNT(*), COALESCE(SUM(file_size), 0) "
        f"FROM database_backups GROUP BY {group}"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("database_backups", sa.Column("cancelled_at", UTCDateTime(), nullable=True))
    op.add_column("backup_restores", sa.Column("cancelled_at", UTCDateTime(), nullable=True))
    op.add_column(
        "backup_restores",
        sa.Column(
            "phase",
            sa.Enum(*_PHASES, name="restorephase", native_enum=False, length=16),
            nullable=False,
            server_default="queued",
        ),
    )
    op.add_column(
        "backup_restores",
        sa.Column("keep_existing_objects", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # Rows from before: what ended is finished; what ended after a cancel request was cancelled.
    op.execute(
        "UPDATE backup_restores SET phase = 'finished' "
        "WHERE status NOT IN ('pending', 'in_progress')"
    )
    op.execute(
        "UPDATE backup_restores SET cancelled_at = COALESCE(completed_at, cancel_requested_at) "
        "WHERE cancel_requested_at IS NOT NULL AND status IN ('failed', 'rolled_back')"
    )
    op.execute(
        "UPDATE database_backups SET cancelled_at = COALESCE(completed_at, cancel_requested_at) "
        "WHERE cancel_requested_at IS NOT NULL "
        "AND (status = 'failed' OR status_before_trash = 'failed')"
    )
    _rebuild_counters(dialect, cancelled=True)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rebuild_counters(dialect, cancelled=False)
    # Plain DROP COLUMN (SQLite has it since 3.35): a batch rebuild would drop every trigger on
    # these tables. The counter triggers above no longer name ``cancelled_at``.
    op.drop_column("backup_restores", "keep_existing_objects")
    op.drop_column("backup_restores", "phase")
    op.drop_column("backup_restores", "cancelled_at")
    op.drop_column("database_backups", "cancelled_at")
