"""A source's verify_schedule queues a verification of its newest completed backup, once a slot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.bootstrap import Bootstrap
from app.config import Settings
from app.db import Database, utcnow
from app.engines.registry import EngineRegistry
from app.jobs.queue import ArqJobQueue
from app.sources.models import Source
from app.storage import get_storage
from app.verifications import jobs
from app.verifications.models import BackupVerification, VerificationStatus


async def test_a_due_verify_schedule_queues_one_verification_per_slot(
    database: Database, settings: Settings, source: Source, completed: int, queue: ArqJobQueue
) -> None:
    async with database.sessionmaker() as session:
        row = await session.get(Source, source.id)
        assert row is not None
        row.verify_schedule = "*/10 * * * *"
        row.created_at = utcnow() - timedelta(hours=2)
        await session.commit()
    runtime = Bootstrap(
        settings=settings,
        database=database,
        storage=get_storage(settings),
        engines=EngineRegistry(settings),
    )
    jobs._last_looks.clear()
    now = utcnow()
    outcome = await jobs.run_verify_schedules(runtime, queue, now=now)
    async with database.sessionmaker() as session:
        made = list(await session.scalars(select(BackupVerification)))
    assert len(made) == 1, outcome
    assert made[0].backup_id == completed and made[0].trigger == "schedule"
    assert made[0].status is VerificationStatus.pending
    assert await queue.job_exists(f"{settings.queue_name}:verification:{made[0].id}")
    # Another worker's first look at the same slot takes nothing.
    jobs._last_looks.clear()
    assert await jobs.run_verify_schedules(runtime, queue, now=now + timedelta(seconds=30)) == ""
    async with database.sessionmaker() as session:
        assert len(list(await session.scalars(select(BackupVerification)))) == 1
