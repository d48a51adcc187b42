"""The copy-retry job: it takes ids and reloads everything (the store is the truth)."""

from __future__ import annotations

from typing import Any

from app.jobs.tasks import _state

RUN_COPY_RETRY = "run_copy_retry"


def copy_retry_job_id(queue_name: str, backup_id: int, destination_id: int) -> str:
    return f"{queue_name}:copy:{backup_id}:{destination_id}"


async def run_copy_retry(ctx: dict[str, Any], backup_id: int, destination_id: int) -> str:
    """Store a failed copy again from an intact one."""
    runner = _state(ctx).runtime.backup_runner()
    return await runner.retry_copy(backup_id, destination_id)
