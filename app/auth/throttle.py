"""Login throttling per account: too many recent failures lock the account for a while."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from app.auth.models import LoginFailure
from app.auth.repository import AuthRepository
from app.config import Settings


class LoginThrottle:
    """Counts failed logins of one e-mail address within ``login_failure_window_seconds``."""

    def __init__(self, repository: AuthRepository, settings: Settings) -> None:
        self.repository = repository
        self.max_failures = settings.login_max_failures
        self.window = timedelta(seconds=settings.login_failure_window_seconds)

    async def retry_after(self, email: str, *, now: datetime) -> int | None:
        """Seconds until ``email`` may try again, or ``None`` when it may try now."""
        count, oldest = await self.repository.failures_since(email, now - self.window)
        if count < self.max_failures or oldest is None:
            return None
        return max(1, math.ceil((oldest + self.window - now).total_seconds()))

    async def record_failure(self, email: str, *, client_ip: str | None, now: datetime) -> None:
        """Remember one failed attempt, and forget attempts too old to count."""
        await self.repository.purge_failures_before(now - self.window)
        self.repository.add(LoginFailure(email=email, client_ip=client_ip, failed_at=now))

    async def reset(self, email: str) -> None:
        """A successful login starts the count again."""
        await self.repository.clear_failures(email)
