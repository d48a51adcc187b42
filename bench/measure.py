"""Run a process tree and measure it: wall time, CPU of every process in it, peak memory of each.

CPU comes from ``getrusage(RUSAGE_CHILDREN)`` before and after: it counts every descendant that
was reaped (the tools dbkeep starts are reaped by dbkeep, which we reap), so it is exact. Peak
memory is each process's ``VmHWM`` (the kernel's high-water mark of its resident set), read from
``/proc`` ten times a second while it runs; the last reading before exit is kept.
The database server's CPU time is sampled too: most of a restore's work happens there.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

POLL_SECONDS = 0.1


@dataclass
class Measurement:
    wall: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    server_cpu: float | None = None  # mariadbd user+sys during the run (shared server: noisy)
    peak_rss: dict[str, int] = field(default_factory=dict)  # by process name, bytes
    returncodes: list[int] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys

    def peak(self, name: str) -> int:
        return self.peak_rss.get(name, 0)


def _hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return comm.read().decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def server_process() -> psutil.Process | None:
    """The local mariadbd/mysqld, if we may read its CPU times."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in {"mariadbd", "mysqld"}:
            try:
                proc.cpu_times()
            except psutil.Error:
                return None
            return proc
    return None


def _server_cpu(server: psutil.Process | None) -> float | None:
    if server is None:
        return None
    try:
        times = server.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def measure(start: Callable[[], list[subprocess.Popen[bytes]]]) -> Measurement:
    """Call ``start`` (which launches processes), wait for all of them, and measure the tree."""
    server = server_process()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _server_cpu(server)
    began = time.perf_counter()
    roots = start()
    peaks: dict[int, tuple[str, int]] = {}
    pending = list(roots)
    while pending:
        watched = {p.pid for p in pending}
        for root in pending:
            try:
                watched |= {c.pid for c in psutil.Process(root.pid).children(recursive=True)}
            except psutil.NoSuchProcess:
                continue
        for pid in watched:
            hwm = _hwm(pid)
            name = _name(pid)
            if hwm is not None and name is not None:
                # A pid's name changes once when a child execs: keep the newest.
                peaks[pid] = (name, max(hwm, peaks.get(pid, (name, 0))[1]))
        pending = [p for p in pending if p.poll() is None]
        if pending:
            time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = _server_cpu(server)
    result = Measurement(
        wall=wall,
        cpu_user=after.ru_utime - before.ru_utime,
        cpu_sys=after.ru_stime - before.ru_stime,
        returncodes=[p.returncode for p in roots],
    )
    if server_before is not None and server_after is not None:
        result.server_cpu = server_after - server_before
    for name, peak in peaks.values():
        result.peak_rss[name] = max(result.peak_rss.get(name, 0), peak)
    return result


def open_private(path: str) -> int:
    """A new 0600 file for writing (outputs and logs of the measured commands)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
