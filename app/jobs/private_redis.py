"""A private ``redis-server`` for a single machine: started by ``dbkeep serve`` when none answers.

It listens on a Unix socket under the var directory (a free 127.0.0.1 port when the socket path
would be too long), keeps nothing on disk (the metadata store is the truth; the reconciler re-queues
what a lost queue forgot), and dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis
from redis.exceptions import RedisError

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


def redis_answers(url: str, *, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _die_with_parent(parent_pid: int) -> None:
    # Runs in the child between fork and exec (serve calls ``start`` before any thread exists):
    # ask Linux to SIGTERM the server when dbkeep dies, even by SIGKILL.
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # dbkeep died before prctl took effect
            os._exit(1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateRedis:
    """A running private ``redis-server``; ``url`` is what ``DBKEEP_REDIS_URL`` should say."""

    process: subprocess.Popen[bytes]
    url: str
    directory: Path

    @classmethod
    def start(cls, var_dir: Path, *, binary: str | None = None) -> PrivateRedis:
        """Start one under ``var_dir/redis`` and wait until it answers."""
        program = binary or redis_server_binary()
        if program is None:
            raise FileNotFoundError("redis-server is not installed")
        directory = (var_dir / "redis").resolve()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        sock = directory / "redis.sock"
        argv = [
            program,
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        if len(str(sock)) <= _MAX_SOCKET_PATH:
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
            argv += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            url = f"unix://{sock}"
        else:
            port = _free_port()
            argv += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Dies with dbkeep even when it is SIGKILLed.
            preexec_fn=partial(_die_with_parent, os.getpid()),
        )
        server = cls(process=process, url=url, directory=directory)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not redis_answers(url, timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"the private redis-server did not start (see {directory.name}/redis.log "
                    "under the var directory)"
                )
            time.sleep(0.05)
        return server

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it; safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.url.startswith("unix://"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.url.removeprefix("unix://"))
