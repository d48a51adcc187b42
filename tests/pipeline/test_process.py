"""Children never outlive us: cancellation and errors kill the whole process group."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from app.pipeline import process
from app.pipeline.process import PIPE, child_env, run_capture, spawn
from app.pipeline.tail import TailBuffer

# A child that starts a grandchild in its own process group, prints both pids, then waits.
FAMILY = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _wait_gone(pid: int) -> None:
    async with asyncio.timeout(10):
        while _alive(pid):
            await asyncio.sleep(0.05)


async def test_cancelling_kills_the_whole_group() -> None:
    started: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    async def run() -> None:
        async with spawn([sys.executable, "-c", FAMILY], stdout=PIPE) as child:
            grandchild = int((await child.stdout.readline()).decode())
            await started.put((child.pid, grandchild))
            await child.wait()

    task = asyncio.create_task(run())
    pid, grandchild = await asyncio.wait_for(started.get(), 10)
    assert _alive(pid) and _alive(grandchild)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)
    await _wait_gone(grandchild)


async def test_an_error_inside_kills_a_child_that_ignores_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "TERM_GRACE_SECONDS", 0.3)  # SIGKILL follows quickly
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    with pytest.raises(RuntimeError):
        async with spawn([sys.executable, "-c", code], stdout=PIPE) as child:
            await child.stdout.readline()
            child_pid = child.pid
            raise RuntimeError("boom")
    assert not _alive(child_pid)


async def test_stderr_is_read_concurrently_and_only_its_tail_kept() -> None:
    code = (
        "import sys\n"
        "for i in range(200000): sys.stderr.write(f'line {i}\\n')\n"
        "sys.stderr.write('LAST\\n')\n"
    )
    status, _, tail = await run_capture([sys.executable, "-c", code], time_limit=30)
    assert status == 0
    assert tail.endswith("LAST\n") and len(tail) <= 8192


def test_tail_buffer() -> None:
    tail = TailBuffer(10)
    tail.feed(b"hello ")
    tail.feed(b"world\n\n")
    assert tail.data == b"lo world\n\n"
    assert tail.last_line() == "lo world"
    tail.feed(b"x" * 100)
    assert tail.data == b"x" * 10
    assert TailBuffer().last_line() == ""


def test_child_environment_has_no_secrets() -> None:
    env = child_env(
        {
            "PATH": "/usr/bin",
            "DBKEEP_TARGET_URL": "mysql://u:pw@h/db",
            "MYSQL_PWD": "pw",
            "SOME_API_TOKEN": "t",
            "LANG": "C.UTF-8",
        }
    )
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8"}


async def test_children_do_not_inherit_the_target_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBKEEP_TARGET_URL", "mysql://u:topsecret@h/db")
    code, out, _ = await run_capture([sys.executable, "-c", "import os; print(dict(os.environ))"])
    assert code == 0 and b"topsecret" not in out
    assert os.environ["DBKEEP_TARGET_URL"]


PARENT = (
    "import asyncio, sys\n"
    "from app.pipeline.process import spawn\n"
    "async def main():\n"
    "    async with spawn(['sleep', '300']) as child:\n"
    "        print(child.pid, flush=True)\n"
    "        await child.wait()\n"
    "asyncio.run(main())\n"
)


async def test_children_die_when_the_parent_is_killed_outright() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, stdout=PIPE, cwd=Path(__file__).resolve().parents[2]
    )
    assert parent.stdout is not None
    child = int(await asyncio.wait_for(parent.stdout.readline(), 10))
    async with asyncio.timeout(10):  # setpriv execs the tool a moment after the fork
        while not Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].endswith(b"sleep"):
            await asyncio.sleep(0.01)
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    await parent.wait()
    await _wait_gone(child)


async def test_a_missing_program_is_reported() -> None:
    with pytest.raises(process.ToolNotFound) as caught:
        async with spawn(["/nonexistent/tool", "--version"]):
            pass
    assert caught.value.program == "tool"
    for die_with_parent in (True, False):
        with pytest.raises(process.ToolNotFound):
            async with spawn(["no-such-tool-anywhere"], die_with_parent=die_with_parent):
                pass
