"""Uploaded dumps: what a body is, and the checks it passes on its way into storage.

An upload streams through the same stages as a dump dbkeep takes, with two checks in front:

    body → magic bytes match the declared format → decompress (a truncated gzip/zstd stream is
    refused) → the first KiB is UTF-8 text without NUL → ``store_dump`` (recompressed with the
    configured compression, SHA-256, the storage writer) → the engine's verdict on completeness.

Nothing here keeps anything: the caller commits the writer only when every check passed.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.backups.naming import SUFFIX
from app.engines.base import DatabaseEngine, DumpVerdict, EngineError
from app.errors import UnsupportedMediaType, ValidationFailed
from app.pipeline.codecs import CorruptStream, decoder
from app.pipeline.compression import Compression
from app.pipeline.streams import RawStats, StoredStats, store_dump
from app.storage.base import StorageWriter

# Content-Type → how the body is compressed; ``application/octet-stream`` says it with the
# ``filename`` query parameter's suffix instead.
MEDIA_TYPES = {
    "application/sql": Compression.none,
    "application/gzip": Compression.gzip,
    "application/x-gzip": Compression.gzip,
    "application/zstd": Compression.zstd,
}
OCTET_STREAM = "application/octet-stream"
ACCEPTED_MEDIA_TYPES = (*MEDIA_TYPES, OCTET_STREAM)

_MAGIC = {Compression.gzip: b"\x1f\x8b", Compression.zstd: b"\x28\xb5\x2f\xfd"}
_PG_DUMP_MAGIC = b"PGDMP"  # a pg_dump custom-format archive
_MAGIC_BYTES = 5
TEXT_PROBE_BYTES = 1024
_DESCRIBED = {
    Compression.none: "plain SQL",
    Compression.gzip: "gzip-compressed",
    Compression.zstd: "zstd-compressed",
}


def compression_from_name(filename: str) -> Compression | None:
    """The compression a file name's suffix says (``.sql``, ``.sql.gz``, ``.sql.zst``)."""
    lowered = filename.lower()
    return next((kind for kind, suffix in SUFFIX.items() if lowered.endswith(suffix)), None)


def upload_compression(content_type: str | None, filename: str | None) -> Compression:
    """How an upload says its body is compressed: its Content-Type, or, for
    ``application/octet-stream``, the suffix of ``filename``. 415 / 422 otherwise."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in MEDIA_TYPES:
        return MEDIA_TYPES[mime]
    if mime != OCTET_STREAM:
        raise UnsupportedMediaType(
            "Send the dump as the request body with Content-Type application/sql, "
            "application/gzip or application/zstd (or application/octet-stream and "
            "filename=NAME.sql|.sql.gz|.sql.zst)."
        )
    if not filename:
        raise ValidationFailed(
            "With Content-Type application/octet-stream, say what the file is with "
            "filename=NAME.sql, NAME.sql.gz or NAME.sql.zst.",
            errors={"filename": ["required with application/octet-stream"]},
        )
    compression = compression_from_name(filename)
    if compression is None:
        raise ValidationFailed(
            "The file name must end in .sql, .sql.gz or .sql.zst.",
            errors={"filename": ["must end in .sql, .sql.gz or .sql.zst"]},
        )
    return compression


async def _as_declared(chunks: AsyncIterator[bytes], declared: Compression) -> AsyncIterator[bytes]:
    """``chunks``, once their first bytes showed they are what ``declared`` says."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= _MAGIC_BYTES:
            break
    if not head:
        raise ValidationFailed("The upload is empty: send the dump as the request body.")
    if head.startswith(_PG_DUMP_MAGIC):
        raise ValidationFailed("This is a pg_dump archive; only a PostgreSQL source can take one.")
    found = next((kind for kind, magic in _MAGIC.items() if head.startswith(magic)), None)
    if found is not declared and (found is not None or declared is not Compression.none):
        actual = _DESCRIBED[found] if found else "not compressed"
        raise UnsupportedMediaType(
            f"The upload was sent as {_DESCRIBED[declared]} but its content is {actual}; "
            "send it with the Content-Type (or file name) that matches it."
        )
    yield head
    async for chunk in chunks:
        yield chunk


async def _sql_text(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``raw`` (the uncompressed dump), once its first KiB showed it is text: UTF-8 (a
    character cut at the probe's end is fine) and no NUL byte, as every SQL dump is."""
    probe = b""
    async for chunk in raw:
        probe += chunk
        if len(probe) >= TEXT_PROBE_BYTES:
            break
    sample = probe[:TEXT_PROBE_BYTES]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(probe) < TEXT_PROBE_BYTES)
        text = b"\x00" not in sample
    except UnicodeDecodeError:
        text = False
    if not text:
        raise ValidationFailed("The upload is not an SQL dump: it does not start with text.")
    if probe:
        yield probe
    async for chunk in raw:
        yield chunk


@dataclass(frozen=True)
class StoredUpload:
    raw: RawStats
    stored: StoredStats
    verdict: DumpVerdict


async def store_upload(
    chunks: AsyncIterator[bytes],
    writer: StorageWriter,
    *,
    declared: Compression,
    engine: DatabaseEngine,
    compression: Compression,
    level: int,
) -> StoredUpload:
    """Check ``chunks`` on the way into ``writer`` (stored with ``compression`` at ``level``);
    raise a 415 or 422 ``AppError`` saying what is wrong with it. Does not commit the writer."""
    try:
        async with decoder(declared)(_as_declared(chunks, declared)) as raw:
            raw_stats, stored = await store_dump(
                _sql_text(raw), writer, compression=compression, level=level
            )
    except CorruptStream as exc:
        state = "truncated" if "truncated" in str(exc) else "damaged"
        raise ValidationFailed(
            f"The upload is not a complete {declared.value} stream (it is {state}); "
            "nothing was kept."
        ) from None
    try:
        verdict = engine.judge_upload(raw_stats)
    except EngineError as exc:
        raise ValidationFailed(f"The upload is not a complete dump: {exc.message}.") from None
    return StoredUpload(raw=raw_stats, stored=stored, verdict=verdict)
