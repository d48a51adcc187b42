"""Start-up installs the key ring from the settings: the API's lifespan and every runtime."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.bootstrap import open_bootstrap
from app.config import Settings
from app.kit.encryption import install_key_ring, installed_key_ring
from app.kit.keyring import generate_key
from app.main import create_app


@pytest.fixture(autouse=True)
def no_ring_before_or_after() -> Iterator[None]:
    install_key_ring(None)
    yield
    install_key_ring(None)


async def test_the_api_starts_with_the_dev_key_generated_and_installed(
    database: object, settings: Settings
) -> None:
    # The suite shares one configured key; without one, dev makes its own.
    unset = settings.model_copy(update={"encryption_key": None})
    application = create_app(unset)
    async with application.router.lifespan_context(application):
        pass
    key_file = settings.var_dir / "encryption_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = installed_key_ring().encrypt("pw")
    assert Fernet(key_file.read_text().strip()).decrypt(token.encode()) == b"pw"


async def test_a_runtime_installs_the_configured_keys(settings: Settings) -> None:
    new, old = generate_key(), generate_key()
    configured = settings.model_copy(update={"encryption_key": SecretStr(f"{new},{old}")})
    async with open_bootstrap(configured):
        ring = installed_key_ring()
        assert ring.decrypt(Fernet(old).encrypt(b"old").decode()) == "old"
        assert Fernet(new).decrypt(ring.encrypt("x").encode()) == b"x"
    assert not (settings.var_dir / "encryption_key").exists()
