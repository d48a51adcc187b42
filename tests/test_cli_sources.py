"""``dbkeep source:*`` and ``backup:database --source`` as a person runs them: real processes,
a real MariaDB account whose password no other text contains, and that password never in any
output, log line (text or JSON) or argv/environment of a child process."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from app.config import Settings
from tests import support
from tests.api.conftest import forget_queue
from tests.test_cli import DBKEEP, cli_env, dbkeep


@pytest.fixture
def account() -> Iterator[tuple[str, str]]:
    with support.mariadb_account("dbkeep_cli") as account:
        yield account


@pytest.fixture
def second_database() -> Iterator[str]:
    with support.scratch_database() as name:
        yield name


@pytest.fixture
def env(settings: Settings, database: object, target_database: str) -> dict[str, str]:
    support.admin_sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));"
        "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_100;",
        database=target_database,
    )
    return cli_env(settings)


url_of = support.account_url


def with_stdin(*args: str, stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DBKEEP, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def assert_hidden(password: str, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert password not in result.stdout + result.stderr, result.args


def add_source(
    env: dict[str, str], account: tuple[str, str], name: str, database: str, *options: str
) -> subprocess.CompletedProcess[str]:
    result = with_stdin("source:add", name, "-", *options, stdin=url_of(account, database), env=env)
    assert result.returncode == 0, result.stderr
    assert_hidden(account[1], result)
    return result


def test_a_source_is_added_from_stdin_listed_tested_and_removed(
    env: dict[str, str], account: tuple[str, str], target_database: str, second_database: str
) -> None:
    user, password = account
    masked = f"mysql://{user}:***@{support.MARIADB_HOST}:{support.MARIADB_PORT}/"
    added = add_source(
        env,
        account,
        "shop",
        target_database,
        "--databases",
        f"{target_database},{second_database}",
        "--schedule",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--keep-daily",
        "7",
    )
    assert added.stdout.startswith("Source ")
    assert f"shop ({masked}{target_database})" in added.stdout
    assert f"{target_database}, {second_database}" in added.stdout
    assert "Next backup: " in added.stdout

    listed = dbkeep("source:list", env=env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ENGINE", "URL"] and "ENABLED" in header
    shop = next(row for row in rows if " shop " in row)
    assert masked + target_database in shop and "30 2 * * * Europe/Berlin" in shop
    assert shop.rstrip().endswith("yes") and any(" default " in row for row in rows)

    as_json = dbkeep("source:list", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    sources = {s["name"]: s for s in json.loads(as_json.stdout)}
    assert sources["shop"]["url"] == masked + target_database
    assert sources["shop"]["databases"] == [target_database, second_database]
    assert sources["shop"]["retention"]["keep_daily"] == 7
    assert sources["shop"]["next_run_at"] is not None

    tested = dbkeep("source:test", "shop", env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "MariaDB" in tested.stdout and second_database in tested.stdout
    assert "Missing privileges: none" in " ".join(tested.stdout.split())
    assert "Dump tool:" in tested.stdout and "ready to back up" in tested.stdout

    refused = dbkeep("source:remove", "shop", env=env)  # no terminal, no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    removed = dbkeep("source:remove", "shop", "--yes", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "backups were kept" in removed.stdout
    after = json.loads(dbkeep("source:list", "--json", env=env).stdout)
    assert "shop" not in {s["name"] for s in after}

    assert_hidden(password, listed, as_json, tested, refused, removed)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (
            ["--keep-daily", "0"],
            "Invalid --keep-daily: Input should be greater than or equal to 1.",
        ),
        (["--schedule", "61 * * * *"], "Invalid --schedule: "),
        (["--timezone", "Mars/Olympus"], "Invalid --timezone: "),
        (["--databases", "a,--result-file=/tmp/x"], "Invalid --databases: "),
        (["--databases", "a,,b"], "no empty names"),
        (["--all", "--databases", "a"], "exclude each other"),
        (["--exclude", "a"], "--exclude goes with --all"),
        (["--trash-after-days", "-1"], "Invalid --trash-after-days: "),
    ],
)
def test_a_bad_source_is_one_line_and_exit_1(
    env: dict[str, str],
    account: tuple[str, str],
    target_database: str,
    options: list[str],
    words: str,
) -> None:
    result = with_stdin(
        "source:add", "shop", "-", *options, stdin=url_of(account, target_database), env=env
    )
    assert result.returncode == 1
    assert result.stderr.startswith("dbkeep: error: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert_hidden(account[1], result)


def test_names_urls_and_duplicates_are_refused_as_the_api_refuses_them(
    env: dict[str, str], account: tuple[str, str], target_database: str
) -> None:
    password = account[1]
    bad_name = with_stdin("source:add", "Bad Name", "-", stdin=url_of(account), env=env)
    assert bad_name.returncode == 1 and "Invalid NAME: String should match pattern" in (
        bad_name.stderr
    )
    bad_port = f"mysql://{account[0]}:{password}@{support.MARIADB_HOST}:99999x/{target_database}"
    unusable = with_stdin("source:add", "shop", "-", stdin=bad_port, env=env)
    assert unusable.returncode == 1 and "The URL is not usable: " in unusable.stderr
    in_argv = dbkeep("source:add", "shop", "ftp://host/db", env=env)
    assert in_argv.returncode == 1 and "The URL is not usable: " in in_argv.stderr
    no_url = with_stdin("source:add", "shop", "-", stdin="", env=env)
    assert no_url.returncode == 1 and "standard input" in no_url.stderr

    add_source(env, account, "shop", target_database)
    twice = with_stdin("source:add", "shop", "-", stdin=url_of(account, target_database), env=env)
    assert twice.returncode == 1 and "exists already" in twice.stderr
    default = with_stdin(
        "source:add", "default", "-", stdin=url_of(account, target_database), env=env
    )
    assert default.returncode == 1 and "'default' exists already" in default.stderr
    for result in (bad_name, unusable, in_argv, no_url, twice, default):
        assert "Traceback" not in result.stderr
    assert_hidden(password, bad_name, unusable, no_url, twice, default)


def test_a_failing_connection_test_says_why_and_exits_1(
    env: dict[str, str], account: tuple[str, str], target_database: str
) -> None:
    user, password = account
    add_source(env, account, "wrong", target_database)
    support.admin_sql(
        f"ALTER USER '{user}'@'%' IDENTIFIED BY 'other-{password}';"
        f"ALTER USER '{user}'@'localhost' IDENTIFIED BY 'other-{password}';"
    )
    result = dbkeep("source:test", "wrong", env=env)
    assert result.returncode == 1
    assert "access denied" in result.stderr.lower()
    assert_hidden(password, result)

    unknown = dbkeep("source:test", "nope", env=env)
    assert unknown.returncode == 1 and "Source 'nope' was not found." in unknown.stderr


def dump_children(proc: psutil.Process) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The argv and environment of each process below ``proc`` right now."""
    for child in proc.children(recursive=True):
        try:
            yield child.cmdline(), child.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_backup_database_source_backs_up_each_database_and_hides_the_password(
    settings: Settings,
    env: dict[str, str],
    account: tuple[str, str],
    target_database: str,
    second_database: str,
    log_format: str,
) -> None:
    password = account[1]
    # Big enough that the dump runs long enough to be looked at while it runs.
    support.admin_sql(
        "CREATE TABLE big (id INT PRIMARY KEY, a CHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO big SELECT seq, SHA2(seq, 256) FROM seq_1_to_100000;",
        database=target_database,
    )
    env = {**env, "DBKEEP_LOG_FORMAT": log_format, "DBKEEP_LOG_LEVEL": "DEBUG"}
    add_source(env, account, "shop", "", "--databases", f"{target_database},{second_database}")

    child = subprocess.Popen(
        [DBKEEP, "backup:database", "--source", "shop"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[tuple[list[str], dict[str, str]]] = []
    watched = psutil.Process(child.pid)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        seen.extend(dump_children(watched))
        time.sleep(0.005)
    stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr

    lines = stdout.splitlines()
    assert len(lines) == 2 and all(" completed: backup_shop_" in line for line in lines)
    assert f"backup_shop_{target_database}_" in lines[0]
    assert f"backup_shop_{second_database}_" in lines[1]
    dumps = [argv for argv, _ in seen if argv and argv[0].endswith(("mariadb-dump", "mysqldump"))]
    assert dumps, "no dump process was seen while the backup ran"
    for argv, environ in seen:
        assert not any(password in arg for arg in argv), argv
        assert not any(password in value for value in environ.values())
    assert password not in stdout + stderr

    one = dbkeep("backup:database", "--source", "shop", "--database", second_database, env=env)
    assert one.returncode == 0, one.stderr
    assert len(one.stdout.splitlines()) == 1 and f"backup_shop_{second_database}_" in one.stdout
    missing = dbkeep("backup:database", "--source", "shop", "--database", "nope", env=env)
    assert missing.returncode == 1 and "has no database 'nope'" in missing.stderr
    unknown = dbkeep("backup:database", "--source", "nope", env=env)
    assert unknown.returncode == 1 and "Source 'nope' was not found." in unknown.stderr
    assert_hidden(password, one, missing, unknown)

    # The flags left alone, it is part 1's backup of DBKEEP_TARGET_URL, as before.
    plain = dbkeep("backup:database", env=env)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("Backup 4 completed: backup_")
    assert "backup_shop_" not in plain.stdout
    # And --database alone names a database of that `default` source.
    default_one = dbkeep("backup:database", "--database", target_database, env=env)
    assert default_one.returncode == 0, default_one.stderr
    assert default_one.stdout.startswith("Backup 5 completed: backup_")


async def test_a_busy_source_is_not_removed_and_the_default_never(
    settings: Settings, env: dict[str, str], account: tuple[str, str], target_database: str
) -> None:
    add_source(env, account, "shop", target_database)
    try:
        queued = dbkeep("backup:database", "--source", "shop", "--queue", env=env)
        assert queued.returncode == 0, queued.stderr
        assert queued.stdout.startswith("Backup 1 queued: backup_shop_")

        busy = dbkeep("source:remove", "shop", "--yes", env=env)
        assert busy.returncode == 1
        assert "pending or running" in busy.stderr and "Traceback" not in busy.stderr
    finally:
        await forget_queue(settings)
    default = dbkeep("source:remove", "default", "--yes", "--delete-backups", env=env)
    assert default.returncode == 1 and "DBKEEP_TARGET_URL" in default.stderr
    assert_hidden(account[1], queued, busy, default)


def test_removing_with_delete_backups_deletes_their_files(
    settings: Settings, env: dict[str, str], account: tuple[str, str], target_database: str
) -> None:
    add_source(env, account, "shop", target_database)
    assert dbkeep("backup:database", "--source", "shop", env=env).returncode == 0
    files = list(settings.backup_dir.rglob("backup_shop_*"))
    assert len(files) == 1
    removed = dbkeep("source:remove", "shop", "--yes", "--delete-backups", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "removed with its 1 backup(s)" in removed.stdout
    assert not files[0].exists()


def test_a_postgresql_source_is_added_and_tested_from_the_cli(env: dict[str, str]) -> None:
    from tests.engines.pg_support import create_database, drop_database, pg_url

    name = support.unique_name("dbkeep_pg_cli")
    create_database(name)
    try:
        password = "Pw-" + secrets.token_hex(12)  # trust auth: accepted, and must stay hidden
        added = with_stdin("source:add", "pgcli", "-", stdin=pg_url(name, password=password),
                           env=env)  # fmt: skip
        assert added.returncode == 0, added.stderr
        tested = dbkeep("source:test", "pgcli", env=env)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        words = " ".join(tested.stdout.split())
        assert "Server: 15." in words or "Server: 1" in words
        assert name in words and "Missing privileges: none" in words
        assert "pg_dump (PostgreSQL)" in words and "ready to back up" in words
        assert_hidden(password, added, tested)
    finally:
        drop_database(name)
