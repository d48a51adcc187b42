"""Encryption at rest in the age format (age-encryption.org/v1), as streaming stages.

``encryptor(recipients)`` turns the compressed dump into an age file encrypted to X25519 public
keys (``age1…``); ``decryptor(identities)`` is its mirror. A stored file is readable with no
dbkeep at all: ``age -d -i key.txt FILE | zstd -d > dump.sql``.

pyrage (the Rust ``age`` crate) does the work in a thread of its own, releasing the GIL; it
pulls its input from, and pushes its output to, the event loop through a bridge that holds at
most one input chunk and a few 1 MiB output chunks, so memory stays flat whatever the size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar, cast

import pyrage

from app.pipeline.codecs import CorruptStream, PipelineError, Stage

OUTPUT_CHUNK = 1024 * 1024
OUTPUT_DEPTH = 4
# Enough of a file to hold any header dbkeep writes (a stanza is ~120 bytes per recipient).
HEADER_PROBE_BYTES = 64 * 1024
AGE_MAGIC = b"age-encryption.org/v1\n"
_T = TypeVar("_T")


class RecipientInvalid(ValueError):
    """Text that is not an X25519 age public key (``age1…``)."""


class WrongIdentity(CorruptStream):
    """None of the identities dbkeep holds opens the file (it was encrypted to other keys)."""


def parse_recipient(text: str) -> pyrage.x25519.Recipient:
    """``text`` as an X25519 age recipient; ``RecipientInvalid`` saying what is wrong."""
    value = text.strip()
    if not value.startswith("age1") or value.startswith("age1pq"):
        raise RecipientInvalid(
            "an age recipient is an X25519 public key starting with 'age1' "
            "(as `age-keygen` prints it)"
        )
    try:
        return pyrage.x25519.Recipient.from_str(value)
    except pyrage.RecipientError:
        raise RecipientInvalid(
            "not a valid X25519 age public key (the bech32 text is damaged or incomplete)"
        ) from None


def parse_identity(text: str) -> pyrage.x25519.Identity:
    """An ``AGE-SECRET-KEY-1…`` line as an identity (``ValueError`` without the key's text)."""
    try:
        return pyrage.x25519.Identity.from_str(text.strip())
    except pyrage.IdentityError:
        raise ValueError("not an X25519 age identity (AGE-SECRET-KEY-1…)") from None


def generate_identity() -> tuple[str, str]:
    """A new X25519 key pair: (secret ``AGE-SECRET-KEY-1…``, public ``age1…``)."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def public_key_of(secret: str) -> str:
    return str(parse_identity(secret).to_public())


class _Own:
    """An error of the stream around pyrage (its source, its consumer): raised as it is."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Bridge:
    """The file-likes pyrage reads and writes in its thread, backed by the event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, source: AsyncIterator[bytes], out: asyncio.Queue[Any]
    ) -> None:
        self._loop = loop
        self._source = source
        self._out = out
        self._buf = b""
        self._pos = 0
        self._pending: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._outbuf = bytearray()
        # What went wrong on our side (the source raised, the consumer left): it is the reason
        # to report, whatever pyrage makes of it (it may even swallow a failed write).
        self.error: BaseException | None = None

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._closed:
                coro.close()
                raise OSError("the stream was closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._pending = future
        try:
            return future.result()
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise OSError("the stream stopped") from None
        finally:
            self._pending = None

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            return None

    # -- the reader pyrage calls --
    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            chunk = self._call(self._next())
            if chunk is None:
                return b""
            self._buf, self._pos = bytes(chunk), 0
        end = len(self._buf) if size is None or size < 0 else self._pos + size
        piece = self._buf[self._pos : end]
        self._pos += len(piece)
        return piece

    # -- the writer pyrage calls --
    def write(self, data: bytes) -> int:
        self._outbuf += data
        if len(self._outbuf) >= OUTPUT_CHUNK:
            self._flush_out()
        return len(data)

    def flush(self) -> None:
        """Nothing: output leaves in 1 MiB chunks, the rest at the end."""

    def _flush_out(self) -> None:
        if self._outbuf:
            data = bytes(self._outbuf)
            self._outbuf.clear()
            self._call(self._out.put(data))

    def run(self, work: Callable[[_Bridge], None]) -> None:
        """Run ``work`` (pyrage), then hand its end (None or an exception) to the consumer."""
        end: BaseException | _Own | None = None
        try:
            work(self)
            if self.error is None:
                self._flush_out()
        except BaseException as exc:
            end = exc
        if self.error is not None:
            end = _Own(self.error)
        self._put_end(end)

    def _put_end(self, end: BaseException | _Own | None) -> None:
        with self._lock:
            if self._closed:
                return
        with suppress(OSError):  # the consumer left: nobody waits for the end
            self._call(self._out.put(end))

    def close(self) -> None:
        """The consumer left: unblock the thread wherever it waits."""
        with self._lock:
            self._closed = True
            pending = self._pending
        if pending is not None:
            pending.cancel()


def _stage(
    work: Callable[[_Bridge], None], translate: Callable[[BaseException], Exception]
) -> Stage:
    @asynccontextmanager
    async def stage(source: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Any] = asyncio.Queue(OUTPUT_DEPTH)
        bridge = _Bridge(loop, source, out)
        finished = asyncio.Event()

        def target() -> None:
            try:
                bridge.run(work)
            finally:
                with suppress(RuntimeError):  # the loop is gone
                    loop.call_soon_threadsafe(finished.set)

        thread = threading.Thread(target=target, name="dbkeep-age", daemon=True)
        thread.start()

        async def drain() -> AsyncIterator[bytes]:
            while True:
                item = await out.get()
                if item is None:
                    return
                if isinstance(item, _Own):
                    raise item.error
                if isinstance(item, BaseException):
                    raise translate(item)
                yield item

        try:
            yield drain()
        finally:
            bridge.close()
            while not finished.is_set():
                while not out.empty():
                    out.get_nowait()  # a put the thread waits on completes
                with suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), 0.05)
            await asyncio.to_thread(thread.join)

    return stage


def encryptor(recipients: Sequence[str]) -> Stage:
    """A stage encrypting its input to every X25519 public key in ``recipients``."""
    if not recipients:
        raise ValueError("an encrypted stream needs at least one recipient")
    parsed = [parse_recipient(item) for item in recipients]

    def work(bridge: _Bridge) -> None:
        file = cast(io.BufferedIOBase, bridge)  # duck-typed: read/write are all pyrage calls
        pyrage.encrypt_io(file, file, parsed)

    def translate(exc: BaseException) -> Exception:
        return PipelineError("the age encryption stage failed")

    return _stage(work, translate)


def _decrypt_error(exc: BaseException) -> Exception:
    if isinstance(exc, pyrage.DecryptError):
        if "No matching keys" in str(exc):
            return WrongIdentity(
                "the file is encrypted to keys dbkeep does not hold (none of its age identities "
                "opens it): decrypt it with the identity it was made for"
            )
        return CorruptStream("the stored file is not a readable age file (its header is damaged)")
    if isinstance(exc, OSError):
        return CorruptStream("the stored age stream is damaged or truncated")
    return PipelineError("the age decryption stage failed")


def decryptor(identities: Sequence[str]) -> Stage:
    """A stage decrypting an age file with any of ``identities`` (``AGE-SECRET-KEY-1…``).

    Raises ``WrongIdentity`` when none opens it, ``CorruptStream`` when it is damaged or cut.
    """
    parsed = [parse_identity(item) for item in identities]
    if not parsed:
        raise ValueError("decrypting needs at least one identity")

    def work(bridge: _Bridge) -> None:
        file = cast(io.BufferedIOBase, bridge)
        pyrage.decrypt_io(file, file, parsed)

    return _stage(work, _decrypt_error)


def _probe(head: bytes, identities: list[pyrage.x25519.Identity]) -> None:
    try:
        pyrage.decrypt_io(io.BytesIO(head), cast(io.BufferedIOBase, _Discard()), identities)
    except pyrage.DecryptError as exc:
        raise _decrypt_error(exc) from None
    except OSError:
        return  # the header opened; the payload stops where the probe cut it


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


async def check_opens(chunks: AsyncIterator[bytes], identities: Sequence[str]) -> None:
    """Read the start of an age file and check one of ``identities`` opens its header, before
    anything is changed by a load; ``WrongIdentity`` or ``CorruptStream`` otherwise."""
    head = bytearray()
    try:
        async for chunk in chunks:
            head += chunk
            if len(head) >= HEADER_PROBE_BYTES:
                break
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    if not bytes(head).startswith(AGE_MAGIC):
        raise CorruptStream("the stored file is not an age-encrypted file")
    parsed = [parse_identity(item) for item in identities]
    await asyncio.to_thread(_probe, bytes(head[:HEADER_PROBE_BYTES]), parsed)


@asynccontextmanager
async def decrypted(
    chunks: AsyncIterator[bytes], identities: Sequence[str] | None
) -> AsyncIterator[AsyncIterator[bytes]]:
    """``chunks`` decrypted with ``identities``, or as they are when that is None."""
    if identities is None:
        yield chunks
        return
    async with decryptor(identities)(chunks) as plain:
        yield plain
