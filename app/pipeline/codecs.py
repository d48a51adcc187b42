"""Streaming decompression of stored backups, off the event loop, in bounded memory."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable

import zstandard

from app.config import Compression


class CorruptStream(Exception):
    """The stored bytes are not a complete stream of the recorded compression."""


def _decompressor(compression: Compression) -> tuple[Callable[[bytes], bytes], Callable[[], bool]]:
    if compression is Compression.zstd:
        zobj = zstandard.ZstdDecompressor().decompressobj()
        return zobj.decompress, lambda: bool(zobj.eof)
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
