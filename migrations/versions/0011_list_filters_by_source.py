"""the backup lists filtered by source and database (issue 12)

* The list version's update trigger (migration 0005) also fires when ``source_id`` or
  ``target_database`` changes: totals kept per source or database (app/backups/totals.py) must
  not outlive a backup moving to another source (the default source adopting old backups, a
  source deleted with its backups kept).
* ``ix_database_backups_database_backup_date`` on (target_database, backup_date): one database's
  page, count and statistics read that database's rows only, like one source's do with
  ``ix_database_backups_source_backup_date``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 05:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_database_backups_database_backup_date"
_BEFORE = ("status", "status_before_trash", "filename", "unique_identifier")
_AFTER = (*_BEFORE, "source_id", "target_database")
_RANDOM = {
    "mysql": "FLOOR(RAND() * 9007199254740991)",
    "sqlite": "(random() % 9007199254740991)",
    "postgresql": "FLOOR(random() * 9007199254740991)::bigint",
}


def _bump(dialect: str) -> str:
    insert = f"INSERT INTO backup_list_version (id, version) VALUES (1, {_RANDOM[dialect]})"
    if dialect == "mysql":
        return f"{insert} ON DUPLICATE KEY UPDATE version = VALUES(version)"
    return f"{insert} ON CONFLICT (id) DO UPDATE SET version = excluded.version"


def _changed(dialect: str, columns: Sequence[str]) -> str:
    if dialect == "mysql":
        differs = "NOT (BINARY OLD.{0} <=> BINARY NEW.{0})"
    elif dialect == "sqlite":
        differs = "OLD.{0} IS NOT NEW.{0}"
    else:
        differs = "OLD.{0} IS DISTINCT FROM NEW.{0}"
    return " OR ".join(differs.format(column) for column in columns)


def _replace_update_trigger(columns: Sequence[str]) -> None:
    dialect = op.get_bind().dialect.name
    bump, changed = _bump(dialect), _changed(dialect, columns)
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_backups_version_update ON database_backups")
        op.execute(
            "CREATE TRIGGER trg_backups_version_update AFTER UPDATE ON database_backups "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION dbkeep_backup_list_version()"
        )
        return
    op.execute("DROP TRIGGER IF EXISTS trg_backups_version_update")
    if dialect == "mysql":
        op.execute(
            "CREATE TRIGGER trg_backups_version_update AFTER UPDATE ON database_backups "
            f"FOR EACH ROW BEGIN IF {changed} THEN {bump}; END IF; END"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER trg_backups_version_update AFTER UPDATE ON database_backups "
            f"WHEN {changed} BEGIN {bump}; END"
        )
    else:
        raise NotImplementedError(f"no list version triggers for {dialect}")


def upgrade() -> None:
    _replace_update_trigger(_AFTER)
    op.create_index(_INDEX, "database_backups", ["target_database", "backup_date"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="database_backups")
    _replace_update_trigger(_BEFORE)
