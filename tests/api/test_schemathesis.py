"""Property-based run of every documented operation as an authenticated admin over real HTTP
(uvicorn on a free port): no 5xx, and every answer conforms to the OpenAPI document (status
codes, content types, bodies, headers, Allow, auth enforcement)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from app.auth.models import User
from app.auth.service import AuthService
from app.backups.models import BackupStatus
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.api.conftest import insert_backups

# Statuses a well-formed request may legitimately get here: unknown ids (404), wrong states (409),
# and the throttle that schemathesis' own wrong passwords trip (429).
ACCEPTED_FOR_VALID_DATA = ["2xx", "401", "403", "404", "409", "429"]


def _load_schema() -> OpenApiSchema:
    # Generated from the app's own document without starting it; each test then talks to a
    # fresh server configured for that test.
    document = create_app(Settings(_env_file=None, env="test")).openapi()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.checks.positive_data_acceptance.expected_statuses = ACCEPTED_FOR_VALID_DATA
    return loaded


# The import route's raw dump bodies (binary strings): sent as the bytes generated.
schemathesis.serializer.alias(
    ["application/sql", "application/gzip", "application/x-gzip", "application/zstd"],
    "application/octet-stream",
)

schema = _load_schema()


@dataclass
class LiveServer:
    base_url: str
    token: str


@pytest.fixture
async def seeded(database: Database, settings: Settings, admin_user: User) -> str:
    """A few rows of each status, and an admin API token."""
    rows: list[dict[str, Any]] = [{"status": s} for s in BackupStatus for _ in range(2)]
    await insert_backups(database, rows)
    async with database.sessionmaker() as session:
        _, token = await AuthService(session, settings=settings).create_api_token(
            email=admin_user.email, name="schemathesis"
        )
    return token


@pytest.fixture
def live_server(seeded: str, settings: Settings) -> Iterator[LiveServer]:
    """The app under uvicorn in a thread, on a port the OS picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", seeded)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@schema.parametrize()
@hypothesis.settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: schemathesis.Case, live_server: LiveServer) -> None:
    case.operation.base_url = live_server.base_url
    # An uploaded dump is judged by its content (a complete SQL dump), and a source by what its
    # fields mean (a cron expression, an IANA time zone, a URL the engine can use, a database
    # the source has), which no schema can say: generated values are rightly refused (415/422).
    # Every other check still applies to them.
    # A notification channel's config likewise (an Apprise URL Apprise knows, an address), and
    # a destination's, whose fields depend on its kind (a local path must be an absolute
    # directory that can be created, an S3 bucket name follows S3's rules).
    content_checked = case.operation.path.endswith("/imports") or (
        case.operation.path.startswith(
            ("/admin/api/sources", "/admin/api/notification-channels", "/admin/api/destinations")
        )
        and case.operation.method.upper() in {"POST", "PATCH"}
    )
    case.call_and_validate(
        base_url=live_server.base_url,
        headers={"Authorization": f"Bearer {live_server.token}"},
        excluded_checks=[positive_data_acceptance] if content_checked else None,
    )
