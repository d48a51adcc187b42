"""Streaming decompression of stored backups, off the event loop, in bounded memory."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable

import zstandard

from app.config import Compression


class CorruptStream(Exception):
    """The stored bytes are not a complete stream of the recorded compression."""


class _ZstdFrames:
    """Decompress a zstd stream of one or more frames, knowing whether it ended on a frame end."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_frame = True
            out.append(self._obj.decompress(data))
            if not self._obj.eof:
                break
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return b"".join(out)

    def finished(self) -> bool:
        return not self._in_frame


def _decompressor(compression: Compression) -> tuple[Callable[[bytes], bytes], Callable[[], bool]]:
    if compression is Compression.zstd:
        frames = _ZstdFrames()
        return frames.decompress, frames.finished
    if compression is Compression.gzip:
        gobj = zlib.decompressobj(wbits=31)
        return gobj.decompress, lambda: gobj.eof
    return (lambda chunk: chunk), (lambda: True)


async def decompress_stream(
    chunks: AsyncIterator[bytes], compression: Compression
) -> AsyncIterator[bytes]:
    """Yield the uncompressed bytes of ``chunks``; raise ``CorruptStream`` on a truncated input."""
    decompress, finished = _decompressor(compression)
    try:
        async for chunk in chunks:
            # Decompressing a 1 MiB chunk takes milliseconds: keep it off the event loop anyway.
            out = await asyncio.to_thread(decompress, chunk) if len(chunk) > 65536 else decompress(chunk)
            if out:
                yield out
    except (zstandard.ZstdError, zlib.error) as exc:
        raise CorruptStream(f"the stored {compression.value} stream is damaged") from exc
    if not finished():
        raise CorruptStream(f"the stored {compression.value} stream is truncated")
