"""The progress of a backup or restore in the terminal: a bar on a terminal, plain lines otherwise.

The bar shows what runs (the phase), bytes of the total when there is an estimate (no total and
no bar length otherwise: never a made-up one), speed and elapsed time. While it is drawn, log
records are printed above it, not into its line: rich redirects ``sys.stderr`` for as long as the
bar is live, and the log handlers that write to the terminal are pointed at that redirection.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

PLAIN_LINE_SECONDS = 5.0


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


class ProgressReporter:
    """``with ProgressReporter("Backing up shop") as bar``; ``await bar(done)`` reports bytes,
    ``await bar.set_total(n)`` the estimate, ``bar.set_phase("loading")`` what runs now."""

    def __init__(
        self, label: str, total: int | None = None, *, stream: TextIO | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.label = label
        self.phase: str | None = None
        self.total = total
        self.done = 0
        self.last_line = 0.0
        self.bar: Progress | None = None
        self._moved: list[tuple[logging.StreamHandler[Any], Any]] = []
        if self.tty:
            # Imported only for a person at a terminal: the bar is not drawn anywhere else.
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                transient=True,
                redirect_stderr=True,
                redirect_stdout=True,
            )
            self.task = self.bar.add_task(self._description(), total=total)

    def _description(self) -> str:
        return f"{self.label}: {self.phase}" if self.phase else self.label

    def __enter__(self) -> ProgressReporter:
        if self.bar is not None:
            self.bar.__enter__()
            self._route_logs()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self._restore_logs()
            self.bar.__exit__(None, None, None)

    def _route_logs(self) -> None:
        """Point the handlers that write to the terminal at rich's stderr, which prints each
        line above the bar (``sys.stderr`` is rich's redirection while the bar is live)."""
        terminal = {id(sys.__stderr__), id(sys.__stdout__), id(self.stream)}
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and id(handler.stream) in terminal:
                self._moved.append((handler, handler.stream))
                handler.setStream(sys.stderr)

    def _restore_logs(self) -> None:
        for handler, stream in self._moved:
            handler.setStream(stream)
        self._moved.clear()

    def set_phase(self, phase: str | None) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        if self.bar is not None:
            # Drawn now, not at the next tick: a phase shorter than a tick is still seen.
            self.bar.update(self.task, description=self._description(), refresh=True)
        elif phase is not None:
            typer.echo(f"{self.label}: {phase}", err=True)
            self.last_line = time.monotonic()

    async def set_total(self, total: int | None) -> None:
        """The estimated total (an ``on_estimate`` callback)."""
        self.show(self.done, total)

    def show(self, done: int, total: int | None) -> None:
        """Bytes done and the total of this phase (None: no estimate, so no bar length)."""
        self.total = total
        if self.bar is not None:
            for task in self.bar.tasks:
                if task.id == self.task and task.total != total:
                    # rich's update() takes None as "unchanged": set "no total" on the task.
                    self.bar.reset(self.task, total=total, completed=done)
                    if total is None:
                        task.total = None
        self.update(done)

    def update(self, done: int) -> None:
        """Bytes done so far."""
        self.done = done
        if self.bar is not None:
            self.bar.update(self.task, completed=done)
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_LINE_SECONDS:
            self.last_line = now
            typer.echo(self.plain_line(), err=True)

    def plain_line(self) -> str:
        line = f"{self._description()}: {format_size(self.done)}"
        if self.total:
            line += f" of ~{format_size(self.total)}"
        return line

    async def __call__(self, done: int) -> None:
        self.update(done)
