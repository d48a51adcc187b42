"""Compression stages: round trips, truncation refused, output bounded, in-process and external."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import AsyncIterator

import pytest
import zstandard

from app.pipeline import codecs
from app.pipeline.checksum import sha256_of
from app.pipeline.codecs import CorruptStream, decoder, decompress_stream, encoder
from app.pipeline.compression import Compression

SAMPLE = (b"INSERT INTO t VALUES (1,'abc'),(2,'\xf0\x9f\x90\x98');\n" * 20_000) + os.urandom(50_000)


async def _chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _run(stage: codecs.Stage, data: bytes) -> list[bytes]:
    async with stage(_chunks(data)) as out:
        return [piece async for piece in out]


@pytest.mark.parametrize("external", [True, False])
@pytest.mark.parametrize("compression", list(Compression))
async def test_round_trip(compression: Compression, external: bool) -> None:
    stored = b"".join(await _run(encoder(compression, level=3, external=external), SAMPLE))
    if compression is Compression.zstd:
        assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == SAMPLE
    elif compression is Compression.gzip:
        assert gzip.decompress(stored) == SAMPLE
    else:
        assert stored == SAMPLE
    back = b"".join(await _run(decoder(compression, external=external), stored))
    assert back == SAMPLE


@pytest.mark.parametrize("external", [True, False])
@pytest.mark.parametrize("compression", [Compression.zstd, Compression.gzip])
async def test_truncated_or_damaged_input_is_refused(
    compression: Compression, external: bool
) -> None:
    stored = b"".join(await _run(encoder(compression, level=3), SAMPLE))
    with pytest.raises(CorruptStream, match=r"truncated|damaged"):
        await _run(decoder(compression, external=external), stored[: len(stored) // 2])
    damaged = stored[:100] + bytes(b ^ 0xFF for b in stored[100:200]) + stored[200:]
    with pytest.raises(CorruptStream):
        await _run(decoder(compression, external=external), damaged)
    with pytest.raises(CorruptStream):
        await _run(decoder(compression, external=external), stored + b"trailing garbage")


async def test_concatenated_frames_and_members_decode() -> None:
    frames = zstandard.ZstdCompressor().compress(b"one\n") + zstandard.ZstdCompressor().compress(
        b"two\n"
    )
    members = gzip.compress(b"one\n") + gzip.compress(b"two\n")
    for external in (True, False):
        out = b"".join(await _run(decoder(Compression.zstd, external=external), frames))
        assert out == b"one\ntwo\n"
    assert b"".join(await _run(decoder(Compression.gzip), members)) == b"one\ntwo\n"


@pytest.mark.parametrize("compression", [Compression.zstd, Compression.gzip])
async def test_in_process_decoder_output_is_bounded(compression: Compression) -> None:
    # 64 MiB of zeros compresses to a few KiB: one input chunk must not become one 64 MiB piece.
    zeros = b"\0" * (64 * 1024 * 1024)
    if compression is Compression.zstd:
        cobj = zstandard.ZstdCompressor().compressobj()
        stored = cobj.compress(zeros) + cobj.flush()
    else:
        cobj = zlib.compressobj(6, zlib.DEFLATED, 31)
        stored = cobj.compress(zeros) + cobj.flush()
    biggest = total = 0
    async with decoder(compression, external=False)(_chunks(stored, len(stored))) as out:
        async for piece in out:
            biggest = max(biggest, len(piece))
            total += len(piece)
    assert total == len(zeros)
    assert biggest <= 2 * codecs.MAX_STEP_OUTPUT


async def test_missing_zstd_binary_falls_back_to_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert codecs.zstd_binary() is None
    stored = b"".join(await _run(encoder(Compression.zstd, level=3), SAMPLE))
    assert b"".join(await _run(decoder(Compression.zstd), stored)) == SAMPLE


async def test_decompress_stream_and_sha256_of() -> None:
    stored = gzip.compress(SAMPLE)
    out = b"".join([p async for p in decompress_stream(_chunks(stored), Compression.gzip)])
    assert out == SAMPLE
    digest, size = await sha256_of(_chunks(SAMPLE))
    import hashlib

    assert (digest, size) == (hashlib.sha256(SAMPLE).hexdigest(), len(SAMPLE))
    assert await sha256_of(_chunks(b"")) == (hashlib.sha256(b"").hexdigest(), 0)


async def test_source_errors_propagate_through_an_external_stage() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"some bytes"
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        async with encoder(Compression.zstd, level=3)(failing()) as out:
            async for _ in out:
                pass
