"""The per-target lock on the real Redis: exclusive, renewed while held, freed by a dead holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.engines.base import TargetSpec
from app.jobs.locks import LockBusy, LockLost, TargetLock, target_key
from tests import support


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(support.REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def target() -> TargetSpec:
    return TargetSpec(
        scheme="mysql",
        host="127.0.0.1",
        port=3306,
        user="u",
        password="secret",
        database=support.unique_name("locked"),
    )


def test_the_key_names_the_server_and_database_never_the_credentials(target: TargetSpec) -> None:
    key = target_key(target)
    assert key == f"dbkeep:lock:target:127.0.0.1:3306/{target.database}"
    assert "secret" not in key and "u@" not in key


async def test_a_second_holder_is_told_who_holds_the_target(
    redis: Redis, target: TargetSpec
) -> None:
    first = TargetLock(redis, target, holder="restore 7", ttl_seconds=5)
    async with first.hold():
        with pytest.raises(LockBusy) as busy:
            async with TargetLock(redis, target, holder="backup 9", ttl_seconds=5).hold():
                pass
        assert busy.value.holder == "restore 7"
    # Released in finally: the next one gets it at once.
    async with TargetLock(redis, target, holder="backup 9", ttl_seconds=5).hold():
        assert await redis.exists(target_key(target))
    assert not await redis.exists(target_key(target))


async def test_the_holder_renews_the_lock_beyond_its_ttl(redis: Redis, target: TargetSpec) -> None:
    lock = TargetLock(redis, target, holder="backup 1", ttl_seconds=1)
    async with lock.hold():
        await asyncio.sleep(2.5)  # more than twice the TTL: only renewal keeps it
        assert await lock.current_holder() == "backup 1"
        assert not await TargetLock(redis, target, holder="backup 2", ttl_seconds=1).acquire()


async def test_a_dead_holders_lock_expires_after_its_ttl(redis: Redis, target: TargetSpec) -> None:
    dead = TargetLock(redis, target, holder="backup 1", ttl_seconds=1)
    assert await dead.acquire()  # taken and never renewed nor released, as by a killed worker
    other = TargetLock(redis, target, holder="backup 2", ttl_seconds=1)
    assert not await other.acquire()
    for _ in range(30):
        if await other.acquire():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the dead holder's lock did not expire")
    await other.release()


async def test_a_lock_taken_from_under_its_holder_stops_the_holder(
    redis: Redis, target: TargetSpec
) -> None:
    lock = TargetLock(redis, target, holder="backup 1", ttl_seconds=1)
    with pytest.raises(LockLost):
        async with lock.hold():
            # Someone else owns the key now (our renewals were lost for a whole TTL).
            await redis.set(target_key(target), "backup 2#other", px=5000)
            await asyncio.sleep(5)
    assert await redis.get(target_key(target)) == b"backup 2#other"  # not released by us
    await redis.delete(target_key(target))
