"""Structured logs: one event name per line (``backup.failed``) with fields, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from app.config import Settings

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|cookie|csrf", re.I)
# user:password@ in URLs, e.g. a target URL that slipped into a message.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.I)


def redact_text(text: str) -> str:
    return _URL_PASSWORD.sub(r"\g<scheme>:***@", text)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


def configure_logging(settings: Settings) -> None:
    """Send structlog and stdlib logging to stderr, as JSON or for a console."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    json = settings.log_format == "json"
    if json:
        # A plain-text traceback in one field: no local variables (they can hold secrets).
        shared.append(structlog.processors.format_exc_info)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        # Tracebacks without local variables: locals can hold passwords and tokens.
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # arq logs only under its own CLI unless its logger is wired up (stack notes, trap 5).
    logging.getLogger("arq").setLevel(level)
    for noisy in ("sqlalchemy.engine", "asyncmy", "aiosqlite", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Alembic announces its plugins and its dialect on every start; only the upgrades it runs
    # ("Running upgrade 0004 -> 0005, ...", logged by alembic.runtime.migration) are news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_only_upgrades)


def _only_upgrades(record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or record.getMessage().startswith("Running ")
