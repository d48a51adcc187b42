"""The job queue as the service layer sees it; the arq implementation lives in ``app/jobs``.

Services enqueue only after their transaction committed: Redis is not part of it, and the metadata
store, not the queue, is the truth (a reconciler re-enqueues what a lost queue forgot).
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    async def enqueue_backup(self, backup_id: int) -> None:
        """Queue the dump of a ``pending`` row; ``ServiceUnavailable`` if Redis is down."""
        ...

    async def enqueue_restore(self, restore_id: int) -> None:
        """Queue a ``pending`` restore operation; ``ServiceUnavailable`` if Redis is down."""
        ...
