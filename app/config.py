"""Settings, read from ``DBKEEP_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.pipeline.compression import Compression

ENCRYPTION_KEY_VARIABLE = "DBKEEP_ENCRYPTION_KEY"
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "placeholder"})


def _default_parallelism() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Every setting dbkeep reads. ``.env.example`` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="DBKEEP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A validation error must not echo what it was given: that includes the keys.
        hide_input_in_errors=True,
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = "sqlite+aiosqlite:///./var/dbkeep.sqlite3"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "dbkeep:queue"
    target_url: SecretStr | None = None
    backup_dir: Path = Path("./var/backups")
    var_dir: Path = Path("./var")
    secret_key: SecretStr | None = None
    # Fernet keys for the credentials stored in the metadata store, comma-separated: the first
    # encrypts, every one decrypts (rotation). Generated into ``var_dir`` in dev and test.
    encryption_key: SecretStr | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url_https: bool = False

    # Backups
    compression: Compression = Compression.zstd
    zstd_level: Annotated[int, Field(ge=1, le=19)] = 3
    gzip_level: Annotated[int, Field(ge=1, le=9)] = 6
    dump_binary: str | None = None
    client_binary: str | None = None
    backup_timeout_seconds: Annotated[int, Field(ge=10)] = 3 * 3600
    restore_timeout_seconds: Annotated[int, Field(ge=10)] = 6 * 3600
    restore_parallelism: Annotated[int, Field(ge=1, le=64)] = Field(
        default_factory=_default_parallelism
    )
    transient_retries: Annotated[int, Field(ge=0, le=10)] = 2
    # A running backup or restore writes a heartbeat every few seconds; one silent for this long
    # belongs to a dead worker and may be taken over or failed by the reconciler.
    heartbeat_timeout_seconds: Annotated[int, Field(ge=5)] = 60

    # Retention (the original's 15 and 7 days)
    trash_after_days: Annotated[float, Field(gt=0)] = 15
    purge_after_days: Annotated[float, Field(gt=0)] = 7

    # Schedule, as HH:MM in ``schedule_timezone``
    schedule_enabled: bool = True
    backup_at: str = "00:00"
    auto_trash_at: str = "01:00"
    cleanup_trash_at: str = "02:00"
    schedule_timezone: str = "UTC"
    # A worker that starts up to this long after a backup time no worker was running for takes
    # that backup then (0: never); later, the next slot waits for its own time.
    schedule_catch_up_hours: Annotated[float, Field(ge=0)] = 6
    reconcile_every_seconds: Annotated[int, Field(ge=5)] = 120

    # HTTP
    max_request_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    # The one route that takes a dump as its body (imports) streams it under this limit instead.
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 50 * 1024**3
    session_ttl_hours: Annotated[int, Field(ge=1)] = 12
    login_max_failures: Annotated[int, Field(ge=1)] = 5
    login_failure_window_seconds: Annotated[int, Field(ge=1)] = 15 * 60
    login_max_failures_per_address: Annotated[int, Field(ge=1)] = 30
    login_max_failures_per_account: Annotated[int, Field(ge=1)] = 50
    # The dashboard's address as browsers see it (https://backups.example.com): the origin that
    # unsafe requests must come from. Unset: the Host the request came to.
    public_url: str | None = None
    # Peers whose X-Forwarded-For names the client (comma-separated addresses or networks).
    trusted_proxies: str = ""
    frontend_dist: Path = Path(__file__).resolve().parent.parent / "frontend" / "dist"

    # Notifications: the mail server (smtp://user:pass@host:port or smtps://...), the sender,
    # and how deliveries are retried (backoff doubles from notify_backoff_seconds).
    smtp_url: SecretStr | None = None
    smtp_from: str = "dbkeep@localhost"
    notify_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10
    notify_max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    notify_backoff_seconds: Annotated[float, Field(gt=0)] = 30
    notify_sweep_seconds: Annotated[int, Field(ge=1, le=59)] = 10
    # Delivered and failed deliveries are kept this long (their attempt logs with them).
    notify_keep_days: Annotated[float, Field(gt=0)] = 90

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"

    @field_validator("public_url")
    @classmethod
    def _origin_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. https://backups.example.com")
        return value.strip().rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return parse_networks(self.trusted_proxies)

    @field_validator("backup_at", "auto_trash_at", "cleanup_trash_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        hour, _, minute = value.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ValueError("must be HH:MM (24-hour clock)")
        return f"{int(hour):02d}:{int(minute):02d}"

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from app.kit.keyring import parse_keys  # cryptography loads only when a key is set

        parse_keys(value.get_secret_value(), source=ENCRYPTION_KEY_VARIABLE)
        return value

    @model_validator(mode="after")
    def _require_encryption_key_in_prod(self) -> Settings:
        if self.env == "prod" and self.encryption_key is None:
            from app.kit.keyring import HOW_TO_MAKE_A_KEY

            raise ValueError(
                f"{ENCRYPTION_KEY_VARIABLE} must be set when DBKEEP_ENV=prod (it encrypts the "
                f"stored database and storage credentials; keep a copy): {HOW_TO_MAKE_A_KEY}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret_outside_dev(self) -> Settings:
        if self.env == "prod":
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < 32:
                raise ValueError(
                    "DBKEEP_SECRET_KEY must be set to a random value of at least 32 characters "
                    "when DBKEEP_ENV=prod "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
        return self

    def resolved_secret_key(self) -> str:
        """The signing key; in dev/test a random one is generated once into ``var_dir``."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        key_file = self.var_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key

    def resolved_encryption_keys(self) -> list[str]:
        """The Fernet keys, first one encrypting; in dev/test one is generated once into
        ``var_dir/encryption_key`` (0600). Raises ``EncryptionKeyError`` with a clear message."""
        from app.kit.keyring import EncryptionKeyError, generate_key, parse_keys

        if self.encryption_key is not None:
            text = self.encryption_key.get_secret_value()
            return parse_keys(text, source=ENCRYPTION_KEY_VARIABLE)
        if self.env == "prod":  # refused when validated; model_copy(update=...) skips that
            raise EncryptionKeyError(f"{ENCRYPTION_KEY_VARIABLE} must be set when DBKEEP_ENV=prod")
        key_file = self.var_dir / "encryption_key"
        try:
            return parse_keys(key_file.read_text(), source=str(key_file))
        except FileNotFoundError:
            pass
        self.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a private name, then linked into place: a process starting at the
        # same moment sees no file or the complete one, and the first link wins.
        key = generate_key()
        draft = self.var_dir / f".encryption_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(key + "\n")
            os.link(draft, key_file)
        except FileExistsError:
            return parse_keys(key_file.read_text(), source=str(key_file))
        finally:
            draft.unlink(missing_ok=True)
        return [key]


def parse_networks(value: str) -> list[IPv4Network | IPv6Network]:
    """``"10.0.0.1, 192.168.0.0/16"`` as networks; ``ValueError`` names a bad entry."""
    networks = []
    for item in value.replace(" ", ",").split(","):
        if item:
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return networks


@lru_cache
def get_settings() -> Settings:
    return Settings()
