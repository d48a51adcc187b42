"""trigram index for the backup search on MySQL/MariaDB

A search is a literal substring of the filename or the unique identifier, which no B-tree index
can answer: with 100,000 backups every search scanned them all (~70 ms). On MySQL/MariaDB the
three-character pieces ("grams") of each backup's lower-cased filename and identifier are kept
in ``backup_search_grams`` by triggers, in the same transaction as the row; a search first finds
the backups that have its first and last gram (an index range), then checks those with LIKE as
before (~1 ms). A backup whose name is not plain ASCII gets the marker gram '' instead and is
always checked, so collation rules (ß = ss, é = e) still decide as they always did. SQLite and
PostgreSQL keep searching by scanning.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SOURCE = "LOWER(CONCAT({row}.filename, '\\n', {row}.unique_identifier))"


def _index_grams(row: str) -> str:
    """The statements that add ``row``'s grams (``row`` is NEW, or a table alias)."""
    return f"""
  DECLARE source VARCHAR(600) DEFAULT {_SOURCE.format(row=row)};
  DECLARE backup BIGINT DEFAULT {row}.id;
  IF CHAR_LENGTH(source) <> LENGTH(source) THEN
    INSERT IGNORE INTO backup_search_grams (gram, backup_id) VALUES ('', backup);
  ELSE
    INSERT IGNORE INTO backup_search_grams (gram, backup_id)
      WITH RECURSIVE n (i) AS (
        SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < CHAR_LENGTH(source) - 2
      )
      SELECT SUBSTRING(source, i, 3), backup FROM n;
  END IF;"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    op.execute(
        "CREATE TABLE backup_search_grams ("
        " gram VARCHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " backup_id BIGINT NOT NULL,"
        " PRIMARY KEY (gram, backup_id),"
        " KEY ix_backup_search_grams_backup_id (backup_id),"
        " CONSTRAINT fk_backup_search_grams_backup_id_database_backups"
        " FOREIGN KEY (backup_id) REFERENCES database_backups (id) ON DELETE CASCADE"
        ") ENGINE=InnoDB"
    )
    op.execute(
        "CREATE TRIGGER trg_backups_search_insert AFTER INSERT ON database_backups "
        f"FOR EACH ROW BEGIN{_index_grams('NEW')}\nEND"
    )
    # Dumps and migrations never change a name, but a name that changes is indexed again.
    op.execute(
        "CREATE TRIGGER trg_backups_search_update AFTER UPDATE ON database_backups "
        "FOR EACH ROW BEGIN\n"
        "  IF BINARY OLD.filename <> BINARY NEW.filename"
        " OR BINARY OLD.unique_identifier <> BINARY NEW.unique_identifier THEN\n"
        "    DELETE FROM backup_search_grams WHERE backup_id = OLD.id;\n"
        f"    BEGIN{_index_grams('NEW')}\n    END;\n"
        "  END IF;\nEND"
    )
    # The backups that exist already.
    op.execute(
        "INSERT IGNORE INTO backup_search_grams (gram, backup_id) "
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) "
        f"SELECT IF(CHAR_LENGTH({_SOURCE.format(row='b')}) = LENGTH({_SOURCE.format(row='b')}), "
        f"SUBSTRING({_SOURCE.format(row='b')}, n.i, 3), ''), b.id "
        "FROM database_backups b JOIN n "
        f"ON n.i <= GREATEST(1, CHAR_LENGTH({_SOURCE.format(row='b')}) - 2)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_backups_search_update")
    op.execute("DROP TRIGGER IF EXISTS trg_backups_search_insert")
    op.execute("DROP TABLE IF EXISTS backup_search_grams")
