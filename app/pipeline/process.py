"""Child processes that can never outlive us: own process group, stderr tail, kill on exit.

Cancelling an asyncio task does not stop its child (nor does Python's exit), so every child is
started in a new session and, unless it exited by itself, its whole process group is sent SIGTERM
then SIGKILL and reaped before ``spawn`` returns or raises. When we are killed outright (SIGKILL,
the OOM killer) none of that runs, so the kernel is also asked to kill each child when its parent
dies: through ``setpriv --pdeathsig`` rather than a ``preexec_fn``, which is unsafe once threads
exist (the pipeline's I/O threads do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import IO, Any

from app.pipeline.tail import TailBuffer

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
STDERR_TAIL_BYTES = 8192
# How much a child's stdout may buffer in our process before its pipe applies back-pressure.
STREAM_LIMIT = 1024 * 1024
TERM_GRACE_SECONDS = 5.0

StdSpec = int | IO[Any] | None

# Environment variables a child must not inherit: the target URL (with its password) lives in
# DBKEEP_TARGET_URL, and MYSQL_PWD would be read by the clients and shown in /proc/PID/environ.
_SECRET_ENV_MARKERS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "_PWD", "CREDENTIAL")
_SECRET_ENV_PREFIXES = ("DBKEEP_", "MYSQL_", "MARIADB_")


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours, minus anything that could carry a secret."""
    source = os.environ if base is None else base
    return {
        name: value
        for name, value in source.items()
        if not name.upper().startswith(_SECRET_ENV_PREFIXES)
        and not any(marker in name.upper() for marker in _SECRET_ENV_MARKERS)
    }


class ToolNotFound(Exception):
    """The program could not be executed (missing, not executable)."""

    def __init__(self, program: str) -> None:
        super().__init__(f"{program} could not be executed")
        self.program = program


class Child:
    """A running child process and the tail of its stderr, read concurrently."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr_tail: TailBuffer) -> None:
        self.proc = proc
        self.stderr_tail = stderr_tail
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.proc.stdin is not None, "child started without stdin=PIPE"
        return self.proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc.stdout is not None, "child started without stdout=PIPE"
        return self.proc.stdout

    def _start_stderr_reader(self) -> None:
        if self.proc.stderr is not None:
            self._stderr_task = asyncio.create_task(_drain_into(self.proc.stderr, self.stderr_tail))

    async def wait(self) -> int:
        """Wait for exit and for stderr to reach end of file; return the exit status."""
        code = await self.proc.wait()
        if self._stderr_task is not None:
            # A grandchild holding stderr open must not hang us: the group is killed on exit.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), timeout=5)
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        # Only while the leader is unreaped: its pid (= the group id) can't be reused until then.
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    async def kill_group(self, grace: float | None = None) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap the leader."""
        grace = TERM_GRACE_SECONDS if grace is None else grace
        try:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout=grace)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await self.proc.wait()
        except BaseException:
            # Cancelled again while cleaning up: still make sure nothing survives.
            self._signal_group(signal.SIGKILL)
            raise
        finally:
            if self._stderr_task is not None and not self._stderr_task.done():
                self._stderr_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._stderr_task


async def _drain_into(stream: asyncio.StreamReader, tail: TailBuffer) -> None:
    while chunk := await stream.read(65536):
        tail.feed(chunk)


def _with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """Prefix ``setpriv --pdeathsig KILL`` so the child dies if we are SIGKILLed.

    A new session protects the child from signals aimed at our group, which also means nothing
    stops it when we die without cleaning up (a worker killed by the OOM killer or ``kill -9``).
    setpriv (util-linux) sets PR_SET_PDEATHSIG and then execs the tool itself, so argv and
    /proc/PID/cmdline are the tool's own; without setpriv the child runs as is.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if program is None or not os.access(program, os.X_OK) or os.path.isdir(program):
        raise ToolNotFound(os.path.basename(argv[0]))
    return [setpriv, "--pdeathsig", "KILL", "--", program, *argv[1:]]


@asynccontextmanager
async def spawn(
    argv: Sequence[str],
    *,
    stdin: StdSpec = DEVNULL,
    stdout: StdSpec = PIPE,
    env: Mapping[str, str] | None = None,
    stderr_tail_bytes: int = STDERR_TAIL_BYTES,
    die_with_parent: bool = True,
) -> AsyncIterator[Child]:
    """Start ``argv`` (no shell) in its own session; on leaving, kill its group unless it exited.

    Raises ``ToolNotFound`` when the program can't be executed.
    """
    command = _with_parent_death_signal(argv) if die_with_parent else list(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=stdin,
            stdout=stdout,
            stderr=PIPE,
            env=dict(env) if env is not None else child_env(),
            start_new_session=True,
            limit=STREAM_LIMIT,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise ToolNotFound(os.path.basename(argv[0])) from exc
    child = Child(proc, TailBuffer(stderr_tail_bytes))
    child._start_stderr_reader()
    try:
        yield child
    finally:
        if proc.returncode is None:
            await child.kill_group()
        elif child._stderr_task is not None and not child._stderr_task.done():
            child._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await child._stderr_task


async def close_stdin(child: Child) -> None:
    """Send end of file to the child; a child that already left is not an error."""
    stdin = child.proc.stdin
    if stdin is None or stdin.is_closing():
        return
    stdin.close()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        await stdin.wait_closed()


async def run_capture(
    argv: Sequence[str], *, input_bytes: bytes = b"", time_limit: float = 30.0
) -> tuple[int, bytes, str]:
    """Run a short command; return (exit status, stdout, stderr tail). Kills it past the limit."""
    async with spawn(argv, stdin=PIPE, stdout=PIPE) as child:
        async with asyncio.timeout(time_limit):
            out, _ = await asyncio.gather(child.stdout.read(), _write_all(child, input_bytes))
            code = await child.wait()
        return code, out, child.stderr_tail.text()


async def _write_all(child: Child, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            child.stdin.write(data)
            await child.stdin.drain()
    await close_stdin(child)
