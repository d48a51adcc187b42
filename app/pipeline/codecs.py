"""Compression and decompression as streaming stages, off the event loop, in bounded memory.

A stage turns an async stream of byte chunks into another. Two kinds exist:

* an external ``zstd`` process (preferred when installed: it runs on its own core, and pipes bound
  what is in flight whatever the compression ratio);
* in-process ``zstandard``/``zlib`` codecs run in a worker thread (they release the GIL), with a
  read-ahead queue so the producer keeps running while a chunk is being (de)compressed.

Decoders refuse a stream that stops before its end (``CorruptStream``) so a truncated backup is
never mistaken for a complete one.
"""

from __future__ import annotations

import asyncio
import shutil
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from app.pipeline import splice
from app.pipeline.compression import Compression
from app.pipeline.fdio import FdIO, fd_io
from app.pipeline.process import Child, spawn
from app.pipeline.splice import OnMoved, PipeSource

# Upper bound on what one decoder step may produce, however compressible the input is.
MAX_STEP_OUTPUT = 1024 * 1024
READAHEAD_DEPTH = 4
_Out = TypeVar("_Out", bytes, int)

Stage = Callable[[AsyncIterator[bytes]], AbstractAsyncContextManager[AsyncIterator[bytes]]]

# The in-process zstd codecs import ``zstandard`` when first made: a backup through the zstd
# tool never needs it, and it is ~0.5 MiB of the CLI's peak memory (docs/benchmarks.md).
if TYPE_CHECKING:
    import zstandard


class CorruptStream(Exception):
    """The stored bytes are not a complete stream of the recorded compression."""


class PipelineError(Exception):
    """A compression stage failed for a reason unrelated to its input (e.g. the tool died)."""


class _Codec(Protocol):
    def push(self, data: bytes) -> None:
        """Hand over more input."""

    def pull(self) -> bytes:
        """Process pending input; return up to about ``MAX_STEP_OUTPUT`` bytes, b"" when done."""

    def finish(self) -> bytes:
        """End of input: return what is left; raise ``CorruptStream`` if the input was cut."""


class _Compressor:
    def __init__(self, compression: Compression, level: int) -> None:
        if compression is Compression.zstd:
            import zstandard

            self._obj: zstandard.ZstdCompressionObj | zlib._Compress = zstandard.ZstdCompressor(
                level=level
            ).compressobj()
        else:
            self._obj = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
        self._pending = b""

    def push(self, data: bytes) -> None:
        self._pending = data

    def pull(self) -> bytes:
        # Compressed output is no larger than the input chunk (plus a few bytes): one step.
        data, self._pending = self._pending, b""
        return self._obj.compress(data) if data else b""

    def finish(self) -> bytes:
        return self._obj.flush()


