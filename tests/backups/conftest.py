"""The session's real S3-compatible server (SeaweedFS, ``tests/s3server.py``) for the copy tests."""

from __future__ import annotations

from tests.s3server import s3_server  # noqa: F401  (a session fixture, shared)
