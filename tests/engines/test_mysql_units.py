"""Fast checks of the pure pieces: argv, the option file, error classification."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.engines.base import FailureKind, TargetSpec
from app.engines.mysql.credentials import (
    defaults_file,
    option_file_text,
    quote_option_value,
    remove_stale_defaults_files,
)
from app.engines.mysql.engine import DUMP_OPTIONS, build_client_argv, build_dump_argv
from app.engines.mysql.errors import classify, find_error, sanitize
from app.engines.mysql.tools import display_name, flavour_of, resolve

PASSWORD = "s3cr#t \"pw\" 'x' \\ ;"
TARGET = TargetSpec(
    scheme="mysql", host="db.internal", port=3307, user="backup", password=PASSWORD, database="shop"
)


def test_dump_argv_has_the_defaults_file_first_and_no_password() -> None:
    argv = build_dump_argv("/usr/bin/mariadb-dump", "/tmp/x/client.cnf", "shop")
    assert argv[1] == "--defaults-extra-file=/tmp/x/client.cnf"
    assert argv[-2:] == ["--", "shop"]
    for option in (
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--skip-add-locks",
        "--default-character-set=utf8mb4",
    ):
        assert option in argv
    # --hex-blob doubles binary values past max_allowed_packet; --add-locks breaks NEXTVAL().
    assert not {"--force", "--compact", "--skip-comments", "--hex-blob", "--add-locks"} & set(argv)
    assert "--dump-history" not in argv
    assert "--dump-history" in build_dump_argv("d", "/c.cnf", "shop", dump_history=True)
    assert not any(PASSWORD in arg or "password" in arg for arg in argv)
    assert set(DUMP_OPTIONS) <= set(argv)
    mysql = build_dump_argv("mysqldump", "/c.cnf", "shop", flavour="mysql")
    assert "--no-tablespaces" in mysql and mysql[1].startswith("--defaults-extra-file=")


@pytest.mark.parametrize("name", ["--result-file=/tmp/x", "-rx", "a b", "a`b", "a'b", "", "x" * 65])
def test_dump_argv_refuses_names_that_could_be_options(name: str) -> None:
    with pytest.raises(ValueError):
        build_dump_argv("mariadb-dump", "/c.cnf", name)
    with pytest.raises(ValueError):
        build_client_argv("mariadb", "/c.cnf", database=name, sandbox=True)


def test_client_argv() -> None:
    argv = build_client_argv("mariadb", "/c.cnf", database="shop", sandbox=True)
    assert argv[:3] == ["mariadb", "--defaults-extra-file=/c.cnf", "--sandbox"]
    assert "--default-character-set=utf8mb4" in argv
    assert argv[-2:] == ["--", "shop"]
    plain = build_client_argv("mysql", "/c.cnf", sandbox=False)
    assert "--sandbox" not in plain and "--" not in plain


def test_option_file_quotes_everything_and_is_private() -> None:
    text = option_file_text(TARGET)
    assert text.splitlines()[0] == "[client]"
    assert 'password="s3cr#t \\"pw\\" \'x\' \\\\ ;"' in text
    assert 'host="db.internal"' in text and "port=3307" in text and "protocol=TCP" in text
    assert quote_option_value("a\nb") == '"a\\nb"'  # a newline can't start a new option
    with pytest.raises(ValueError):
        quote_option_value("a\0b")
    socket = TargetSpec.from_url("mysql://u@localhost/db?socket=/run/mysqld/mysqld.sock")
    assert "protocol=SOCKET" in option_file_text(socket)

    with defaults_file(TARGET) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        with open(path) as handle:
            assert handle.read() == text
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.dirname(path))


def test_defaults_file_is_removed_on_error() -> None:
    with pytest.raises(RuntimeError), defaults_file(TARGET) as path:
        raise RuntimeError("boom")
    assert not os.path.exists(os.path.dirname(path))


DUMP = "mariadb-dump"
CASES = [
    (
        2,
        "mariadb-dump: Got error: 1045: \"Access denied for user 'backup'@'10.0.0.5' "
        '(using password: YES)" when trying to connect',
        FailureKind.permanent,
        "access denied for user 'backup'",
    ),
    (
        2,
        "mariadb-dump: Got error: 1049: \"Unknown database 'shop'\" when selecting the database",
        FailureKind.permanent,
        "unknown database 'shop'",
    ),
    (
        2,
        "mariadb-dump: Got error: 1044: \"Access denied for user 'ro'@'%' to database 'shop'\" "
        "when selecting the database",
        FailureKind.permanent,
        "missing privilege: Access denied for user 'ro'@'%' to database 'shop'",
    ),
    (
        2,
        "mariadb-dump: Couldn't execute 'FLUSH TABLES': Access denied; you need (at least one "
        "of) the RELOAD privilege(s) for this operation (1227)",
        FailureKind.permanent,
        "missing privilege: Access denied; you need",
    ),
    (
        2,
        "mariadb-dump: Got error: 1356: \"View 'shop.v' references invalid table(s) or "
        'column(s) or function(s) or definer/invoker of view lack rights to use them" when '
        "using LOCK TABLES",
        FailureKind.permanent,
        "broken view: View 'shop.v' references invalid table(s)",
    ),
    (
        2,
        "mariadb-dump: Got error: 2002: \"Can't connect to local server through socket "
        "'/run/mysqld/mysqld.sock' (2)\" when trying to connect",
        FailureKind.transient,
        "can't connect to the database server: Can't connect to local server through socket",
    ),
    (
        2,
        "mariadb-dump: Got error: 2003: \"Can't connect to server on '127.0.0.1' (115)\" when "
        "trying to connect",
        FailureKind.transient,
        "can't connect",
    ),
    (
        2,
        "mariadb-dump: Got error: 2005: \"Unknown server host 'nope' (-2)\" when trying to connect",
        FailureKind.transient,
        "can't connect",
    ),
    (
        3,
        "mariadb-dump: Error 2013: Lost connection to server during query when dumping table "
        "`big` at row: 32768",
        FailureKind.transient,
        "lost connection",
    ),
    (5, "mariadb-dump: Got errno 28 on write", FailureKind.permanent, "disk full"),
    (-9, "", FailureKind.transient, "killed by signal 9"),
    (2, "mariadb-dump: something odd happened", FailureKind.permanent, "something odd happened"),
    (7, "", FailureKind.permanent, "exit status 7"),
]


@pytest.mark.parametrize(("code", "stderr", "kind", "fragment"), CASES)
def test_classify(code: int, stderr: str, kind: FailureKind, fragment: str) -> None:
    error = classify(code, "warning first\n" + stderr + "\n", tool=DUMP, user="backup")
    assert error.kind is kind
    assert fragment in error.message
    assert "\n" not in error.message
    assert "/run/mysqld" not in error.message


def test_classify_client_errors_keep_the_line_but_not_the_sql() -> None:
    stderr = (
        "--------------\nINSERT INTO t VALUES ('secret data')\n--------------\n\n"
        "ERROR 1064 (42000) at line 7: You have an error in your SQL syntax; check the manual "
        "that corresponds to your MariaDB server version for the right syntax to use near "
        "'INSERT INTO t VALUES ('secret data')' at line 1"
    )
    error = classify(1, stderr, tool="mariadb", user="u")
    assert error.message.startswith("mariadb failed with error 1064 at line 7: You have an error")
    assert "secret data" not in error.message
    assert find_error(stderr)[0] == 1064


def test_sanitize() -> None:
    text = "failed reading /var/lib/mysql/x.ibd with " + PASSWORD + " " + "y" * 500
    clean = sanitize(text, password=PASSWORD)
    assert "/var/lib" not in clean and PASSWORD not in clean
    assert len(clean) <= 300


def test_tool_lookup(tmp_path: os.PathLike[str]) -> None:
    assert resolve("/nonexistent/mysqldump", ("mariadb-dump",)) is None
    assert resolve(None, ("definitely-not-a-tool", "sh")) is not None
    assert display_name("/opt/x/mysqldump", ("a",)) == "mysqldump"
    assert display_name(None, ("mariadb-dump", "mysqldump")) == "mariadb-dump (or mysqldump)"
    assert flavour_of("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server)") == (
        "mysql"
    )
    assert flavour_of("mariadb-dump Ver 10.19 Distrib 10.11.19-MariaDB") == "mariadb"


def test_stale_option_files_of_killed_processes_are_swept() -> None:
    with defaults_file(TARGET) as fresh:
        stale = tempfile.mkdtemp(prefix="dbkeep-client-")
        Path(stale, "client.cnf").write_text("[client]\npassword=x\n")
        old = time.time() - 3600
        os.utime(stale, (old, old))
        assert remove_stale_defaults_files(timedelta(minutes=10)) >= 1
        assert not os.path.exists(stale)
        assert os.path.exists(fresh)
