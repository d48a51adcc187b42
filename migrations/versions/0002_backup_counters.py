"""backup counters kept by triggers; indexes for name and size sorts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One counter row per (status, status_before_trash); '' stands for "not trashed".
_KEY_NEW = "NEW.status, COALESCE(NEW.status_before_trash, '')"
_KEY_OLD = "OLD.status, COALESCE(OLD.status_before_trash, '')"
_CHANGED = (
    "OLD.status <> NEW.status"
    " OR COALESCE(OLD.status_before_trash, '') <> COALESCE(NEW.status_before_trash, '')"
    " OR OLD.file_size <> NEW.file_size"
)


def _add(key: str, sign: str, size: str, dialect: str) -> str:
    values = f"VALUES ({key}, {sign}1, {sign}{size})"
    columns = "INSERT INTO backup_counters (status, status_before_trash, row_count, size_sum) "
    if dialect == "mysql":
        return (
            f"{columns}{values} ON DUPLICATE KEY UPDATE "
            f"row_count = row_count {sign} 1, size_sum = size_sum {sign} {size}"
        )
    return (
        f"{columns}{values} ON CONFLICT (status, status_before_trash) DO UPDATE SET "
        f"row_count = backup_counters.row_count {sign} 1, "
        f"size_sum = backup_counters.size_sum {sign} {size}"
    )


def _statements(dialect: str) -> list[str]:
    inc_new = _add(_KEY_NEW, "+", "NEW.file_size", dialect)
    dec_old = _add(_KEY_OLD, "-", "OLD.file_size", dialect)
    if dialect == "mysql":
        return [
            "CREATE TRIGGER trg_backups_counters_insert AFTER INSERT ON database_backups "
            f"FOR EACH ROW {inc_new}",
            "CREATE TRIGGER trg_backups_counters_delete AFTER DELETE ON database_backups "
            f"FOR EACH ROW {dec_old}",
            "CREATE TRIGGER trg_backups_counters_update AFTER UPDATE ON database_backups "
            f"FOR EACH ROW BEGIN IF {_CHANGED} THEN {dec_old}; {inc_new}; END IF; END",
        ]
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER trg_backups_counters_insert AFTER INSERT ON database_backups "
            f"BEGIN {inc_new}; END",
            "CREATE TRIGGER trg_backups_counters_delete AFTER DELETE ON database_backups "
            f"BEGIN {dec_old}; END",
            "CREATE TRIGGER trg_backups_counters_update AFTER UPDATE ON database_backups "
            f"WHEN {_CHANGED} BEGIN {dec_old}; {inc_new}; END",
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
            f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION dbkeep_backup_counters()",
        ]
    raise NotImplementedError(f"no counter triggers for {dialect}")


# Note for later migrations: on SQLite, a batch operation that rebuilds ``database_backups`` drops
# these triggers; such a migration must create them again (``_statements``).


def upgrade() -> None:
    op.create_table(
        "backup_counters",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_before_trash", sa.String(length=20), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("size_sum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", "status_before_trash", name=op.f("pk_backup_counters")),
    )
    with op.batch_alter_table("database_backups", schema=None) as batch_op:
        batch_op.create_index("ix_database_backups_filename", ["filename"], unique=False)
        batch_op.create_index("ix_database_backups_file_size", ["file_size"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _statements(dialect):
        op.execute(statement)
    # Rows that existed before the triggers.
    op.execute(
        "INSERT INTO backup_counters (status, status_before_trash, row_count, size_sum) "
        "SELECT status, COALESCE(status_before_trash, ''), COUNT(*), COALESCE(SUM(file_size), 0) "
        "FROM database_backups GROUP BY status, COALESCE(status_before_trash, '')"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name in ("insert", "delete", "update"):
        if dialect == "postgresql" and name == "delete":
            continue
        suffix = " ON database_backups" if dialect == "postgresql" else ""
        op.execute(f"DROP TRIGGER IF EXISTS trg_backups_counters_{name}{suffix}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dbkeep_backup_counters()")
    with op.batch_alter_table("database_backups", schema=None) as batch_op:
        batch_op.drop_index("ix_database_backups_file_size")
        batch_op.drop_index("ix_database_backups_filename")
    op.drop_table("backup_counters")
