"""Generate a reproducible benchmark database of about N MiB of dump, server-side.

Five InnoDB tables with realistic types (integers, decimals, enums, dates, timestamps with
fractions, JSON, text, binary blobs, a virtual column), unique and secondary indexes, two foreign
keys, two views (one built on the other), two triggers (one multi-statement, dumped inside a
``DELIMITER ;;`` block), a function, a procedure and an event. Rows are made by the server with
``INSERT ... SELECT`` over the Sequence engine: deterministic (hashes of the row number, no
``RAND()``), so the same size always gives the same data, and about a minute for 1 GiB.

    .venv/bin/python -m bench.generate --size-mib 1024 --database dbkeep_bench_1g
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.common import admin_sql, check_database_name, recreate_database

# Rows per MiB of dump (mariadb-dump --hex-blob), calibrated on MariaDB 10.11 so that 1024 MiB
# gives about 1 GiB of dump and 5 M rows.
ROWS_PER_MIB = {
    "customers": 553,
    "products": 131,
    "orders": 1559,
    "order_items": 1780,
    "activity_log": 1006,
}

FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yara",
    "Zoe",
    "Amir",
    "Bea",
    "Chen",
    "Dmitri",
    "Elif",
    "Femi",
    "Gita",
    "Hiro",
    "Ines",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Nakamura",
    "Silva",
    "Novak",
    "Andersen",
    "Okafor",
    "Haddad",
    "Ivanova",
    "Fernández",
    "Schmidt",
    "Brown",
    "Wilson",
    "Kim",
    "Nguyen",
    "Singh",
    "Cohen",
    "López",
    "Horvat",
    "O'Brien",
    "Martin",
    "Bernard",
    "Petit",
    "Moreau",
    "Laurent",
]
CITIES = [
    "Berlin",
    "Paris",
    "London",
    "Amsterdam",
    "Stockholm",
    "Madrid",
    "Rome",
    "Warsaw",
    "São_Paulo",
    "Tokyo",
    "Mumbai",
    "Austin",
    "Toronto",
    "Lagos",
    "Seoul",
    "Zürich",
]
COUNTRIES = [
    "DE",
    "FR",
    "GB",
    "NL",
    "SE",
    "ES",
    "IT",
    "PL",
    "BR",
    "JP",
    "IN",
    "US",
    "CA",
    "NG",
    "KR",
    "CH",
]
WORDS = [
    "ergonomic",
    "durable",
    "compact",
    "wireless",
    "stainless",
    "organic",
    "premium",
    "lightweight",
    "handmade",
    "modular",
    "waterproof",
    "recycled",
    "vintage",
    "portable",
    "adjustable",
    "foldable",
    "cotton",
    "bamboo",
    "ceramic",
    "leather",
    "steel",
    "walnut",
    "desk",
    "lamp",
    "chair",
    "kettle",
    "backpack",
    "speaker",
    "jacket",
    "bottle",
    "keyboard",
    "monitor",
    "shelf",
    "for",
    "with",
    "and",
    "the",
    "perfect",
    "everyday",
    "travel",
    "office",
    "kitchen",
    "outdoor",
]
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in "
    "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est "
    "laborum. "
)
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
)
ACTIONS = [
    "login",
    "logout",
    "view_product",
    "add_to_cart",
    "checkout",
    "update_profile",
    "search",
    "refund",
]


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _pick(values: list[str] | tuple[str, ...], hash_expr: str) -> str:
    """SQL picking one of ``values`` by a hash expression."""
    return f"ELT(1 + ({hash_expr}) % {len(values)}, {', '.join(_q(v) for v in values)})"


def _h(salt: str) -> str:
    """A deterministic 32-bit hash of the row number (the Sequence engine's ``seq``)."""
    return f"CRC32(CONCAT('{salt}', seq))"


SCHEMA = """
CREATE TABLE customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(190) NOT NULL,
  full_name VARCHAR(100) NOT NULL,
  country CHAR(2) NOT NULL,
  city VARCHAR(60) NOT NULL,
  phone VARCHAR(24) NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  status ENUM('active','suspended','closed') NOT NULL DEFAULT 'active',
  marketing_opt_in TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  UNIQUE KEY uq_customers_email (email),
  KEY ix_customers_country_created (country, created_at),
  KEY ix_customers_name (full_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE products (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sku CHAR(12) NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_grams INT UNSIGNED NULL,
  attributes JSON NOT NULL,
  stock INT NOT NULL,
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  created_at DATETIME NOT NULL,
  UNIQUE KEY uq_products_sku (sku),
  KEY ix_products_name (name),
  KEY ix_products_price (price)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  order_number CHAR(16) NOT NULL,
  status ENUM('pending','paid','shipped','delivered','cancelled','refunded') NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'EUR',
  subtotal DECIMAL(12,2) NOT NULL,
  tax DECIMAL(12,2) NOT NULL,
  shipping DECIMAL(10,2) NOT NULL,
  total DECIMAL(12,2) NOT NULL,
  placed_at DATETIME NOT NULL,
  shipped_at DATETIME NULL,
  shipping_address VARCHAR(255) NOT NULL,
  notes TEXT NULL,
  UNIQUE KEY uq_orders_number (order_number),
  KEY ix_orders_customer_placed (customer_id, placed_at),
  KEY ix_orders_status_placed (status, placed_at),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_items (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  quantity SMALLINT UNSIGNED NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  discount DECIMAL(10,2) NOT NULL DEFAULT 0,
  line_total DECIMAL(12,2) AS (quantity * unit_price - discount) VIRTUAL,
  KEY ix_items_order (order_id),
  KEY ix_items_product (product_id),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE activity_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  occurred_at TIMESTAMP(6) NOT NULL,
  actor_id INT UNSIGNED NULL,
  action VARCHAR(40) NOT NULL,
  ip_address VARBINARY(16) NULL,
  user_agent VARCHAR(255) NOT NULL,
  payload BLOB NOT NULL,
  KEY ix_activity_occurred (occurred_at),
  KEY ix_activity_actor_action (actor_id, action)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""

# ``active_customer_totals`` sorts before the view it reads, so a restore must handle a view
# whose dependency is still a placeholder when it is created.
OBJECTS = """
CREATE VIEW customer_order_totals AS
  SELECT c.id AS customer_id, c.email, c.country, COUNT(o.id) AS orders,
         COALESCE(SUM(o.total), 0) AS spent
  FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
  GROUP BY c.id, c.email, c.country;

CREATE VIEW active_customer_totals AS
  SELECT t.customer_id, t.email, t.orders, t.spent
  FROM customer_order_totals t JOIN customers c ON c.id = t.customer_id
  WHERE c.status = 'active';

DELIMITER ;;
CREATE TRIGGER orders_before_update BEFORE UPDATE ON orders FOR EACH ROW
BEGIN
  -- Shipping an order stamps it; the comment and semicolons test the dump's DELIMITER blocks.
  IF NEW.status = 'shipped' AND OLD.status <> 'shipped' THEN
    SET NEW.shipped_at = NOW();
  END IF;
END;;

CREATE TRIGGER order_items_after_insert AFTER INSERT ON order_items FOR EACH ROW
BEGIN
  UPDATE orders SET subtotal = subtotal + NEW.quantity * NEW.unit_price - NEW.discount,
                    total = total + NEW.quantity * NEW.unit_price - NEW.discount
  WHERE id = NEW.order_id;
END;;

CREATE FUNCTION order_total_with_tax(amount DECIMAL(12,2), rate DECIMAL(5,4))
RETURNS DECIMAL(12,2) DETERMINISTIC
BEGIN
  DECLARE result DECIMAL(12,2);
  SET result = ROUND(amount * (1 + rate), 2);
  RETURN result;
END;;

CREATE PROCEDURE customer_summary(IN cid INT UNSIGNED)
READS SQL DATA
BEGIN
  SELECT c.full_name, c.email, COUNT(o.id) AS orders, SUM(o.total) AS spent
  FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
  WHERE c.id = cid GROUP BY c.id;
END;;

CREATE EVENT purge_old_activity ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00'
DISABLE COMMENT 'keeps a year of activity'
DO BEGIN
  DELETE FROM activity_log WHERE occurred_at < NOW() - INTERVAL 1 YEAR;
END;;
DELIMITER ;
"""


def _customers(rows: int) -> str:
    email = (
        f"CONCAT(LOWER({_pick(FIRST_NAMES, _h('f'))}), '.', seq, '@', "
        f"{_pick(['example.com', 'mail.test', 'shop.example', 'corp.test'], 'seq')})"
    )
    name = f"CONCAT({_pick(FIRST_NAMES, _h('f'))}, ' ', {_pick(LAST_NAMES, _h('l'))})"
    return f"""
INSERT INTO customers (id, email, full_name, country, city, phone, balance, status,
                       marketing_opt_in, created_at, updated_at)
SELECT seq, {email}, {name}, {_pick(COUNTRIES, _h("c"))},
       REPLACE({_pick(CITIES, _h("c"))}, '_', ' '),
       IF(seq % 7 = 0, NULL, CONCAT('+', 1 + seq % 98, ' ', LPAD({_h("p")} % 1000000000, 9, '0'))),
       ({_h("b")} % 10000000) / 100,
       ELT(1 + (seq % 50 = 0) + (seq % 97 = 0), 'active', 'suspended', 'closed'),
       seq % 3 = 0,
       '2015-01-01' + INTERVAL ({_h("t")} % 283996800) SECOND,
       '2024-01-01' + INTERVAL (seq % 31536000) SECOND
FROM seq_1_to_{rows};
"""


def _products(rows: int) -> str:
    name = (
        f"CONCAT(INITCAP_PLACEHOLDER, ' ', {_pick(WORDS, _h('w1'))}, ' ', "
        f"{_pick(WORDS, _h('w2'))}, ' ', {_pick(WORDS, _h('w3'))})"
    ).replace("INITCAP_PLACEHOLDER", _pick([w.capitalize() for w in WORDS], _h("w0")))
    description = (
        f"CONCAT({name}, '. ', SUBSTRING({_q(LOREM * 3)}, 1 + {_h('d')} % 400, "
        f"150 + {_h('e')} % 450), ' Batch ', HEX({_h('x')}), '.')"
    )
    attributes = (
        "JSON_OBJECT('color', "
        + _pick(["red", "green", "blue", "black", "white", "grey", "navy", "olive"], _h("k"))
        + ", 'size', "
        + _pick(["XS", "S", "M", "L", "XL", "XXL"], _h("s"))
        + f", 'tags', JSON_ARRAY({_pick(WORDS, _h('t1'))}, {_pick(WORDS, _h('t2'))}), "
        f"'rating', ({_h('r')} % 50) / 10, 'ean', LPAD({_h('n')}, 13, '0'))"
    )
    return f"""
INSERT INTO products (id, sku, name, description, price, weight_grams, attributes, stock,
                      is_active, created_at)
SELECT seq, CONCAT('SKU-', LPAD(HEX(seq), 8, '0')), {name}, {description},
       (100 + {_h("pr")} % 99900) / 100, IF(seq % 11 = 0, NULL, 50 + {_h("g")} % 20000),
       {attributes}, {_h("st")} % 5000, seq % 13 <> 0,
       '2018-01-01' + INTERVAL ({_h("ct")} % 189216000) SECOND
FROM seq_1_to_{rows};
"""


def _orders(rows: int, customers: int) -> str:
    subtotal = f"(({_h('s')} % 500000) / 100)"
    address = (
        f"CONCAT(1 + {_h('a')} % 300, ' ', {_pick(LAST_NAMES, _h('a1'))}, ' Street, ', "
        f"LPAD({_h('z')} % 100000, 5, '0'), ' ', REPLACE({_pick(CITIES, _h('a2'))}, '_', ' '))"
    )
    notes = (
        f"IF(seq % 4 = 0, NULL, SUBSTRING({_q(LOREM * 2)}, 1 + {_h('n')} % 300, "
        f"20 + {_h('m')} % 140))"
    )
    return f"""
INSERT INTO orders (id, customer_id, order_number, status, currency, subtotal, tax, shipping,
                    total, placed_at, shipped_at, shipping_address, notes)
SELECT seq, 1 + {_h("cu")} % {customers}, CONCAT('ORD-', LPAD(seq, 12, '0')),
       ELT(1 + {_h("st")} % 6, 'pending', 'paid', 'shipped', 'delivered', 'cancelled',
           'refunded'),
       ELT(1 + seq % 3, 'EUR', 'USD', 'GBP'),
       {subtotal}, ROUND({subtotal} * 0.19, 2), (seq % 5) * 2.5,
       ROUND({subtotal} * 1.19, 2) + (seq % 5) * 2.5,
       '2019-01-01' + INTERVAL ({_h("p")} % 157680000) SECOND,
       IF(seq % 3 = 0, NULL, '2024-06-01' + INTERVAL ({_h("sh")} % 15552000) SECOND),
       {address}, {notes}
FROM seq_1_to_{rows};
"""


def _order_items(rows: int, orders: int, products: int) -> str:
    return f"""
INSERT INTO order_items (id, order_id, product_id, quantity, unit_price, discount)
SELECT seq, 1 + (seq - 1) * {orders} DIV {rows}, 1 + {_h("pi")} % {products},
       1 + {_h("q")} % 5, (100 + {_h("u")} % 49900) / 100,
       IF(seq % 9 = 0, ({_h("dc")} % 1000) / 100, 0)
FROM seq_1_to_{rows};
"""


def _activity(rows: int, customers: int) -> str:
    payload = (
        f'CONCAT(\'{{"session":"\', MD5(seq), \'","path":"/\', {_pick(WORDS, _h("p1"))}, '
        f"'/', {_h('p2')} % 10000, '\",\"referrer\":\"https://', "
        f"{_pick(['example.com', 'search.test', 'news.test'], 'seq')}, '/?q=', "
        f"{_pick(WORDS, _h('q1'))}, '\",\"cart\":[', {_h('c1')} % 1000, ',', "
        f"{_h('c2')} % 1000, '],\"trace\":\"', SHA1(seq), '\"}}')"
    )
    ip = (
        f"IF(seq % 5 = 0, UNHEX(CONCAT('20010db8', LPAD(HEX({_h('i6')}), 8, '0'), "
        f"'0000000000000001')), INET6_ATON(CONCAT('10.', seq % 256, '.', {_h('i2')} % 256, '.', "
        f"{_h('i3')} % 256)))"
    )
    return f"""
INSERT INTO activity_log (id, occurred_at, actor_id, action, ip_address, user_agent, payload)
SELECT seq, FROM_UNIXTIME(1600000000 + seq * 37 + {_h("us")} % 1000000 / 1000000),
       IF(seq % 10 = 0, NULL, 1 + {_h("ac")} % {customers}), {_pick(ACTIONS, _h("ak"))},
       {ip}, {_pick(AGENTS, _h("ag"))}, {payload}
FROM seq_1_to_{rows};
"""


@dataclass(frozen=True)
class Plan:
    customers: int
    products: int
    orders: int
    order_items: int
    activity_log: int

    @classmethod
    def for_size(cls, size_mib: float) -> Plan:
        def rows(table: str) -> int:
            return max(10, round(ROWS_PER_MIB[table] * size_mib))

        return cls(
            customers=rows("customers"),
            products=rows("products"),
            orders=rows("orders"),
            order_items=rows("order_items"),
            activity_log=rows("activity_log"),
        )

    @property
    def total_rows(self) -> int:
        return self.customers + self.products + self.orders + self.order_items + self.activity_log

    def statements(self) -> list[tuple[str, str]]:
        """(table, INSERT ... SELECT) pairs, parents first."""
        return [
            ("customers", _customers(self.customers)),
            ("products", _products(self.products)),
            ("orders", _orders(self.orders, self.customers)),
            ("order_items", _order_items(self.order_items, self.orders, self.products)),
            ("activity_log", _activity(self.activity_log, self.customers)),
        ]


# An INSERT into an empty InnoDB table inside one transaction, with these checks off, is loaded
# in bulk (indexes built by sorting): several times faster than row by row.
_BULK = "SET SESSION unique_checks=0, foreign_key_checks=0, autocommit=0; SET time_zone='+00:00';"


def generate(database: str, size_mib: float, *, sessions: int = 2, verbose: bool = True) -> Plan:
    """Drop and recreate ``database`` filled with about ``size_mib`` MiB of dump."""
    check_database_name(database)
    plan = Plan.for_size(size_mib)
    started = time.monotonic()
    recreate_database(database)
    admin_sql(SCHEMA, database=database)

    def fill(item: tuple[str, str]) -> None:
        table, insert = item
        t0 = time.monotonic()
        admin_sql(f"{_BULK}{insert}COMMIT;", database=database)
        if verbose:
            print(f"  {table:<13} {time.monotonic() - t0:6.1f} s", flush=True)

    # Foreign key checks are off, so tables can be filled in any order: two sessions at once.
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        list(pool.map(fill, sorted(plan.statements(), key=lambda s: -ROWS_PER_MIB[s[0]])))
    admin_sql(OBJECTS, database=database)
    admin_sql(f"ANALYZE TABLE {', '.join(t for t, _ in plan.statements())}", database=database)
    if verbose:
        print(
            f"generated {database}: {plan.total_rows:,} rows in {time.monotonic() - started:.1f} s",
            flush=True,
        )
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=100, help="approximate dump size")
    parser.add_argument(
        "--database", help="default: dbkeep_bench_<size>m, the name bench.run looks for"
    )
    parser.add_argument("--sessions", type=int, default=2, help="tables filled at once")
    args = parser.parse_args()
    database = args.database or f"dbkeep_bench_{int(args.size_mib)}m"
    generate(database, args.size_mib, sessions=args.sessions)


if __name__ == "__main__":
    main()
