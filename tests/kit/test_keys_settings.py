"""DBKEEP_ENCRYPTION_KEY: parsed and checked, required in prod, generated once in dev."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from app.config import Settings
from app.kit.keyring import DecryptionError, EncryptionKeyError, KeyRing, generate_key

PROD_SECRET = "p" * 48


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path / "var", **values)  # type: ignore[arg-type]


def test_prod_without_a_key_refuses_to_start_and_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, env="prod", secret_key=PROD_SECRET)
    message = str(caught.value)
    assert "DBKEEP_ENCRYPTION_KEY must be set when DBKEEP_ENV=prod" in message
    assert "dbkeep key:generate" in message
    assert "Fernet.generate_key()" in message
    assert PROD_SECRET not in message  # the inputs are not echoed
    assert not (tmp_path / "var").exists()  # nothing was generated in prod


def test_prod_with_a_key_uses_it(tmp_path: Path) -> None:
    key = generate_key()
    config = settings(tmp_path, env="prod", secret_key=PROD_SECRET, encryption_key=key)
    assert config.resolved_encryption_keys() == [key]
    assert not (tmp_path / "var" / "encryption_key").exists()


def test_several_keys_the_first_encrypts_and_all_decrypt(tmp_path: Path) -> None:
    new, old = generate_key(), generate_key()
    config = settings(tmp_path, encryption_key=f" {new} , {old},")
    assert config.resolved_encryption_keys() == [new, old]
    ring = KeyRing(config.resolved_encryption_keys())
    under_old = Fernet(old).encrypt(b"pw").decode()
    assert ring.decrypt(under_old) == "pw"
    assert Fernet(new).decrypt(ring.encrypt("pw").encode()) == b"pw"
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(ring.encrypt("pw").encode())


@pytest.mark.parametrize("bad", ["not-a-key", "x" * 44, "Zm9v"])
def test_invalid_key_text_is_a_clear_error_without_the_text(tmp_path: Path, bad: str) -> None:
    good = generate_key()
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, encryption_key=f"{good},{bad}")
    message = str(caught.value)
    assert "DBKEEP_ENCRYPTION_KEY: key 2 of 2 is not a Fernet key" in message
    assert "dbkeep key:generate" in message
    assert bad not in message and good not in message


def test_an_empty_setting_counts_as_unset(tmp_path: Path) -> None:
    config = settings(tmp_path, encryption_key="  ")
    assert config.encryption_key is None
    with pytest.raises(ValidationError, match="DBKEEP_ENCRYPTION_KEY must be set"):
        settings(tmp_path, env="prod", secret_key=PROD_SECRET, encryption_key="")


def test_the_environment_variable_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv("DBKEEP_ENCRYPTION_KEY", key)
    assert settings(tmp_path).resolved_encryption_keys() == [key]


def test_dev_generates_a_private_key_file_once_and_reuses_it(tmp_path: Path) -> None:
    config = settings(tmp_path, env="dev")
    first = config.resolved_encryption_keys()
    key_file = tmp_path / "var" / "encryption_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(first) == 1
    Fernet(first[0])  # a valid key
    modified = key_file.stat().st_mtime_ns
    assert settings(tmp_path, env="dev").resolved_encryption_keys() == first
    assert settings(tmp_path, env="test").resolved_encryption_keys() == first
    assert key_file.stat().st_mtime_ns == modified
    assert [p.name for p in key_file.parent.iterdir()] == ["encryption_key"]  # no draft left


def test_a_damaged_dev_key_file_names_the_file_not_its_text(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "encryption_key").write_text("garbage-garbage\n")
    with pytest.raises(EncryptionKeyError) as caught:
        settings(tmp_path).resolved_encryption_keys()
    assert str(var / "encryption_key") in str(caught.value)
    assert "garbage" not in str(caught.value)


def test_a_key_file_made_by_another_process_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes starting at once: the other one links its key first, between our read
    # (no file yet) and our link. Ours must be dropped and theirs used.
    theirs = generate_key()
    real_link = os.link

    def other_process_wins(source: str | Path, target: str | Path) -> None:
        Path(target).write_text(theirs + "\n")
        real_link(source, target)

    monkeypatch.setattr(os, "link", other_process_wins)
    assert settings(tmp_path).resolved_encryption_keys() == [theirs]
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["encryption_key"]


def test_wrong_key_is_a_clear_error_without_the_value_or_keys() -> None:
    right, wrong = generate_key(), generate_key()
    token = KeyRing([right]).encrypt("mysql://u:hunter2@h/db")
    with pytest.raises(DecryptionError) as caught:
        KeyRing([wrong]).decrypt(token)
    message = str(caught.value)
    assert "could not be decrypted with any of the 1 configured encryption key(s)" in message
    for leaked in (token, "hunter2", right, wrong):
        assert leaked not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert wrong not in repr(KeyRing([wrong])) and right not in repr(KeyRing([right]))


def test_damaged_ciphertext_is_the_same_clear_error() -> None:
    ring = KeyRing([generate_key()])
    for damaged in ("", "not-base64!", ring.encrypt("x")[:-4] + "AAAA", "ünïcode"):
        with pytest.raises(DecryptionError, match="could not be decrypted"):
            ring.decrypt(damaged)
