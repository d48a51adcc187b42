"""One backup or restore per target database at a time, across workers and hosts.

A Redis key per target (``host:port/database``) holds "<what> #<token>" with a TTL that the holder
renews; it is released in ``finally``, and a worker that dies simply stops renewing, so the lock
frees itself after the TTL. The metadata store refuses the obvious conflicts at request time (409);
this lock closes the races between workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.engines.base import TargetSpec

logger = logging.getLogger("dbkeep.jobs.locks")

KEY_PREFIX = "dbkeep:lock:target:"

# Extend the TTL only if we still hold the key; take it again if it vanished (a Redis restart
# without persistence); report loss if someone else holds it.
_RENEW = """
local current = redis.call('get', KEYS[1])
if current == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
elseif not current then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LockBusy(Exception):
    """Another operation holds the target; ``holder`` says which (e.g. ``"restore 7"``)."""

    def __init__(self, holder: str | None) -> None:
        super().__init__(f"the target database is busy with {holder or 'another operation'}")
        self.holder = holder


class LockLost(Exception):
    """Another worker took the target while we held it (our renewals failed for a whole TTL)."""


def target_key(target: TargetSpec) -> str:
    where = target.socket if target.socket else f"{target.host.lower()}:{target.port}"
    return f"{KEY_PREFIX}{where}/{target.database}"


class TargetLock:
    """A renewed Redis lock on one target database, held by one named operation."""

    def __init__(
        self, redis: Redis, target: TargetSpec, *, holder: str, ttl_seconds: float = 60
    ) -> None:
        self.redis = redis
        self.key = target_key(target)
        self.holder = holder
        self.value = f"{holder}#{secrets.token_hex(8)}"
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self.lost = False

    async def acquire(self) -> bool:
        """Take the lock if it is free."""
        return bool(await self.redis.set(self.key, self.value, nx=True, px=self.ttl_ms))

    async def current_holder(self) -> str | None:
        """Who holds the lock now (``"backup 12"``), or ``None`` when it is free."""
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return text.rsplit("#", 1)[0]

    async def renew(self) -> bool:
        """Extend the TTL; ``False`` when another operation holds the key now."""
        result = await self.redis.eval(_RENEW, 1, self.key, self.value, str(self.ttl_ms))  # type: ignore[misc]
        return bool(int(result))

    async def release(self) -> None:
        """Give the lock back if we still hold it; a Redis outage leaves it to expire."""
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.value)  # type: ignore[misc]
        except (RedisError, OSError) as exc:
            logger.warning("lock.release_failed", extra={"key": self.key, "error": repr(exc)})

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[TargetLock]:
        """Hold the lock for the body; ``LockBusy`` if taken, ``LockLost`` if it is stolen."""
        if not await self.acquire():
            raise LockBusy(await self.current_holder())
        owner = asyncio.current_task()
        renewer = asyncio.create_task(self._keep_renewed(owner))
        try:
            yield self
        except asyncio.CancelledError:
            # Our own renewer cancelled the body because the lock was taken from under it.
            if self.lost and owner is not None and owner.uncancel() == 0:
                raise LockLost(f"lost the lock on {self.key}") from None
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self.release()

    async def _keep_renewed(self, owner: asyncio.Task[object] | None) -> None:
        interval = self.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                still_ours = await self.renew()
            except (RedisError, OSError) as exc:
                # Keep trying: nobody else can take the key while Redis can't be reached either.
                logger.warning("lock.renew_failed", extra={"key": self.key, "error": repr(exc)})
                continue
            if not still_ours:
                logger.error("lock.lost", extra={"key": self.key, "holder": self.holder})
                self.lost = True
                if owner is not None:
                    owner.cancel()
                return
