"""one active restore, and never a restore beside a backup, per target database, kept by the store

Two restore requests for one database, checked at the same moment, both found nothing running and
both inserted (issue 11). ``target_activity`` holds a row per target database with the number of
pending or running restores and backups in it; triggers on ``database_backups`` and
``backup_restores`` change it in the same transaction as every insert, update of a status (or of
the target) and delete, so a row that ends in any way (completed, failed, cancelled, rolled back,
failed by the reconciler, edited by hand) gives its place back. Two checks make the rule a
constraint: at most one restore per target, and no restore while a backup is counted. Of two
racing requests the second one's insert waits for the first's row lock and then fails the check;
the API answers it 409.

A restore's own safety backup (trigger ``pre_restore``) is not counted: it runs inside the
restore. Backups of one target may still be queued side by side, as before (they run one after
the other under the worker's lock).

The counter is changed by an upsert, one statement that takes the row's write lock at once (a
read-then-update could deadlock three racing inserts on MariaDB).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "('pending', 'in_progress')"
# (table, counter column, names of the trigger and function parts)
_TABLES = (("database_backups", "backups", "backups"), ("backup_restores", "restores", "restores"))


def _quote(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _active(dialect: str, table: str, row: str) -> str:
    """SQL true when ``row`` (NEW or OLD) holds a place on its target."""
    condition = f"{row}.status IN {_ACTIVE} AND {row}.target_database IS NOT NULL"
    if table == "database_backups":
        condition += f" AND {row}.{_quote(dialect, 'trigger')} <> 'pre_restore'"
    return f"({condition})"


def _same_target(dialect: str) -> str:
    if dialect == "mysql":
        return "(NEW.target_database <=> OLD.target_database)"
    if dialect == "sqlite":
        return "(NEW.target_database IS OLD.target_database)"
    return "(NEW.target_database IS NOT DISTINCT FROM OLD.target_database)"


def _claim(dialect: str, column: str) -> str:
    """Count NEW's place; the checks fail this statement when the target is taken."""
    first = "1, 0" if column == "restores" else "0, 1"
    insert = (
        "INSERT INTO target_activity (target_database, restores, backups) "
        f"VALUES (NEW.target_database, {first})"
    )
    if dialect == "mysql":
        return f"{insert} ON DUPLICATE KEY UPDATE {column} = {column} + 1"
    return f"{insert} ON CONFLICT (target_database) DO UPDATE SET {column} = target_activity.{column} + 1"


def _release(column: str) -> str:
    """Give OLD's place back (never below zero)."""
    return (
        f"UPDATE target_activity SET {column} = CASE WHEN {column} > 0 THEN {column} - 1 "
        "ELSE 0 END WHERE target_database = OLD.target_database"
    )


def _mysql(table: str, column: str, name: str) -> list[str]:
    new, old = _active("mysql", table, "NEW"), _active("mysql", table, "OLD")
    same = _same_target("mysql")
    prefix = f"trg_{name}_activity"
    return [
        f"CREATE TRIGGER {prefix}_insert BEFORE INSERT ON {table} FOR EACH ROW "
        f"BEGIN IF {new} THEN {_claim('mysql', column)}; END IF; END",
        f"CREATE TRIGGER {prefix}_update BEFORE UPDATE ON {table} FOR EACH ROW BEGIN "
        f"IF {old} AND NOT ({new} AND {same}) THEN {_release(column)}; END IF; "
        f"IF {new} AND NOT ({old} AND {same}) THEN {_claim('mysql', column)}; END IF; END",
        f"CREATE TRIGGER {prefix}_delete BEFORE DELETE ON {table} FOR EACH ROW "
        f"BEGIN IF {old} THEN {_release(column)}; END IF; END",
    ]


