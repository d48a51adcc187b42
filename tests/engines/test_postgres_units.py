"""PostgreSQL engine pieces without a server: URLs, the passfile and the tools' environment,
choosing a client, reading pg_restore --list, turning stderr into a message, the commands."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.engines.base import DbObject, FailureKind, TargetSpec
from app.engines.postgres.credentials import passfile, passfile_text, tool_env
from app.engines.postgres.engine import build_dump_argv, build_restore_argv
from app.engines.postgres.errors import classify
from app.engines.postgres.inventory import parse_toc, parse_toc_line
from app.engines.postgres.target import flag, option
from app.engines.postgres.tools import ClientSet, choose, parse_major, too_old_message


def test_a_postgresql_url_is_parsed_with_its_options() -> None:
    spec = TargetSpec.from_url(
        "postgresql://back%40up:p%3Ass@db.example:6543/shop?sslmode=verify-full"
        "&application_name=x&no_owner=yes"
    )
    assert (spec.scheme, spec.host, spec.port, spec.user, spec.database) == (
        "postgresql", "db.example", 6543, "back@up", "shop",
    )  # fmt: skip
    assert spec.password == "p:ss" and "p:ss" not in repr(spec)
    assert option(spec, "sslmode") == "verify-full" and flag(spec, "no_owner")
    assert not flag(spec, "no_privileges")
    other = spec.with_database("other")
    assert other.params == spec.params and other.database == "other"


def test_defaults_socket_and_server_wide_urls() -> None:
    spec = TargetSpec.from_url("postgres://u@/?host=/var/run/postgresql", database="postgres")
    assert (spec.scheme, spec.port, spec.socket, spec.database) == (
        "postgresql", 5432, "/var/run/postgresql", "postgres",
    )  # fmt: skip
    assert TargetSpec.from_url("postgresql://h/db").user == "postgres"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://u@h/", "must name a database"),
        ("postgresql://u@h/db?sslmode=sometimes", "sslmode must be one of"),
        ("postgresql://u@h/db?options=-c%20x", "unknown option 'options'"),
        ("postgresql://u@h/db?host=relative", "Unix socket directory"),
        ("postgresql://u@h/db?no_owner=maybe", "no_owner must be true or false"),
        ("postgresql://u@h/-db", "database name"),
        ("postgresql://u@h:99999/db", "port"),
    ],
)
def test_a_bad_url_is_refused_saying_why(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        TargetSpec.from_url(url)


def test_the_passfile_is_private_escaped_and_removed() -> None:
    spec = TargetSpec.from_url("postgresql://us%3Aer:a%5Cb%3Ac@h/db")
    assert passfile_text(spec) == "*:*:*:us\\:er:a\\\\b\\:c\n"
    with passfile(spec) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert Path(path).read_text() == passfile_text(spec)
    assert not Path(path).exists() and not Path(path).parent.exists()
    with pytest.raises(ValueError, match="line breaks"):
        passfile_text(TargetSpec.from_url("postgresql://u:a%0Ab@h/db"))


def test_the_tools_environment_carries_no_secret() -> None:
    spec = TargetSpec.from_url("postgresql://u:topsecret@h:5433/db?sslmode=require")
    base = {
        "PATH": "/usr/bin", "PGPASSWORD": "inherited", "PGHOST": "elsewhere",
        "DBKEEP_TARGET_URL": "postgresql://u:topsecret@h/db", "HOME": "/root",
    }  # fmt: skip
    env = tool_env(spec, "/tmp/x/pgpass", base)
    assert "PGPASSWORD" not in env and "DBKEEP_TARGET_URL" not in env
    assert all("topsecret" not in value for value in env.values())
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == ("h", "5433", "u")
    assert env["PGPASSFILE"] == "/tmp/x/pgpass" and env["PGSSLMODE"] == "require"
    assert env["PSQLRC"] == os.devnull and env["PATH"] == "/usr/bin"


def _set(major: int | None, complete: bool = True) -> ClientSet:
    tool = f"/usr/lib/postgresql/{major}/bin/x"
    return ClientSet(
        pg_dump=tool, pg_restore=tool if complete else None, psql=tool,
        version=f"pg_dump (PostgreSQL) {major}.3", major=major,
    )  # fmt: skip


def test_the_client_is_the_servers_major_else_the_nearest_newer() -> None:
    sets = [_set(17), _set(16), _set(15), _set(13, complete=False)]
    assert choose(sets, 16) == sets[1]
    assert choose(sets, 14) == sets[2]
    assert choose(sets, None) == sets[0]
    assert choose(sets, 18) == sets[0]  # the caller refuses it: older than the server
    assert choose([_set(13, complete=False)], 13) is None
    assert parse_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == 15
    assert parse_major("pg_dump (PostgreSQL) 9.6.24") == 9
    message = too_old_message(_set(15), 17)
    assert "server is PostgreSQL 17" in message and "postgresql-client-17" in message


def test_the_table_of_contents_is_read_into_objects() -> None:
    listing = "\n".join([
        ";",
        "; Archive created at 2026-12-04 18:43:33 UTC",
        "8; 2615 16894 SCHEMA - sales postgres",
        "3; 3079 16789 EXTENSION - citext ",
        "3613; 0 0 COMMENT - EXTENSION citext ",
        "971; 1247 16897 TYPE public mood postgres",
        "348; 1255 16945 FUNCTION sales add_tax(numeric, numeric) postgres",
        "350; 1255 16947 PROCEDURE sales bump(integer) postgres",
        "226; 1259 16940 TABLE Ünïcødé Tâble ñame postgres",
        "3602; 0 16964 TABLE DATA public parted_eu postgres",
        "3433; 0 0 TABLE ATTACH public parted_eu postgres",
        "221; 1259 16908 SEQUENCE public people_id_seq postgres",
        "3617; 0 0 SEQUENCE SET public people_id_seq postgres",
        "3616; 0 0 SEQUENCE OWNED BY public people_id_seq postgres",
        "227; 1259 16949 VIEW sales big_invoices postgres",
        "228; 1259 16953 MATERIALIZED VIEW sales per_person postgres",
        "3601; 0 16953 MATERIALIZED VIEW DATA sales per_person postgres",
        "3448; 2620 16948 TRIGGER sales invoices invoice_logged postgres",
        "3604; 2613 16974 BLOB - 16974 postgres",
        "3441; 2606 16917 CONSTRAINT public people people_pkey postgres",
    ])  # fmt: skip
    assert parse_toc(listing) == {
        DbObject("schema", "sales"),
        DbObject("extension", "citext"),
        DbObject("type", "public.mood"),
        DbObject("function", "sales.add_tax(numeric, numeric)"),
        DbObject("procedure", "sales.bump(integer)"),
        DbObject("table", "Ünïcødé.Tâble ñame"),
        DbObject("sequence", "public.people_id_seq"),
        DbObject("view", "sales.big_invoices"),
        DbObject("materialized view", "sales.per_person"),
        DbObject("trigger", "sales.invoices.invoice_logged"),
    }
    assert parse_toc_line("garbage") is None


@pytest.mark.parametrize(
    ("stderr", "words", "kind"),
    [
        ('pg_dump: error: connection to server at "h" (1.2.3.4), port 5432 failed: FATAL:  '
         'password authentication failed for user "u"', "access denied for user 'u'",
         FailureKind.permanent),
        ('pg_dump: error: connection to server failed: FATAL:  database "nope" does not exist',
         "unknown database 'nope'", FailureKind.permanent),
        ("pg_dump: error: query failed: ERROR:  permission denied for table t",
         "lacks a privilege the operation needs (query failed: ERROR:  permission denied for "
         "table t ***)", FailureKind.permanent),
        ('pg_dump: error: connection to server at "h", port 5432 failed: Connection refused',
         "pg_dump failed", FailureKind.transient),
        ("pg_restore: error: could not read from input file /var/spool/x/archive.dump: end of "
         "file", "<path>", FailureKind.permanent),
    ],
)  # fmt: skip
def test_stderr_becomes_a_message_without_secret_or_path(
    stderr: str, words: str, kind: FailureKind
) -> None:
    error = classify(1, stderr + " hunter2", tool="pg_dump", user="u", password="hunter2")
    assert words in error.message and error.kind is kind
    assert "hunter2" not in error.message and "/var/spool" not in error.message


def test_the_commands() -> None:
    assert build_dump_argv("/b/pg_dump", "shop") == [
        "/b/pg_dump", "--format=custom", "--compress=0", "--dbname=shop",
    ]  # fmt: skip
    parallel = build_restore_argv("/b/pg_restore", "shop", "/s/a.dump", jobs=4, no_owner=True)
    assert parallel == [
        "/b/pg_restore", "--clean", "--if-exists", "--exit-on-error", "--jobs=4",
        "--no-owner", "--dbname=shop", "/s/a.dump",
    ]  # fmt: skip
    alone = build_restore_argv("/b/pg_restore", "shop", "/s/a.dump", jobs=1, no_privileges=True)
    assert "--single-transaction" in alone and "--no-privileges" in alone
    assert not any(a.startswith("--jobs") for a in alone)
    with pytest.raises(ValueError):
        build_dump_argv("/b/pg_dump", "--host=evil")
