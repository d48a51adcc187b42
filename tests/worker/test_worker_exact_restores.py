"""Exact restores through ``dbkeep worker``: the backup's database, or the database as it was.

A zoo of schema features (a collation that is not the default, a sequence used as a column
default, system-versioned history, binary data, views, triggers, routines, events, foreign keys)
is backed up and restored by the worker, then compared object by object with what was backed up
(``schema_fingerprint``: SHOW CREATE of everything, CHECKSUM TABLE, history, counts by kind).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import zstandard

from app.backups.models import (
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    RestoreOperation,
    RestoreStatus,
)
from app.config import Settings
from app.db import Database, utcnow
from app.jobs.queue import ArqJobQueue
from app.storage import get_storage
from tests import support
from tests.engines.fingerprint import fingerprint_diff, schema_fingerprint
from tests.worker.conftest import WorkerFactory
from tests.worker.test_worker_restores import backed_up, restore_finished

ReadBackup = Callable[[int], Awaitable[DatabaseBackup]]
ReadRestore = Callable[[int], Awaitable[RestoreOperation]]

COLLATION = "utf8mb4_unicode_520_ci"
# Bytes a text dump must carry exactly: NUL, backslash, quotes, CR/LF, Ctrl-Z, invalid UTF-8.
AWKWARD = b"\x00\\'\"\r\n\x1a\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\xff\xfe" + bytes(range(256))

ZOO = """
CREATE SEQUENCE order_ids START WITH 100;
CREATE TABLE orders (
  id INT PRIMARY KEY DEFAULT NEXTVAL(order_ids),
  customer VARCHAR(40) NOT NULL,
  total DECIMAL(10,2),
  KEY by_customer (customer),
  UNIQUE KEY one_total (customer, total)
);
CREATE TABLE order_lines (
  id INT AUTO_INCREMENT PRIMARY KEY,
  order_id INT NOT NULL,
  sku VARCHAR(20),
  KEY by_sku (sku),
  CONSTRAINT line_order FOREIGN KEY (order_id) REFERENCES orders (id)
);
CREATE TABLE prices (id INT PRIMARY KEY, price INT) WITH SYSTEM VERSIONING;
CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB, small VARBINARY(600), fixed BINARY(8));
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 10;
CREATE TRIGGER orders_upper BEFORE INSERT ON orders
  FOR EACH ROW SET NEW.customer = UPPER(NEW.customer);
CREATE PROCEDURE count_orders() SELECT COUNT(*) FROM orders;
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
  DO DELETE FROM order_lines WHERE id < 0;