def _sqlite(table: str, column: str, name: str) -> list[str]:
    new, old = _active("sqlite", table, "NEW"), _active("sqlite", table, "OLD")
    same = _same_target("sqlite")
    prefix = f"trg_{name}_activity"
    return [
        f"CREATE TRIGGER {prefix}_insert BEFORE INSERT ON {table} WHEN {new} "
        f"BEGIN {_claim('sqlite', column)}; END",
        f"CREATE TRIGGER {prefix}_release BEFORE UPDATE ON {table} "
        f"WHEN {old} AND NOT ({new} AND {same}) BEGIN {_release(column)}; END",
        f"CREATE TRIGGER {prefix}_claim BEFORE UPDATE ON {table} "
        f"WHEN {new} AND NOT ({old} AND {same}) BEGIN {_claim('sqlite', column)}; END",
        f"CREATE TRIGGER {prefix}_delete BEFORE DELETE ON {table} WHEN {old} "
        f"BEGIN {_release(column)}; END",
    ]


def _postgresql(table: str, column: str, name: str) -> list[str]:
    new, old = _active("postgresql", table, "NEW"), _active("postgresql", table, "OLD")
    same = _same_target("postgresql")
    function = f"dbkeep_{name}_activity"
    return [
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE was_active boolean := false; is_active boolean := false; "
        "same_target boolean := false; "
        "BEGIN "
        f"IF TG_OP <> 'INSERT' THEN was_active := {old}; END IF; "
        f"IF TG_OP <> 'DELETE' THEN is_active := {new}; END IF; "
        f"IF TG_OP = 'UPDATE' THEN same_target := {same}; END IF; "
        f"IF was_active AND NOT (is_active AND same_target) THEN {_release(column)}; END IF; "
        f"IF is_active AND NOT (was_active AND same_target) THEN "
        f"{_claim('postgresql', column)}; END IF; "
        "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
        f"CREATE TRIGGER trg_{name}_activity BEFORE INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


_BUILDERS = {"mysql": _mysql, "sqlite": _sqlite, "postgresql": _postgresql}


def _fill(dialect: str) -> None:
    """Count what is active already (an upgrade while something runs)."""
    trigger = _quote(dialect, "trigger")
    op.execute(
        "INSERT INTO target_activity (target_database, restores, backups) "
        "SELECT target_database, SUM(restores), SUM(backups) FROM ("
        "SELECT target_database, 0 AS restores, 1 AS backups FROM database_backups "
        f"WHERE status IN {_ACTIVE} AND target_database IS NOT NULL "
        f"AND {trigger} <> 'pre_restore' "
        "UNION ALL SELECT target_database, 1, 0 FROM backup_restores "
        f"WHERE status IN {_ACTIVE} AND target_database IS NOT NULL"
        ") AS active GROUP BY target_database"
    )


def upgrade() -> None:
    op.create_table(
        "target_activity",
        sa.Column("target_database", sa.String(length=64), nullable=False),
        sa.Column("restores", sa.Integer(), nullable=False),
        sa.Column("backups", sa.Integer(), nullable=False),
        sa.CheckConstraint("restores <= 1", name=op.f("ck_target_activity_one_restore")),
        sa.CheckConstraint(
            "restores = 0 OR backups = 0", name=op.f("ck_target_activity_restore_alone")
        ),
        sa.PrimaryKeyConstraint("target_database", name=op.f("pk_target_activity")),
    )
    dialect = op.get_bind().dialect.name
    # If two restores of one target were already queued, the store can't hold them: the fill
    # fails the upgrade, which says so, rather than hide it.
    _fill(dialect)
    for table, column, name in _TABLES:
        for statement in _BUILDERS[dialect](table, column, name):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, _column, name in _TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS trg_{name}_activity ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS dbkeep_{name}_activity()")
            continue
        events = (
            ("insert", "update", "delete")
            if dialect == "mysql"
            else ("insert", "release", "claim", "delete")
        )
        for event in events:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{name}_activity_{event}")
    op.drop_table("target_activity")
