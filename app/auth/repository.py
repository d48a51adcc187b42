"""All SQL for users, sessions and API tokens (the login counters: throttle.py). Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiToken, Role, User, UserSession
from app.db import Base
from app.fastread import HotQuery, hot_rows

_M = TypeVar("_M", bound=Base)


def _with_user(model: type[Base], key: Any) -> HotQuery:
    """``model``'s row whose key is the ``key`` parameter, and its user, in one query; only
    while the row carries the user's current epoch (a disabled or new user has another)."""
    columns = model.__table__.c
    return HotQuery(
        select(*columns, *User.__table__.c)
        .join_from(
            model,
            User,
            (columns.user_id == User.id) & (columns.auth_epoch == User.auth_epoch),
        )
        .where(key == bindparam("key"))
    )


# Run on every request: on the fast reader, compiled once.
_SESSION_WITH_USER = _with_user(UserSession, UserSession.id)
_TOKEN_WITH_USER = _with_user(ApiToken, ApiToken.token_hash)


def _detached(model: type[_M], values: tuple[Any, ...]) -> _M:
    """A read-only instance of ``model`` (in no ORM session) from its columns' values."""
    return model(
        **{column.key: value for column, value in zip(model.__table__.c, values, strict=True)}
    )


async def _one_with_user(
    session: AsyncSession, query: HotQuery, model: type[_M], key: str
) -> tuple[_M, User] | None:
    rows = await hot_rows(session, query, key=key)
    if not rows:
        return None
    width = len(model.__table__.c)
    return _detached(model, rows[0][:width]), _detached(User, rows[0][width:])


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

    async def count_active_admins(self) -> int:
        query = select(func.count()).where(User.role == Role.admin, User.is_active.is_(True))
        return int(await self.session.scalar(query) or 0)

    async def all_users(self) -> list[User]:
        return list(await self.session.scalars(select(User).order_by(User.id)))

    def add(self, row: User | UserSession | ApiToken) -> None:
        self.session.add(row)

    # ---- sessions ----------------------------------------------------------------------------

    async def session_with_user(self, session_id: str) -> tuple[UserSession, User] | None:
        """A session and its user (read-only instances), in one query: every cookie request."""
        return await _one_with_user(self.session, _SESSION_WITH_USER, UserSession, session_id)

    async def touch_session(self, session_id: str, *, seen: datetime, expires: datetime) -> None:
        await self.session.execute(
            update(UserSession)
            .where(UserSession.id == session_id)
            .values(last_seen_at=seen, expires_at=expires)
        )

    async def delete_session(self, session_id: str) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.id == session_id))

    async def delete_sessions_of(self, user_id: int) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.user_id == user_id))

    async def delete_expired_sessions(self, now: datetime) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.expires_at <= now))

    # ---- API tokens --------------------------------------------------------------------------

    async def token_with_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """A token and its user (read-only instances), in one query: every bearer request."""
        return await _one_with_user(self.session, _TOKEN_WITH_USER, ApiToken, token_hash)

    async def touch_token(self, token_id: int, *, used: datetime) -> None:
        await self.session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=used)
        )

    async def token(self, token_id: int) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def tokens_of(self, user_id: int) -> list[ApiToken]:
        rows = await self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        )
        return list(rows)

    async def delete_tokens_of(self, user_id: int) -> None:
        await self.session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