class _GzipDecoder:
    """Gzip members one after another (what ``cat a.gz b.gz`` makes), output capped per step."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._in_member = False

    def push(self, data: bytes) -> None:
        self._pending = data

    def pull(self) -> bytes:
        out = b""
        while self._pending and not out:
            self._in_member = True
            try:
                out = self._obj.decompress(self._pending, MAX_STEP_OUTPUT)
            except zlib.error as exc:
                raise CorruptStream("the stored gzip stream is damaged") from exc
            self._pending = self._obj.unconsumed_tail
            if self._obj.eof:
                self._pending = self._obj.unused_data + self._pending
                self._obj = zlib.decompressobj(wbits=31)
                self._in_member = False
        return out

    def finish(self) -> bytes:
        if self._in_member:
            raise CorruptStream("the stored gzip stream is truncated")
        return b""


_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE_MAGIC = 0xFFFFFFF0, 0x184D2A50


class _ZstdDecoder:
    """A zstd stream of one or more frames, fed to the library one block at a time.

    The library's ``decompressobj`` has no output cap, so a few KiB of highly compressible input
    could expand to gigabytes in one call. Walking the frame format (RFC 8878) lets us hand it one
    block (at most 128 KiB of output) at a time, and tells exactly whether the input stopped on a
    frame boundary.
    """

    def __init__(self) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._buf = bytearray()
        self._pos = 0
        self._state = "magic"  # magic -> header -> block ... -> checksum -> magic
        self._checksum = False

    def push(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def _take(self, size: int) -> bytes | None:
        if len(self._buf) - self._pos < size:
            return None
        unit = bytes(self._buf[self._pos : self._pos + size])
        self._pos += size
        return unit

    def _peek(self, size: int) -> bytes | None:
        if len(self._buf) - self._pos < size:
            return None
        return bytes(self._buf[self._pos : self._pos + size])

    def _feed(self, unit: bytes) -> bytes:
        try:
            return self._obj.decompress(unit)
        except self._error as exc:
            raise CorruptStream("the stored zstd stream is damaged") from exc

    def _step(self) -> bytes | None:
        """Consume one unit of input; None when more input is needed."""
        if self._state == "magic":
            head = self._peek(4)
            if head is None:
                return None
            magic = int.from_bytes(head, "little")
            if magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                frame = self._peek(8)
                if frame is None:
                    return None
                size = int.from_bytes(frame[4:8], "little")
                return b"" if self._take(8 + size) is not None else None
            if magic != _ZSTD_MAGIC:
                raise CorruptStream("the stored zstd stream is damaged")
            self._state = "header"
            return b""
        if self._state == "header":
            descriptor = self._peek(5)
            if descriptor is None:
                return None
            fhd = descriptor[4]
            single_segment = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            did_size = (0, 1, 2, 4)[fhd & 0x03]
            fcs_size = (1 if single_segment else 0, 2, 4, 8)[fhd >> 6]
            unit = self._take(5 + (0 if single_segment else 1) + did_size + fcs_size)
            if unit is None:
                return None
            self._state = "block"
            return self._feed(unit)
        if self._state == "block":
            header = self._peek(3)
            if header is None:
                return None
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise CorruptStream("the stored zstd stream is damaged")
            unit = self._take(3 + (1 if kind == 1 else size))
            if unit is None:
                return None
            out = self._feed(unit)
            if last:
                self._state = "checksum" if self._checksum else "magic"
                if not self._checksum:
                    self._end_frame()
            return out
        unit = self._take(4)  # content checksum
        if unit is None:
            return None
        out = self._feed(unit)
        self._end_frame()
        self._state = "magic"
        return out

    def _end_frame(self) -> None:
        if not self._obj.eof:
            raise CorruptStream("the stored zstd stream is damaged")
        self._obj = self._dctx.decompressobj()

    def pull(self) -> bytes:
        out: list[bytes] = []
        produced = 0
        while produced < MAX_STEP_OUTPUT:
            piece = self._step()
            if piece is None:
                break
            out.append(piece)
            produced += len(piece)
        return b"".join(out)

    def finish(self) -> bytes:
        if self._state != "magic" or self._pos < len(self._buf):
            raise CorruptStream("the stored zstd stream is truncated")
        return b""


@asynccontextmanager
async def readahead(
    source: AsyncIterator[bytes], depth: int = READAHEAD_DEPTH
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Keep pulling ``source`` in a task, up to ``depth`` chunks ahead of the consumer."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(depth)

    async def fill() -> None:
        try:
            async for chunk in source:
                await queue.put(chunk)
        except Exception as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)
            return
        await queue.put(None)

    async def drain() -> AsyncIterator[bytes]:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    task = asyncio.create_task(fill())
    try:
        yield drain()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def _passthrough(source: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    yield source


def _in_process(make: Callable[[], _Codec]) -> Stage:
    @asynccontextmanager
    async def stage(source: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
        async with readahead(source) as chunks:
            yield _run_codec(chunks, make())

    return stage


async def _run_codec(chunks: AsyncIterator[bytes], codec: _Codec) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        codec.push(chunk)
        while out := await asyncio.to_thread(codec.pull):
            yield out
    if last := await asyncio.to_thread(codec.finish):
        yield last


def _external(argv: list[str], *, decoding: bool, tool: str) -> Stage:
    @asynccontextmanager
    async def stage(source: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
        async with _run_external(
            argv,
            lambda io, fd: _feed(source, io, fd),
            read=FdIO.chunks,
            decoding=decoding,
            tool=tool,
        ) as out:
            yield out

    return stage


@asynccontextmanager
async def _run_external(
    argv: list[str],
    feed: Callable[[FdIO, int], Coroutine[Any, Any, None]],
    *,
    read: Callable[[FdIO, int], AsyncIterator[_Out]],
    decoding: bool,
    tool: str,
) -> AsyncIterator[AsyncIterator[_Out]]:
    """Run ``argv`` with ``feed(io, stdin_fd)`` writing its input; yield its output.

    ``read(io, fd)`` reads the output: ``FdIO.chunks`` yields it, ``FdIO.pumped`` hands it to a
    consumer in the I/O thread and yields byte counts.
    """
    # Nesting matters: the child dies (spawn exits) before fd_io joins threads and closes fds.
    async with fd_io() as io:
        in_read, in_write = io.pipe()
        out_read, out_write = io.pipe()
        async with spawn(argv, stdin=in_read, stdout=out_write) as child:
            io.close(in_read)
            io.close(out_write)
            feeder = asyncio.create_task(feed(io, in_write))
            try:
                yield _drain(child, read(io, out_read), feeder, decoding=decoding, tool=tool)
            finally:
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)


class SplicedStage(Protocol):
    def __call__(
        self,
        source: PipeSource,
        on_moved: OnMoved,
        read: Callable[[FdIO, int], AsyncIterator[_Out]],
    ) -> AbstractAsyncContextManager[AsyncIterator[_Out]]: ...


def spliced_encoder(compression: Compression, *, level: int) -> SplicedStage | None:
    """A zstd stage fed straight from a child's pipe (``splice``), or None where it can't be.

    The uncompressed dump never enters our process; ``on_moved`` still sees every byte count
    and the first and last bytes (see ``app.pipeline.splice``). ``read(io, fd)`` reads the
    compressed output: ``FdIO.chunks``, or ``FdIO.pumped`` to consume it in the I/O thread.
    """
    binary = zstd_binary() if compression is Compression.zstd else None
    if binary is None or not splice.supported():
        return None
    argv = [binary, f"-{level}", "-q", "-c"]

    def stage(
        source: PipeSource, on_moved: OnMoved, read: Callable[[FdIO, int], AsyncIterator[_Out]]
    ) -> AbstractAsyncContextManager[AsyncIterator[_Out]]:
        async def feed(io: FdIO, fd: int) -> None:
            try:
                await splice.forward(io, source.fd, fd, on_moved)
            except (BrokenPipeError, ConnectionResetError):
                return  # zstd left early: its exit status says why
            except asyncio.CancelledError:
                raise  # a splice may still be in flight: fd_io closes the descriptor after it
            except BaseException:
                io.close(fd)
                raise
            io.close(fd)

        return _run_external(argv, feed, read=read, decoding=False, tool="zstd")

    return stage


async def _feed(source: AsyncIterator[bytes], io: FdIO, fd: int) -> None:
    try:
        async for chunk in source:
            await io.write_all(fd, chunk)
    except (BrokenPipeError, ConnectionResetError):
        return  # the tool left early: its exit status says why
    except asyncio.CancelledError:
        raise  # a write may still be in flight: fd_io closes the descriptor after it
    except BaseException:
        io.close(fd)  # end of file, so the reader is not left waiting; then report the error
        raise
    io.close(fd)


async def _drain(
    child: Child,
    chunks: AsyncIterator[_Out],
    feeder: asyncio.Task[None],
    *,
    decoding: bool,
    tool: str,
) -> AsyncIterator[_Out]:
    async for chunk in chunks:
        yield chunk
    await feeder  # re-raises what the source raised
    code = await child.wait()
    if code != 0:
        reason = child.stderr_tail.last_line()
        if decoding:
            if "premature end" in reason or "truncated" in reason.lower():
                raise CorruptStream(f"the stored {tool} stream is truncated")
            raise CorruptStream(f"the stored {tool} stream is damaged")
        raise PipelineError(f"the {tool} compressor failed (exit status {code})")


def zstd_binary() -> str | None:
    """The ``zstd`` command, when installed."""
    return shutil.which("zstd")


def encoder(compression: Compression, *, level: int, external: bool = True) -> Stage:
    """A stage compressing with ``compression`` at ``level`` (ignored for ``none``)."""
    if compression is Compression.none:
        return _passthrough
    binary = zstd_binary() if external and compression is Compression.zstd else None
    if binary:
        return _external([binary, f"-{level}", "-q", "-c"], decoding=False, tool="zstd")
    return _in_process(lambda: _Compressor(compression, level))


def decoder(compression: Compression, *, external: bool = True) -> Stage:
    """A stage decompressing ``compression``; raises ``CorruptStream`` on damaged input."""
    if compression is Compression.none:
        return _passthrough
    if compression is Compression.gzip:
        return _in_process(_GzipDecoder)
    binary = zstd_binary() if external else None
    if binary:
        return _external([binary, "-d", "-q", "-c"], decoding=True, tool="zstd")
    return _in_process(_ZstdDecoder)


async def decompress_stream(
    chunks: AsyncIterator[bytes], compression: Compression
) -> AsyncIterator[bytes]:
    """Yield the uncompressed bytes of ``chunks``; raise ``CorruptStream`` on a truncated input."""
    async with decoder(compression)(chunks) as out:
        async for piece in out:
            yield piece
