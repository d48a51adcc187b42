"""The compression a backup is stored with.

Here, not with the settings, so that engines and the pipeline need not import the configuration
(architecture.md, "Arrows"); the settings import it from here.
"""

from __future__ import annotations

from enum import StrEnum


class Compression(StrEnum):
    zstd = "zstd"
    gzip = "gzip"
    none = "none"
