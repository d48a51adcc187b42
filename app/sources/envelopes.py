"""The sources API's response envelopes (HTTP only: the CLI and services never load them)."""

from __future__ import annotations

from app.http.envelope import DataEnvelope
from app.sources.schemas import ConnectionTest, RetentionPreview, SourceRead


class SourceEnvelope(DataEnvelope[SourceRead]):
    pass


class SourceListEnvelope(DataEnvelope[list[SourceRead]]):
    pass


class ConnectionTestEnvelope(DataEnvelope[ConnectionTest]):
    pass


class RetentionPreviewEnvelope(DataEnvelope[RetentionPreview]):
    pass
