"""POST /admin/api/destinations/{id}/test against a real S3-compatible server (SeaweedFS): the
probe writes, reads back and deletes an object with the right keys, and says why it fails for a
wrong secret, an unknown access key, a missing bucket, a read-only key and an unreachable
endpoint, never showing the secret."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from tests.s3server import S3Server

DESTINATIONS = "/admin/api/destinations"
WRONG_SECRET = "wrongSECRETneverShown0123456789"


async def add_and_test(
    client: httpx.AsyncClient, server: S3Server, bucket: str, **changes: Any
) -> tuple[dict[str, Any], str]:
    config = {**server.config(bucket), **changes}
    created = await client.post(
        DESTINATIONS, json={"name": "offsite", "kind": "s3", "config": config}
    )
    assert created.status_code == 201, created.text
    response = await client.post(f"{DESTINATIONS}/{created.json()['data']['id']}/test")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["data"]
    for secret in (server.secret_key, WRONG_SECRET, server.read_only_secret_key):
        assert secret not in response.text
    return result, response.text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_right_keys_pass_and_leave_nothing_behind(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    bucket = await s3_server.create_bucket()
    result, _ = await add_and_test(admin_client, s3_server, bucket)
    assert result["ok"] is True, result
    assert [(step["name"], step["ok"]) for step in result["steps"]] == [
        ("write", True),
        ("read", True),
        ("delete", True),
    ]
    assert await s3_server.keys(bucket) == []
    assert await s3_server.multipart_uploads(bucket) == []


async def test_a_wrong_secret_is_named(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    bucket = await s3_server.create_bucket()
    result, _ = await add_and_test(admin_client, s3_server, bucket, secret_access_key=WRONG_SECRET)
    assert result["ok"] is False
    assert result["steps"][0]["name"] == "write" and result["steps"][0]["ok"] is False
    assert "secret access key" in result["message"], result["message"]
    assert await s3_server.keys(bucket) == []


async def test_an_unknown_access_key_is_named(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    bucket = await s3_server.create_bucket()
    result, _ = await add_and_test(admin_client, s3_server, bucket, access_key_id="NOSUCHKEYID")
    assert result["ok"] is False
    assert "access key ID" in result["message"], result["message"]


async def test_a_missing_bucket_is_named(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    result, _ = await add_and_test(admin_client, s3_server, "no-such-bucket-api")
    assert result["ok"] is False
    assert "the bucket 'no-such-bucket-api' does not exist" in result["message"], result["message"]


async def test_a_read_only_key_is_named(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    bucket = await s3_server.create_bucket()
    result, _ = await add_and_test(
        admin_client,
        s3_server,
        bucket,
        access_key_id=s3_server.read_only_access_key,
        secret_access_key=s3_server.read_only_secret_key,
    )
    assert result["ok"] is False
    assert "no permission" in result["message"], result["message"]


async def test_an_unreachable_endpoint_is_named_quickly(
    admin_client: httpx.AsyncClient, s3_server: S3Server
) -> None:
    port = closed_port()
    started = time.monotonic()
    result, _ = await add_and_test(
        admin_client, s3_server, "any-bucket", endpoint_url=f"http://127.0.0.1:{port}"
    )
    took = time.monotonic() - started
    assert result["ok"] is False
    assert "can't be reached" in result["message"], result["message"]
    assert took < 8, took  # one retry, not five attempts with backoff
