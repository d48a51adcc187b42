"""The arq implementation of the service layer's ``JobQueue``, and the queue's names in Redis.

Job ids are derived from row ids (``<queue>:backup:<id>``), so enqueueing the same row twice is a
no-op while its job exists: two workers never run the same job, and the reconciler may re-enqueue
freely. Jobs keep no result (``keep_result=0``) because arq refuses a custom job id while a result
under it is kept. The queue name is part of the id because arq's job keys are global to a Redis
database, not per queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import health_check_key_suffix, in_progress_key_prefix, job_key_prefix
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from app.config import Settings
from app.errors import ServiceUnavailable

RUN_BACKUP = "run_backup"
RUN_RESTORE = "run_restore"
RUN_VERIFICATION = "run_verification"

# How often a worker records its heartbeat (arq's health-check key, which lives one second longer).
HEALTH_CHECK_INTERVAL_S = 5

# Fail fast at request time: an API call should answer 503 in about a second, not hang.
_CONNECT_TIMEOUT_S = 2.0
_COMMAND_TIMEOUT_S = 5.0


def backup_job_id(queue_name: str, backup_id: int) -> str:
    return f"{queue_name}:backup:{backup_id}"


def restore_job_id(queue_name: str, restore_id: int) -> str:
    return f"{queue_name}:restore:{restore_id}"


def verification_job_id(queue_name: str, verification_id: int) -> str:
    return f"{queue_name}:verification:{verification_id}"


def health_check_key(queue_name: str) -> str:
    """Where workers of this queue write their heartbeat (arq's own health-check key)."""
    return queue_name + health_check_key_suffix


def connect(redis_url: str, *, queue_name: str, **pool_options: Any) -> ArqRedis:
    """An ``ArqRedis`` client for ``redis_url``; it connects lazily, on the first command."""
    options: dict[str, Any] = {
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        "socket_timeout": _COMMAND_TIMEOUT_S,
        **pool_options,
    }
    pool = ConnectionPool.from_url(redis_url, **options)
    return ArqRedis(pool, default_queue_name=queue_name)


@dataclass(frozen=True)
class QueueStatus:
    """What ``/health`` and ``/metrics`` show about the queue."""

    reachable: bool
    depth: int | None  # jobs waiting or running
    worker_seen: bool  # a worker wrote its heartbeat within the last few seconds
    heartbeat_age_s: float | None  # seconds since the newest heartbeat, when one is seen
    worker_info: str | None  # arq's counters: "j_complete=3 j_failed=0 j_retried=1 ..."


class ArqJobQueue:
    """Enqueue backup and restore jobs on the arq queue; ``ServiceUnavailable`` if Redis is down."""

    def __init__(self, redis: ArqRedis, *, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    @classmethod
    def from_settings(cls, settings: Settings) -> ArqJobQueue:
        """A queue for ``settings.redis_url``; nothing is contacted until the first enqueue."""
        return cls(
            connect(settings.redis_url, queue_name=settings.queue_name),
            queue_name=settings.queue_name,
        )

    async def enqueue_backup(self, backup_id: int) -> None:
        """Queue the dump of an existing ``pending`` row (a no-op if its job is already queued)."""
        await self._enqueue(
            RUN_BACKUP,
            backup_id,
            job_id=backup_job_id(self.queue_name, backup_id),
            what="backup",
        )

    async def enqueue_restore(self, restore_id: int) -> None:
        """Queue an existing ``pending`` restore operation (a no-op if already queued)."""
        await self._enqueue(
            RUN_RESTORE,
            restore_id,
            job_id=restore_job_id(self.queue_name, restore_id),
            what="restore",
        )

    async def enqueue_verification(self, verification_id: int) -> None:
        """Queue a ``pending`` verification (a test restore)."""
        await self._enqueue(
            RUN_VERIFICATION,
            verification_id,
            job_id=verification_job_id(self.queue_name, verification_id),
            what="verification",
        )

    async def enqueue_copy_retry(
        self, function: str, backup_id: int, destination_id: int, *, job_id: str
    ) -> None:
        """Queue storing a failed copy of ``backup_id`` on ``destination_id`` again."""
        await self._enqueue(function, backup_id, destination_id, job_id=job_id, what="copy")

    async def _enqueue(self, function: str, *args: int, job_id: str, what: str) -> None:
        try:
            # ``None`` means a job with this id exists already: the row is queued, which is all
            # the caller asked for.
            await self.redis.enqueue_job(
                function, *args, _job_id=job_id, _queue_name=self.queue_name
            )
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(
                f"The job queue (Redis) is unavailable; the {what} was not queued."
            ) from exc

    async def job_exists(self, job_id: str) -> bool:
        """Whether arq still holds the job (queued, deferred for a retry, or running)."""
        return bool(await self.redis.exists(job_key_prefix + job_id))

    async def release_stale_job(self, job_id: str) -> None:
        """Let arq run a job again now whose worker died (its row's heartbeat went silent).

        arq itself would wait for the job's whole timeout plus 10 s; the metadata store already
        knows nobody is working on it.
        """
        await self.redis.delete(in_progress_key_prefix + job_id)

    async def status(self) -> QueueStatus:
        """Queue depth and worker heartbeat, or ``reachable=False`` when Redis does not answer."""
        key = health_check_key(self.queue_name)
        try:
            depth = await self.redis.zcard(self.queue_name)
            info = await self.redis.get(key)
            ttl_ms = int(await self.redis.pttl(key))
        except (RedisError, OSError):
            return QueueStatus(
                reachable=False,
                depth=None,
                worker_seen=False,
                heartbeat_age_s=None,
                worker_info=None,
            )
        text = info.decode(errors="replace") if isinstance(info, bytes) else info
        detail = text[text.index("j_complete=") :] if text and "j_complete=" in text else text
        age = (HEALTH_CHECK_INTERVAL_S + 1) - ttl_ms / 1000 if info and ttl_ms >= 0 else None
        return QueueStatus(
            reachable=True,
            depth=int(depth),
            worker_seen=info is not None,
            heartbeat_age_s=None if age is None else max(0.0, round(age, 1)),
            worker_info=detail,
        )

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
