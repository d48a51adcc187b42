"""``dbkeep backup:verify ID --restore``: a test restore run here, waited for, reported."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.audit.service import Actor
from app.bootstrap import Bootstrap
from app.errors import AppError
from app.jobs.locks import LockBusy
from app.verifications.jobs import server_lock, verification_runner
from app.verifications.models import BackupVerification
from app.verifications.service import VerificationService

CLI = Actor.system("cli")


class VerifyCommandError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def verify_by_restore(rt: Bootstrap, backup_id: int) -> BackupVerification:
    """Record a verification of ``backup_id``, run it under the scratch server's lock."""
    async with rt.database.sessionmaker() as session:
        try:
            verification = await VerificationService(
                session, queue=None, actor=CLI
            ).request_for_backup(backup_id, trigger="cli")
        except AppError as exc:
            raise VerifyCommandError(exc.message) from None
    redis = Redis.from_url(rt.settings.redis_url)
    try:
        hold = server_lock(redis, rt.settings.heartbeat_timeout_seconds)
        return await verification_runner(rt).run(verification.id, hold=hold)
    except LockBusy as busy:
        raise VerifyCommandError(
            f"the scratch server is busy with {busy.holder or 'another verification'}; try again"
        ) from None
    except (RedisError, OSError):
        raise VerifyCommandError(
            "Redis is unavailable: a verification needs its lock on the scratch server"
        ) from None
    finally:
        await redis.aclose()


def describe(verification: BackupVerification) -> str:
    lines = [f"Verification {verification.id} of backup {verification.backup_id}: "
             f"{verification.status.value} ({verification.duration_ms or 0} ms)"]  # fmt: skip
    for table in verification.tables:
        lines.append(
            f"  {table['name']}: expected {table['expected_rows']}, "
            f"restored {table['restored_rows']}"
        )
    if verification.error_message:
        lines.append(verification.error_message)
    return "\n".join(lines)
