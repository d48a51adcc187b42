"""All SQL for users, sessions, API tokens and failed logins. Never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiToken, LoginFailure, User, UserSession


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- users -------------------------------------------------------------------------------

    async def user_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def user(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def count_users(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    def add(self, row: User | UserSession | ApiToken | LoginFailure) -> None:
        self.session.add(row)

    # ---- sessions ----------------------------------------------------------------------------

    async def session_with_user(self, session_id: str) -> tuple[UserSession, User] | None:
        """A session and its user in one query: this runs on every cookie request."""
        row = (
            await self.session.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.id == session_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def delete_session(self, session_id: str) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.id == session_id))

    async def delete_expired_sessions(self, now: datetime) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.expires_at <= now))

    # ---- API tokens --------------------------------------------------------------------------

    async def token_with_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """A token and its user in one query: this runs on every bearer request."""
        row = (
            await self.session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == token_hash)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def token(self, token_id: int) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def tokens_of(self, user_id: int) -> list[ApiToken]:
        rows = await self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        )
        return list(rows)

    # ---- failed logins -----------------------------------------------------------------------

    async def failures_since(self, email: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failed logins ``email`` had since ``since``, and the oldest of them."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(LoginFailure.failed_at)).where(
                    LoginFailure.email == email, LoginFailure.failed_at > since
                )
            )
        ).one()
        oldest = row[1]
        return int(row[0]), oldest

    async def clear_failures(self, email: str) -> None:
        await self.session.execute(delete(LoginFailure).where(LoginFailure.email == email))

    async def purge_failures_before(self, before: datetime) -> None:
        await self.session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= before))