INSERT INTO orders (customer, total) VALUES ('ann', 12.5), ('bob', 3), ('cy', 40);
INSERT INTO order_lines (order_id, sku) SELECT id, CONCAT('sku-', id) FROM orders;
INSERT INTO prices VALUES (1, 10), (2, 20);
UPDATE prices SET price = price + 1;
UPDATE prices SET price = price + 1 WHERE id = 1;
DELETE FROM prices WHERE id = 2;
"""

# Everything a user could add after the backup, one object of each kind.
LATER = """
CREATE SEQUENCE later_seq;
CREATE TABLE later_table (id INT PRIMARY KEY);
CREATE VIEW later_view AS SELECT id FROM later_table;
CREATE PROCEDURE later_proc() SELECT 1;
CREATE FUNCTION later_func() RETURNS INT RETURN 1;
CREATE EVENT later_event ON SCHEDULE EVERY 1 HOUR DISABLE DO SELECT 1;
CREATE TRIGGER later_trigger AFTER INSERT ON later_table FOR EACH ROW SET @x = 1;
CREATE TRIGGER later_line_trigger AFTER UPDATE ON order_lines FOR EACH ROW SET @x = 2;
UPDATE orders SET total = total + 1;
DELETE FROM order_lines WHERE sku = 'sku-101';
"""


def zoo(database: str) -> None:
    support.admin_sql(
        f"ALTER DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE {COLLATION};", database=None
    )
    support.admin_sql(ZOO, database=database)
    data = os.urandom(200_000) + AWKWARD * 10
    support.admin_sql(
        f"INSERT INTO blobs VALUES (1, 0x{data.hex()}, 0x{AWKWARD[:600].hex()}, "
        f"0x{os.urandom(8).hex()}), (2, 0x{AWKWARD.hex()}, '', 0x0000000000000000);",
        database=database,
    )


def objects(database: str) -> set[str]:
    counts = schema_fingerprint(database)["create"]
    return set(counts)


async def crafted_copy_of(
    database: Database, settings: Settings, good: DatabaseBackup, change: Callable[[bytes], bytes]
) -> DatabaseBackup:
    """A completed backup whose dump is ``change``d; its checksum is honest, so it passes every
    integrity check and only loading it can tell."""
    storage = get_storage(settings)
    stored = b"".join([chunk async for chunk in storage.read(good.path)])
    sql = change(zstandard.ZstdDecompressor().decompressobj().decompress(stored))
    data = zstandard.ZstdCompressor().compress(sql)
    uid = secrets.token_hex(16)
    key = f"crafted/crafted_{uid[:8]}.sql.zst"
    writer = await storage.open_writer(key)
    await writer.write(data)
    size = await writer.commit()
    row = DatabaseBackup(
        filename=key.rsplit("/", 1)[1],
        unique_identifier=uid,
        path=key,
        file_size=size,
        raw_size=len(sql),
        status=BackupStatus.completed,
        backup_date=utcnow(),
        completed_at=utcnow(),
        compression="zstd",
        checksum_sha256=hashlib.sha256(data).hexdigest(),
        trigger=BackupTrigger.manual,
        target_database=good.target_database,
    )
    async with database.sessionmaker() as session:
        session.add(row)
        await session.commit()
    return row


def insert_before(marker: bytes, text: bytes) -> Callable[[bytes], bytes]:
    def change(sql: bytes) -> bytes:
        assert marker in sql
        return sql.replace(marker, text + marker, 1)

    return change


@pytest.mark.parametrize("parallelism", [1, 2])
async def test_a_restore_gives_back_the_backups_database_exactly(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
    parallelism: int,
) -> None:
    zoo(target_database)
    workers.start(restore_parallelism=parallelism)
    backup = await backed_up(service_factory, queue, read_backup)
    backed = schema_fingerprint(target_database)
    support.admin_sql(LATER, database=target_database)
    assert schema_fingerprint(target_database) != backed

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    restored = schema_fingerprint(target_database)
    # Every object, row, index, the history and the collation; nothing added later survives.
    assert restored == backed, fingerprint_diff(backed, restored)
    assert COLLATION in restored["database"]
    assert not {name for name in objects(target_database) if "later" in name}


async def test_keeping_existing_objects_restores_the_backups_and_keeps_the_rest(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
) -> None:
    zoo(target_database)
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    backed = schema_fingerprint(target_database)
    support.admin_sql(LATER, database=target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id, keep_existing_objects=True)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    after = schema_fingerprint(target_database)
    later = {name.split()[0] for name in after["create"] if "later" in name}
    # One of each kind, kept; a trigger added to a table of the backup goes with the table the
    # backup replaces.
    assert later == {"SEQUENCE", "TABLE", "VIEW", "PROCEDURE", "FUNCTION", "EVENT", "TRIGGER"}
    assert not [name for name in after["create"] if "later_line_trigger" in name]
    # The backup's own objects and rows are back as they were.
    for name, definition in backed["create"].items():
        assert after["create"][name] == definition, name
    assert {t: c for t, c in after["checksums"].items() if "later" not in t} == backed["checksums"]


async def test_a_failed_load_puts_back_exactly_what_was_there(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    zoo(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    broken = await crafted_copy_of(
        database,
        worker_settings,
        good,
        insert_before(
            b"-- Table structure for table `prices`", b"INSERT INTO nowhere VALUES(1);\n"
        ),
    )
    support.admin_sql(LATER, database=target_database)
    before = schema_fingerprint(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(broken.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert "nowhere" in (done.error_message or "")
    after = schema_fingerprint(target_database)
    # The collation, the objects added after the backup, the history: all as before.
    assert after == before, fingerprint_diff(before, after)


async def test_a_restore_that_misses_an_object_of_the_dump_is_not_a_success(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    zoo(target_database)
    workers.start()
    good = await backed_up(service_factory, queue, read_backup)
    # A CREATE the server skips (a version comment above any server's version): the dump declares
    # a table that the load never makes.
    ghost = await crafted_copy_of(
        database,
        worker_settings,
        good,
        insert_before(
            b"-- Table structure for table `prices`",
            b"/*M!999999 CREATE TABLE `ghost` (`id` int(11) NOT NULL) */;\n",
        ),
    )
    before = schema_fingerprint(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(ghost.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert "missing after the load: table `ghost`" in (done.error_message or "")
    after = schema_fingerprint(target_database)
    assert after == before, fingerprint_diff(before, after)


@pytest.mark.slow
async def test_a_load_that_times_out_is_rolled_back_within_its_own_time(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    database: Database,
    worker_settings: Settings,
    target_database: str,
) -> None:
    zoo(target_database)
    workers.start(restore_timeout_seconds=10)
    good = await backed_up(service_factory, queue, read_backup)
    slow = await crafted_copy_of(
        database,
        worker_settings,
        good,
        insert_before(b"-- Table structure for table `prices`", b"SELECT SLEEP(30);\n"),
    )
    support.admin_sql(LATER, database=target_database)
    before = schema_fingerprint(target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(slow.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.rolled_back, done.error_message
    assert "timed out after 10 seconds" in (done.error_message or "")
    after = schema_fingerprint(target_database)
    assert after == before, fingerprint_diff(before, after)


@pytest.mark.slow
async def test_a_row_near_the_servers_packet_limit_restores_byte_exact(
    workers: WorkerFactory,
    queue: ArqJobQueue,
    service_factory: Callable[..., Any],
    read_backup: ReadBackup,
    read_restore: ReadRestore,
    target_database: str,
) -> None:
    limit = int(support.admin_sql("SELECT @@max_allowed_packet").strip())
    assert limit == 16 * 1024 * 1024, "this test assumes the server's default 16 MiB"
    support.admin_sql(
        "CREATE TABLE big (id INT PRIMARY KEY, data LONGBLOB)", database=target_database
    )
    data = os.urandom(int(15.5 * 1024 * 1024))
    piece = 4 * 1024 * 1024  # each statement well under the packet limit
    support.admin_sql(
        f"INSERT INTO big VALUES (1, 0x{data[:piece].hex()})", database=target_database
    )
    for start in range(piece, len(data), piece):
        chunk = data[start : start + piece]
        support.admin_sql(
            f"UPDATE big SET data = CONCAT(data, 0x{chunk.hex()}) WHERE id = 1",
            database=target_database,
        )
    workers.start()
    backup = await backed_up(service_factory, queue, read_backup)
    assert backup.error_message is None  # restorable: nothing to warn about
    support.admin_sql("DELETE FROM big", database=target_database)

    async with service_factory(queue) as service:
        operation = await service.request_restore(backup.id)
    done = await restore_finished(read_restore, operation.id)

    assert done.status is RestoreStatus.completed, done.error_message
    digest = support.admin_sql("SELECT SHA2(data, 256) FROM big", database=target_database)
    assert digest.strip() == hashlib.sha256(data).hexdigest()
