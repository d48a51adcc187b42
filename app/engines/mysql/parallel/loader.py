"""The load scheduler: reads the dump into scripts while ``parallelism`` client sessions
load them, largest finished script first; a section that met a lock conflict runs again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence

from app.engines.base import EngineError, FailureKind, ProgressCallback, TargetSpec
from app.engines.mysql.errors import classify
from app.engines.mysql.parallel.splitter import Begin, Data, DumpSplitter, End, Event, Header
from app.engines.mysql.parallel.spool import Script, Spool, send_to_pipe
from app.pipeline.process import DEVNULL, spawn
from app.pipeline.streams import ProgressThrottle, RawStats

log = logging.getLogger(__name__)

# Spooled bytes are written in slices of about this size.
_FLUSH_BYTES = 1024 * 1024
# How much one sendfile() call moves: small enough for steady progress and quick cancellation.
_SEND_BYTES = 4 * 1024 * 1024
_MAX_PROLOGUE = 64 * 1024
# Raw bytes kept until the splitter knows whether the dump can be split at all.
_MAX_UNDECIDED = 8 * 1024 * 1024
_FK_CHECKS_OFF = re.compile(rb"FOREIGN_KEY_CHECKS\s*=\s*0", re.IGNORECASE)
_ERROR_LINE = re.compile(r"(ERROR \d+ \([0-9A-Z]{5}\) at line )(\d+)")
# Lock wait timeout and deadlock. MariaDB's DDL takes the locks of tables linked by foreign keys
# without waiting: DROP TABLE `parent` fails at once while another session drops or loads its
# child. A table's section starts with DROP TABLE IF EXISTS, so running it again is safe.
_LOCK_CONFLICT = re.compile(r"^ERROR (?:1205|1213) ", re.MULTILINE)
# A section that met a lock conflict runs again as soon as another load finishes; with no other
# load running (the lock belongs to someone else) after these waits, then the restore fails.
_LONE_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


class _LockConflict(Exception):
    """A table's section met another session's lock; it can run again from its start."""

    def __init__(self, error: EngineError) -> None:
        super().__init__(error.message)
        self.error = error


class ParallelLoad:
    """Reads the dump into scripts while ``parallelism`` client sessions load them."""

    def __init__(
        self,
        spool: Spool,
        *,
        client_argv: Sequence[str],
        parallelism: int,
        target: TargetSpec,
        tool: str,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.spool = spool
        self.argv = list(client_argv)
        self.parallelism = parallelism
        self.target = target
        self.tool = tool
        self.progress = ProgressThrottle(on_progress)
        self.loaded = 0
        self.stats = RawStats()
        self.splitter = DumpSplitter()
        self.queue: list[Script] = []
        self.reading = True
        self.wake = asyncio.Event()
        # What the reader builds
        self.header: Script | None = None  # until the first section: is the dump splittable?
        self.serial = False  # not splittable: the whole dump runs in ``verbatim``, as written
        self.verbatim: Script | None = None
        self.prologue: list[tuple[bytes, int]] = []
        self.prologue_size = 0
        self.current: Script | None = None
        self.tail: Script | None = None
        self.foreign_keys: list[bytes] = []
        self.tables = 0
        self.active = 0  # loads running now
        self.unfinished: set[Script] = set()  # enqueued, not loaded yet
        self.rest: Script | None = None  # a table's script holding the rest of the dump
        self.group: asyncio.TaskGroup | None = None

    # -- reading --

    async def read(self, raw: AsyncIterator[bytes]) -> None:
        """Split the stream into scripts; the workers start on each as soon as it begins.

        Until the first section begins, the raw bytes are kept too: a dump that can't be split
        (``serial``) is then loaded from them, byte for byte, in one session, and the splitter's
        events (rewritten CREATE TABLE statements) are never used.
        """
        self.header = self.spool.new_script("header")
        undecided: list[bytes] | None = []
        undecided_size = 0
        async for chunk in raw:
            self.stats.feed(chunk)
            if self.verbatim is not None:
                await self._add_verbatim(chunk)
                continue
            if undecided is not None:
                undecided.append(chunk)
                undecided_size += len(chunk)
                if undecided_size > _MAX_UNDECIDED:
                    self.serial = True  # still no section after megabytes: not a plain dump
            if not self.serial:
                await self._apply(self.splitter.feed(chunk))
            if undecided is not None and self.serial:
                await self._start_verbatim(undecided)
                undecided = None
            elif self.header is None:
                undecided = None  # the first section began: the dump is being split
        if self.verbatim is None:
            await self._apply(self.splitter.close())
            if not self.serial and self.header is not None:
                self.serial = True  # no sections at all: replay it as it is
            if self.serial:
                assert undecided is not None
                await self._start_verbatim(undecided)
        if not self.stats.has_trailer():
            raise EngineError(
                "incomplete dump: the backup ends before the dump's completion line",
                kind=FailureKind.permanent,
            )
        for script in self._open_scripts():
            await self.spool.flush(script)
            script.complete = True
            script.changed.set()
        self.reading = False
        self.wake.set()

    async def _start_verbatim(self, undecided: list[bytes]) -> None:
        """Load the whole dump as it is, in one session: what was read so far, then the rest."""
        if self.header is not None:
            self.spool.discard(self.header)
            self.header = None
        self.verbatim = self.spool.new_script("the whole dump, as written")
        self._enqueue(self.verbatim)
        for chunk in undecided:
            await self._add_verbatim(chunk)

    async def _add_verbatim(self, chunk: bytes) -> None:
        assert self.verbatim is not None
        lines = chunk.count(b"\n")
        self.verbatim.add(chunk, self.verbatim.lines + 1, lines)
        if self.verbatim.pending_size >= _FLUSH_BYTES:
            await self.spool.flush(self.verbatim)

    def _open_scripts(self) -> list[Script]:
        scripts = [s for s in (self.verbatim, self.current) if s is not None and s is not self.tail]
        return [s for s in scripts if not s.complete]

    async def _apply(self, events: list[Event]) -> None:
        for event in events:
            if self.serial:
                return  # the dump loads as written: nothing the splitter made is used
            if isinstance(event, Header):
                self._on_header(event)
            elif isinstance(event, Begin):
                await self._on_begin(event)
            elif isinstance(event, Data):
                target = self.current
                assert target is not None
                target.add(event.data, event.line, event.lines)
                if target.pending_size >= _FLUSH_BYTES:
                    await self.spool.flush(target)
            else:
                await self._on_end(event)

    def _on_header(self, event: Header) -> None:
        assert self.header is not None
        self.header.add(event.data, event.line)
        if not event.replayable:
            self.serial = True
        elif event.data.strip() and not event.data.startswith(b"--"):
            self.prologue.append((event.data, event.line))
            self.prologue_size += len(event.data)
            if self.prologue_size > _MAX_PROLOGUE:
                self.serial = True

    async def _on_begin(self, event: Begin) -> None:
        if self.header is not None:
            # The first section: the header is complete. Without FOREIGN_KEY_CHECKS=0 tables
            # can't load in any order; a --databases dump switches databases with USE.
            fk_checks_off = any(_FK_CHECKS_OFF.search(line) for line, _ in self.prologue)
            if not fk_checks_off or event.kind in ("database", "rest"):
                self.serial = True
                return
            self.spool.discard(self.header)
            self.header = None
        if event.kind == "rest":
            await self._on_rest(event)
            return
        if event.kind == "database":
            raise EngineError(
                "this backup holds several databases, which a parallel restore can't load: "
                "set DBKEEP_RESTORE_PARALLELISM=1",
                kind=FailureKind.permanent,
            )
        if event.kind == "table":
            self.tables += 1
            script = self.spool.new_script(event.name)
            script.retryable = True
            self._add_prologue(script)
            self.current = script
            self._enqueue(script)
            return
        self.current = self._tail()

    async def _on_rest(self, event: Begin) -> None:
        """The splitter gave up: the rest of the dump follows, as written, in this session."""
        script = self.current
        assert script is not None
        log.info("restore.split_stopped line=%d: the rest loads in one session", event.line)
        if script is self.tail:
            return  # the tail runs last, alone, in dump order: it simply goes on
        # A table's section: its session keeps what the section set (saved variables), so the
        # rest stays in it, but runs only once everything before it has loaded; the views,
        # routines and events read so far run now, before it, in dump order.
        script.retryable = False
        script.barrier = script.size + script.pending_size
        self.rest = script
        if self.tail is not None:
            tail, self.tail = self.tail, None
            await self.spool.flush(tail)
            tail.complete = True
            self._enqueue(tail)
        if self.group is not None:
            self.group.create_task(self.work())  # a session slot waits at the barrier
        self._release_rest()

    def _release_rest(self) -> None:
        if self.rest is not None and not self.unfinished - {self.rest}:
            self.rest.released.set()

    def _tail(self) -> Script:
        if self.tail is None:
            self.tail = self.spool.new_script("views, routines and events")
            self._add_prologue(self.tail)
        return self.tail

    def _add_prologue(self, script: Script) -> None:
        for line, line_no in self.prologue:
            script.add(line, line_no)

    async def _on_end(self, event: End) -> None:
        if self.serial or self.current is None:
            return
        script = self.current
        if event.foreign_keys:
            self.foreign_keys.append(event.foreign_keys)
        if script is self.tail:
            return
        script.add(event.epilogue, event.epilogue_line)
        await self.spool.flush(script)
        script.complete = True
        script.changed.set()
        self.current = None

    def _enqueue(self, script: Script) -> None:
        self.unfinished.add(script)
        self.queue.append(script)
        self.wake.set()

    # -- loading --

    async def work(self) -> None:
        """One session slot: load scripts until none are left."""
        while (script := await self._next()) is not None:
            try:
                await self._load_counted(script)
            except _LockConflict as conflict:
                self._retry_later(script, conflict.error)
                continue
            # A finished load may have released what a waiting section's DDL needs.
            for waiting in self.queue:
                waiting.not_before = 0.0
            self.wake.set()

    async def _load_counted(self, script: Script) -> None:
        self.active += 1
        try:
            await self.load(script)
        finally:
            self.active -= 1

    def _retry_later(self, script: Script, error: EngineError) -> None:
        if self.active == 0:
            # Nothing of ours holds the lock: someone else does. Wait a little, then give up.
            if script.lone_retries >= len(_LONE_RETRY_DELAYS):
                raise error
            delay = _LONE_RETRY_DELAYS[script.lone_retries]
            script.lone_retries += 1
        else:
            delay = _LONE_RETRY_DELAYS[-1]  # or sooner: when one of the other loads finishes
        log.info("restore.section_retry name=%s reason=lock conflict", script.name)
        script.not_before = asyncio.get_running_loop().time() + delay
        self._enqueue(script)

    async def _next(self) -> Script | None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = [s for s in self.queue if s.not_before <= now]
            if ready:
                # Largest finished script first (they can't be split, so big ones go early);
                # otherwise the one being written, followed as it grows.
                done = [s for s in ready if s.complete]
                script = max(done, key=lambda s: s.size) if done else ready[0]
                self.queue.remove(script)
                return script
            if not self.queue and not self.reading:
                return None
            self.wake.clear()
            if self.queue:
                wait = min(s.not_before for s in self.queue) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
            else:
                await self.wake.wait()

    async def load(self, script: Script) -> None:
        """Run one client on ``script``; raise ``EngineError`` with the server's reason."""
        read_fd, write_fd = self.spool.pipe()
        async with spawn(self.argv, stdin=read_fd, stdout=DEVNULL) as child:
            self.spool.close(read_fd)
            sent_all = await self._pump(script, write_fd)
            self.spool.close(write_fd)  # end of file: the client finishes and exits
            code = await child.wait()
            stderr = child.stderr_tail.text()
        if code == 0 and not sent_all:
            raise EngineError(
                f"{self.tool} stopped reading the dump before its end", kind=FailureKind.permanent
            )
        if code != 0:
            error = classify(
                code,
                _dump_line_numbers(stderr, script),
                tool=self.tool,
                user=self.target.user,
                password=self.target.password,
            )
            if script.retryable and _LOCK_CONFLICT.search(stderr):
                raise _LockConflict(error)
            raise error
        self.spool.discard(script)
        self.unfinished.discard(script)
        self._release_rest()
        log.debug("restore.section_loaded name=%s bytes=%d", script.name, script.size)

    async def _pump(self, script: Script, write_fd: int) -> bool:
        """Feed ``script`` to the client as it grows; False if the client stopped reading."""
        sent = 0
        while True:
            size = script.size
            if script.barrier is not None and not script.released.is_set():
                size = min(size, script.barrier)
                if sent >= size:
                    await script.released.wait()
                    continue
            if sent < size:
                count = min(size - sent, _SEND_BYTES)
                moved = await self.spool.run(send_to_pipe, write_fd, script.fd, sent, count)
                if moved < count:
                    return False  # the client left: its exit status says why
                sent += moved
                if sent > script.sent_before:  # a retry counts only what it adds
                    self.loaded += sent - script.sent_before
                    script.sent_before = sent
                await self.progress.update(self.loaded)
                continue
            if script.complete:
                return True
            script.changed.clear()
            await script.changed.wait()

    def finishing_script(self) -> Script | None:
        """What runs once every table is in: foreign keys, then views, routines and events."""
        if self.serial:
            return None
        if self.foreign_keys:
            tail = self._tail()
            # After the dump's footer, which restores FOREIGN_KEY_CHECKS: no re-check of the rows.
            tail.add(b"SET SESSION foreign_key_checks = 0;\n", 1)
            for statement in self.foreign_keys:
                tail.add(statement, 1)
        return self.tail


def _dump_line_numbers(stderr: str, script: Script) -> str:
    """Rewrite the client's "at line N" (of the script) into the dump's line number."""
    return _ERROR_LINE.sub(lambda m: f"{m.group(1)}{script.dump_line(int(m.group(2)))}", stderr)
