"""Logs are structured and never carry a secret, not even in a traceback."""

from __future__ import annotations

import logging

import pytest
import structlog

from app.config import Settings
from app.logs import configure_logging


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_secrets_are_redacted_and_tracebacks_have_no_locals(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(_env_file=None, log_format=log_format))  # type: ignore[arg-type]
    log = structlog.get_logger("test")

    def connect(password: str = "hunter2-in-a-local") -> None:
        raise ConnectionError("boom")

    try:
        connect()
    except ConnectionError:
        log.exception(
            "backup.failed", target="mysql://app:s3cr3t-pw@db:3306/shop", api_token="dbk_abc"
        )
    logging.getLogger("other").warning("plain stdlib line")
    err = capsys.readouterr().err
    assert "backup.failed" in err and "plain stdlib line" in err
    assert "mysql://app:***@db:3306/shop" in err
    for secret in ("s3cr3t-pw", "dbk_abc", "hunter2-in-a-local"):
        assert secret not in err
    structlog.reset_defaults()
