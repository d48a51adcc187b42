"""The encryption API: a source's ``encryption`` field (recipients validated, 422 saying why),
``encrypted`` on backups, and the recovery kit (admin, password re-entered, audited)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.db import Database
from app.encryption.models import EncryptionIdentity
from app.pipeline.crypto import generate_identity
from tests import support
from tests.api.conftest import PASSWORD, BackupFactory, assert_failure

SOURCES = "/admin/api/sources"
KIT = "/admin/api/encryption/recovery-kit"
HEADER = "X-Dbkeep-Password"


async def _actions(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def test_a_source_takes_encryption_with_age_recipients(
    admin_client: httpx.AsyncClient,
) -> None:
    _secret, public = generate_identity()
    url = support.target_url("shop", password="pw")
    response = await admin_client.post(
        SOURCES,
        json={"name": "shop", "url": url, "encryption": {"enabled": True, "recipients": [public]}},
    )
    assert response.status_code == 201, response.text
    source = response.json()["data"]
    assert source["encryption"] == {"enabled": True, "recipients": [public]}

    changed = await admin_client.patch(
        f"{SOURCES}/{source['id']}", json={"encryption": {"enabled": False, "recipients": []}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["encryption"] == {"enabled": False, "recipients": []}
    listed = (await admin_client.get(SOURCES)).json()["data"]
    assert {s["name"]: s["encryption"]["enabled"] for s in listed}["shop"] is False


@pytest.mark.parametrize(
    ("recipients", "says"),
    [
        (["age1notakey"], "not a valid X25519 age public key"),
        (["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"], "starting with 'age1'"),
        (["AGE-SECRET-KEY-1QQQQ"], "starting with 'age1'"),
    ],
)
async def test_a_bad_recipient_is_a_422_saying_why(
    admin_client: httpx.AsyncClient, recipients: list[str], says: str
) -> None:
    url = support.target_url("shop", password="pw")
    response = await admin_client.post(
        SOURCES,
        json={
            "name": "shop",
            "url": url,
            "encryption": {"enabled": True, "recipients": recipients},
        },
    )
    body = assert_failure(response, 422)
    assert says in response.text, body
    names = [s["name"] for s in (await admin_client.get(SOURCES)).json()["data"]]
    assert "shop" not in names


async def test_a_recipient_listed_twice_is_refused(admin_client: httpx.AsyncClient) -> None:
    _secret, public = generate_identity()
    response = await admin_client.post(
        SOURCES,
        json={
            "name": "shop",
            "url": support.target_url("shop", password="pw"),
            "encryption": {"enabled": True, "recipients": [public, public]},
        },
    )
    assert_failure(response, 422)
    assert "listed twice" in response.text


async def test_backups_say_whether_they_are_encrypted(
    admin_client: httpx.AsyncClient, make_backup: BackupFactory
) -> None:
    await make_backup(encrypted=True)
    await make_backup()
    rows = (await admin_client.get("/admin/api/database-backups")).json()["data"]
    assert sorted(row["encrypted"] for row in rows) == [False, True]


async def test_the_recovery_kit_needs_the_password_and_is_audited(
    admin_client: httpx.AsyncClient, database: Database
) -> None:
    missing = await admin_client.get(KIT)
    assert_failure(missing, 422)
    wrong = await admin_client.get(KIT, headers={HEADER: "not-the-password"})
    assert_failure(wrong, 403)
    assert "AGE-SECRET-KEY" not in wrong.text

    right = await admin_client.get(KIT, headers={HEADER: PASSWORD})
    assert right.status_code == 200, right.text
    assert right.headers["content-type"].startswith("text/plain")
    assert right.headers["cache-control"] == "no-store"
    assert "dbkeep-identity.txt" in right.headers["content-disposition"]
    assert "age -d -i dbkeep-identity.txt FILE | zstd -d > dump.sql" in right.text
    keys = [line for line in right.text.splitlines() if line.startswith("AGE-SECRET-KEY-1")]
    assert len(keys) == 1
    async with database.sessionmaker() as session:
        stored = (await session.scalars(select(EncryptionIdentity))).one()
    assert f"# public key: {stored.public_key}" in right.text
    # The same key on a second read: made once.
    again = await admin_client.get(KIT, headers={HEADER: PASSWORD})
    assert [ln for ln in again.text.splitlines() if ln.startswith("AGE-SECRET-KEY-1")] == keys
    actions = await _actions(database)
    assert actions.count("encryption.recovery_kit") == 2
    assert "encryption.recovery_kit_refused" in actions


async def test_the_recovery_kit_is_for_admins_only(
    client: httpx.AsyncClient, viewer_client: httpx.AsyncClient
) -> None:
    assert_failure(await client.get(KIT, headers={HEADER: PASSWORD}), 401)
    assert_failure(await viewer_client.get(KIT, headers={HEADER: PASSWORD}), 403)


@pytest.mark.skipif(shutil.which("age") is None, reason="the age tool is not installed")
async def test_the_kit_is_an_identity_file_the_age_tool_reads(
    admin_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    kit = (await admin_client.get(KIT, headers={HEADER: PASSWORD})).text
    public = next(ln.split(": ")[1] for ln in kit.splitlines() if ln.startswith("# public key"))
    key = tmp_path / "dbkeep-identity.txt"
    key.write_text(kit)
    secret_file = tmp_path / "msg.age"
    subprocess.run(["age", "-r", public, "-o", str(secret_file)], input=b"hello", check=True)
    out = subprocess.run(
        ["age", "-d", "-i", str(key), str(secret_file)], capture_output=True, check=True
    )
    assert out.stdout == b"hello"
