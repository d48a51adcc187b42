"""Server-made names for backup files: nothing from a request ever becomes part of a path."""

from __future__ import annotations

from datetime import datetime

from app.pipeline.compression import Compression

SUFFIX = {Compression.zstd: ".sql.zst", Compression.gzip: ".sql.gz", Compression.none: ".sql"}


def backup_filename(
    *, database: str, taken_at: datetime, unique_identifier: str, compression: Compression
) -> str:
    stamp = taken_at.strftime("%Y-%m-%d_%H-%M-%S")
    return f"backup_{database}_{stamp}_{unique_identifier[:8]}{SUFFIX[compression]}"


def storage_key(filename: str, taken_at: datetime) -> str:
    # Month folders keep directory listings short on long-running installs.
    return f"{taken_at:%Y}/{taken_at:%m}/{filename}"


def download_name(filename: str, compression: str) -> str:
    """The name offered to a browser for the decompressed ``.sql`` download."""
    suffix = SUFFIX.get(Compression(compression), ".sql")
    stem = filename[: -len(suffix)] if filename.endswith(suffix) else filename
    return f"{stem}.sql"
