"""The notification channels API: CRUD with write-only secrets, a test send that reports the
attempt, deliveries newest first, and the usual refusals."""

from __future__ import annotations

import email
import hashlib
import hmac
import secrets
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from app.config import Settings
from app.db import Database
from tests.notifications.receivers import HttpReceiver, SmtpServer, start_smtp

BASE = "/admin/api/notification-channels"
SECRET = "hook-secret-" + "z" * 20


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp("mailer", "smtp-pw-" + secrets.token_hex(6))
    yield server
    server.controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={"smtp_url": SecretStr(smtp.url), "smtp_from": "dbkeep@example.com"}
    )


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.stop()


async def create(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post(BASE, json=body)


async def test_a_webhook_channel_keeps_its_secret_write_only_and_encrypted(
    admin_client: httpx.AsyncClient, database: Database, receiver: HttpReceiver
) -> None:
    response = await create(
        admin_client,
        name="ops-hook",
        kind="webhook",
        config={"url": receiver.url + "/in", "secret": SECRET},
        events=["backup.failed", "backup.degraded", "backup.failed"],
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["config"] == {"url": receiver.url + "/in"}
    assert data["secrets_set"] == ["secret"]
    assert data["events"] == ["backup.failed", "backup.degraded"]
    assert SECRET not in response.text
    channel_id = data["id"]

    for answer in (await admin_client.get(BASE), await admin_client.get(f"{BASE}/{channel_id}")):
        assert answer.status_code == 200 and SECRET not in answer.text
    async with database.sessionmaker() as session:
        stored = await session.scalar(text("SELECT secrets FROM notification_channels"))
    assert stored and SECRET not in stored

    # A change without the secret keeps it; the test send still signs with it.
    patched = await admin_client.patch(
        f"{BASE}/{channel_id}",
        json={"config": {"url": receiver.url + "/new"}, "events": ["backup.completed"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["events"] == ["backup.completed"]
    receiver.start()
    tested = await admin_client.post(f"{BASE}/{channel_id}/test")
    assert tested.status_code == 200, tested.text
    result = tested.json()["data"]
    assert result["ok"] is True and result["status"] == "delivered" and result["error"] is None
    [got] = receiver.received
    assert got.path == "/new"
    digest = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-dbkeep-signature"] == f"sha256={digest}"
    assert got.json()["event"] == "test"


async def test_a_test_send_reports_a_failure_and_deliveries_list_newest_first(
    admin_client: httpx.AsyncClient, receiver: HttpReceiver
) -> None:
    created = await create(
        admin_client,
        name="down-hook",
        kind="webhook",
        config={"url": receiver.url, "secret": SECRET},
    )
    channel_id = created.json()["data"]["id"]
    failed = await admin_client.post(f"{BASE}/{channel_id}/test")
    assert failed.status_code == 200
    assert failed.json()["data"]["ok"] is False
    assert failed.json()["data"]["status"] == "failed"  # a test is not retried
    assert "could not reach" in failed.json()["data"]["error"]
    assert failed.json()["message"] == "The test notification failed."
    receiver.start()
    ok = await admin_client.post(f"{BASE}/{channel_id}/test")
    assert ok.json()["data"]["ok"] is True

    page = await admin_client.get(f"{BASE}/{channel_id}/deliveries", params={"per_page": 1})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["meta"] == {"current_page": 1, "per_page": 1, "total": 2, "last_page": 2}
    [newest] = body["data"]
    assert newest["id"] == ok.json()["data"]["delivery_id"]
    assert newest["status"] == "delivered" and len(newest["attempt_log"]) == 1
    older = (
        await admin_client.get(f"{BASE}/{channel_id}/deliveries", params={"per_page": 1, "page": 2})
    ).json()["data"][0]
    assert older["status"] == "failed" and older["attempt_log"][0]["ok"] is False


async def test_an_email_channel_test_send_reaches_the_smtp_server(
    admin_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    created = await create(
        admin_client, name="mail", kind="email", config={"to": ["ops@example.com"]}
    )
    assert created.status_code == 201, created.text
    tested = await admin_client.post(f"{BASE}/{created.json()['data']['id']}/test")
    assert tested.json()["data"]["ok"] is True, tested.text
    [(sender, rcpts, raw)] = smtp.mailbox.messages
    assert sender == "dbkeep@example.com" and rcpts == ["ops@example.com"]
    message = email.message_from_bytes(raw)
    assert message["Subject"] == "[dbkeep] Test notification: dbkeep"
    assert smtp.password not in raw.decode()


async def test_an_apprise_url_is_write_only(admin_client: httpx.AsyncClient) -> None:
    url = "json://127.0.0.1:9/hook/tok-" + secrets.token_hex(6)
    created = await create(admin_client, name="chat", kind="apprise", config={"url": url})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["config"] == {}
    assert created.json()["data"]["secrets_set"] == ["url"]
    assert url not in created.text
    bad = await create(admin_client, name="chat2", kind="apprise", config={"url": "nope://x"})
    assert bad.status_code == 422
    assert "config.url" in bad.json()["errors"]
    assert "nope://x" not in bad.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "webhook", "config": {"url": "http://h/"}}, "config.secret"),
        (
            {"name": "x", "kind": "webhook", "config": {"url": "ftp://h/", "secret": SECRET}},
            "config.url",
        ),
        (
            {"name": "x", "kind": "webhook", "config": {"url": "http://h/", "secret": "short"}},
            "config.secret",
        ),
        ({"name": "x", "kind": "email", "config": {"to": []}}, "config.to"),
        ({"name": "x", "kind": "email", "config": {"to": ["not-an-address"]}}, "config.to"),
        (
            {
                "name": "x",
                "kind": "email",
                "config": {"to": ["a@b.co"]},
                "events": ["backup.eaten"],
            },
            "events",
        ),
        ({"name": "Bad Name", "kind": "email", "config": {"to": ["a@b.co"]}}, "name"),
        ({"name": "x", "kind": "sms", "config": {}}, "kind"),
    ],
)
async def test_bad_channels_are_refused_with_the_field(
    admin_client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await admin_client.post(BASE, json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(field in key.split(".", 1)[0] or key.endswith(field) for key in errors), errors
    assert SECRET not in response.text


async def test_names_are_unique_and_unknown_ids_are_404(admin_client: httpx.AsyncClient) -> None:
    body = {"name": "dup", "kind": "email", "config": {"to": ["a@example.com"]}}
    assert (await admin_client.post(BASE, json=body)).status_code == 201
    assert (await admin_client.post(BASE, json=body)).status_code == 409
    for method, path in (
        ("GET", f"{BASE}/999"),
        ("PATCH", f"{BASE}/999"),
        ("DELETE", f"{BASE}/999"),
        ("POST", f"{BASE}/999/test"),
        ("GET", f"{BASE}/999/deliveries"),
    ):
        kwargs = {"json": {}} if method == "PATCH" else {}
        assert (await admin_client.request(method, path, **kwargs)).status_code == 404, path
    for bad in ("0", "-1", "abc", "1.0"):
        assert (await admin_client.get(f"{BASE}/{bad}")).status_code == 422


async def test_delete_removes_the_channel_and_its_deliveries(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    created = await create(
        admin_client, name="gone", kind="email", config={"to": ["a@example.com"]}
    )
    channel_id = created.json()["data"]["id"]
    await admin_client.post(f"{BASE}/{channel_id}/test")  # leaves a delivery row
    deleted = await admin_client.delete(f"{BASE}/{channel_id}")
    assert deleted.status_code == 200
    assert (await admin_client.get(f"{BASE}/{channel_id}")).status_code == 404
    async with database.sessionmaker() as session:
        left = await session.scalar(text("SELECT COUNT(*) FROM notification_deliveries"))
    assert left == 0


async def test_only_admins_manage_channels(
    client: httpx.AsyncClient, viewer_client: httpx.AsyncClient
) -> None:
    assert (await client.get(BASE)).status_code == 401
    assert (await viewer_client.get(BASE)).status_code == 403
    body = {"name": "v", "kind": "email", "config": {"to": ["a@example.com"]}}
    assert (await viewer_client.post(BASE, json=body)).status_code == 403
