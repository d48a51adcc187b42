"""A decrypted credential never shows itself: repr, str, f-strings, logs, dataclasses, pickle."""

from __future__ import annotations

import copy
import io
import logging
import pickle
from dataclasses import dataclass

import pytest
import structlog

from app.kit.secret import Secret, masked_url

URL = "mysql://backup:s3cr3t-pw@db.example.com:3306/shop"


def test_only_reveal_gives_the_value() -> None:
    secret = Secret(URL)
    assert secret.reveal() == URL
    for shown in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>20}",
        "%s" % secret,  # noqa: UP031 (the logging module formats this way)
    ):
        assert "s3cr3t" not in shown
        assert "***" in shown


def test_a_dataclass_holding_one_does_not_print_it() -> None:
    @dataclass
    class Source:
        name: str
        url: Secret

    assert "s3cr3t" not in repr(Source("shop", Secret(URL)))


def test_a_log_line_shows_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer(default=repr)],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    try:
        structlog.get_logger().info("source.added", url=Secret(URL))
    finally:
        structlog.reset_defaults()
    logging.getLogger("t").warning("connecting to %s", Secret(URL))
    assert "s3cr3t" not in stream.getvalue() and "***" in stream.getvalue()
    assert "s3cr3t" not in caplog.text and "***" in caplog.text


def test_equality_and_copies_keep_the_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert len({Secret("a"), Secret("a")}) == 1
    assert copy.deepcopy(Secret("a")).reveal() == "a"
    assert not Secret("") and Secret("x")


def test_pickling_is_refused_so_it_never_reaches_a_queue() -> None:
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(Secret(URL))


def test_only_a_string_is_held() -> None:
    with pytest.raises(TypeError, match="str, not bytes"):
        Secret(b"raw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "mysql://backup:***@db.example.com:3306/shop"),
        (
            "postgresql://u:p%40ss@[::1]:5432/db?sslmode=require",
            "postgresql://u:***@[::1]:5432/db?sslmode=require",
        ),
        ("mysql://root@127.0.0.1/shop", "mysql://root@127.0.0.1/shop"),
        ("sqlite:///var/lib/app.db", "sqlite:///var/lib/app.db"),
        ("mysql://u:pw@host:notaport/db", "mysql://u:***@host:notaport/db"),
        ("mysql://u:p@ss@host/db", "mysql://u:***@host/db"),
    ],
)
def test_masked_url_hides_only_the_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown
    assert masked_url(Secret(url)) == shown
