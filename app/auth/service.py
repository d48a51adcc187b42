"""Auth use cases: log in and out, resolve credentials, manage users and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.auth.models import ApiToken, Role, User, UserSession, new_auth_epoch
from app.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password_async,
    validate_new_password,
    verify_password_async,
)
from app.auth.repository import AuthRepository
from app.auth.throttle import KeyState, LoginThrottle, Refused, throttle_states, unlock
from app.auth.tokens import (
    API_TOKEN_DISPLAY_LENGTH,
    MAX_CREDENTIAL_LENGTH,
    new_api_token,
    new_secret,
    sha256_hex,
)
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, NotFound, TooManyRequests, Unauthorized, ValidationFailed

log = structlog.get_logger(__name__)

# One message for an unknown user, a wrong password and a disabled account: nothing to enumerate.
INVALID_CREDENTIALS = "These credentials do not match our records."
# Sessions slide: activity extends them, but refreshing the row more often than this is waste.
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)
TOKEN_TOUCH_INTERVAL = timedelta(seconds=60)
# However active, a session ends after this long and the user logs in again.
SESSION_MAX_LIFETIME = timedelta(days=7)
MAX_EMAIL_LENGTH = 254


def normalize_email(email: str) -> str:
    """E-mail addresses compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def validate_email(email: str) -> str:
    """A normalised address, or ``ValueError`` when it can't be one."""
    email = normalize_email(email)
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > MAX_EMAIL_LENGTH:
        raise ValueError("enter an e-mail address such as admin@example.com")
    if any(ch.isspace() or not ch.isprintable() for ch in email):
        raise ValueError("an e-mail address can't contain blanks or control characters")
    return email


@dataclass(frozen=True)
class LoginResult:
    user: User
    session_token: str  # goes into the HttpOnly cookie; only its SHA-256 is stored
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who made a request, and how they proved it."""

    user: User
    session: UserSession | None = None
    token: ApiToken | None = None

    @property
    def via_cookie(self) -> bool:
        return self.session is not None

    def actor(self, client_ip: str | None) -> Actor:
        return Actor(user_id=self.user.id, name=self.user.email, client_ip=client_ip)


class AuthService:
    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.repository = AuthRepository(session)
        self.throttle = LoginThrottle(session, settings)

    # ---- logging in and out ------------------------------------------------------------------

    async def login(
        self,
        *,
        email: str,
        password: str,
        client_ip: str | None,
        previous_session_token: str | None = None,
    ) -> LoginResult:
        """Check credentials (throttled, app/auth/throttle.py) and open a fresh session."""
        email = normalize_email(email)[:MAX_EMAIL_LENGTH]
        # Counted (and committed) before the password is checked: parallel attempts can't all
        # pass a limit that each of them read before any had failed.
        counted = await self.throttle.count(email, client_ip)
        if isinstance(counted, Refused):
            log.warning("auth.login_throttled", email=email, client_ip=client_ip)
            raise TooManyRequests(
                "Too many failed login attempts; try again later.",
                retry_after=counted.retry_after,
            )
        now = utcnow()
        user = await self.repository.user_by_email(email)
        ok, new_hash = await verify_password_async(
            password[:MAX_PASSWORD_LENGTH], user.password_hash if user else None
        )
        if user is None or not ok or not user.is_active:
            record_event(
                self.session,
                actor=Actor(user_id=user.id if user else None, name=email, client_ip=client_ip),
                action="auth.login_failed",
                target_type="user",
                target_id=user.id if user else None,
            )
            await self.session.commit()
            await self.throttle.purge(now=now)
            raise Unauthorized(INVALID_CREDENTIALS)

        if new_hash is not None:
            user.password_hash = new_hash
        # Rotation: whatever session the browser had is dropped, the new one shares nothing.
        if previous_session_token:
            await self.repository.delete_session(sha256_hex(previous_session_token))
        await self.repository.delete_expired_sessions(now)
        await self.throttle.succeeded(counted)
        session_token, csrf_token = new_secret(), new_secret()
        expires_at = now + timedelta(hours=self.settings.session_ttl_hours)
        self.repository.add(
            UserSession(
                id=sha256_hex(session_token),
                user_id=user.id,
                auth_epoch=user.auth_epoch,
                csrf_token=csrf_token,
                client_ip=client_ip,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
        )
        user.last_login_at = now
        record_event(
            self.session,
            actor=Actor(user_id=user.id, name=user.email, client_ip=client_ip),
            action="auth.login",
            target_type="user",
            target_id=user.id,
        )
        await self.session.commit()
        await self.throttle.purge(now=now)
        return LoginResult(user, session_token, csrf_token, expires_at)

    async def logout(self, principal: Principal, *, client_ip: str | None) -> None:
        """End the session the request came with (a token-authenticated logout ends nothing)."""
        if principal.session is not None:
            await self.repository.delete_session(principal.session.id)
        record_event(
            self.session,
            actor=principal.actor(client_ip),
            action="auth.logout",
            target_type="user",
            target_id=principal.user.id,
        )
        await self.session.commit()

    # ---- resolving credentials ---------------------------------------------------------------

    async def authenticate_session(self, session_token: str) -> Principal | None:
        """The user behind a session cookie, or ``None`` when it is unknown or expired."""
        if not session_token or len(session_token) > MAX_CREDENTIAL_LENGTH:
            return None
        found = await self.repository.session_with_user(sha256_hex(session_token))
        now = utcnow()
        if found is None:
            return None
        row, user = found
        if row.expires_at <= now:
            await self.repository.delete_session(row.id)
            await self.session.commit()
            return None
        if not user.is_active:
            return None
        if now - row.last_seen_at >= SESSION_TOUCH_INTERVAL:
            row.last_seen_at = now
            row.expires_at = min(
                now + timedelta(hours=self.settings.session_ttl_hours),
                row.created_at + SESSION_MAX_LIFETIME,
            )
            await self.repository.touch_session(row.id, seen=now, expires=row.expires_at)
            await self.session.commit()
        return Principal(user=user, session=row)

    async def authenticate_token(self, token: str) -> Principal | None:
        """The user behind a bearer token, or ``None`` when it is unknown, revoked or expired."""
        if not token or len(token) > MAX_CREDENTIAL_LENGTH:
            return None
        found = await self.repository.token_with_user(sha256_hex(token))
        now = utcnow()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or not user.is_active:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL:
            row.last_used_at = now
            await self.repository.touch_token(row.id, used=now)
            await self.session.commit()
        return Principal(user=user, token=row)

    # ---- users and tokens --------------------------------------------------------------------

    async def create_user(
        self, *, email: str, password: str, role: Role, actor: Actor | None = None
    ) -> User:
        """A new user; ``ValidationFailed`` for a bad address or password, 409 if it exists."""
        try:
            email = validate_email(email)
        except ValueError as exc:
            raise ValidationFailed(f"Invalid e-mail address: {exc}.") from None
        try:
            validate_new_password(password)
        except ValueError as exc:
            raise ValidationFailed(f"Invalid password: {exc}.") from None
        if await self.repository.user_by_email(email) is not None:
            raise Conflict(f"A user with the e-mail address {email} already exists.")
        now = utcnow()
        user = User(
            email=email,
            password_hash=await hash_password_async(password),
            role=role,
            is_active=True,
            auth_epoch=new_auth_epoch(),
            created_at=now,
            updated_at=now,
        )
        self.repository.add(user)
        try:
            await self.session.flush()
        except IntegrityError:
            await self.session.rollback()
            raise Conflict(f"A user with the e-mail address {email} already exists.") from None
        record_event(
            self.session,
            actor=actor or Actor.system("cli"),
            action="auth.user_create",
            target_type="user",
            target_id=user.id,
            details={"email": email, "role": role.value},
        )
        await self.session.commit()
        return user

    async def ensure_first_admin(self) -> User | None:
        """Create the admin from ``DBKEEP_ADMIN_EMAIL``/``_PASSWORD`` when no user exists yet."""
        if await self.repository.count_users() > 0:
            return None
        email, password = self.settings.admin_email, self.settings.admin_password
        if not email or password is None or not password.get_secret_value():
            log.warning(
                "auth.no_users",
                hint="set DBKEEP_ADMIN_EMAIL and DBKEEP_ADMIN_PASSWORD, or run "
                "'dbkeep user:create EMAIL --role admin'",
            )
            return None
        try:
            user = await self.create_user(
                email=email,
                password=password.get_secret_value(),
                role=Role.admin,
                actor=Actor.system("startup"),
            )
        except Conflict:  # another process created it first
            return None
        log.info("auth.first_admin_created", email=user.email)
        return user

    async def create_api_token(
        self, *, email: str, name: str, expires_in_days: int | None = None
    ) -> tuple[ApiToken, str]:
        """A new API token for the user with ``email``; the clear token is returned only here."""
        user = await self.repository.user_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"No user has the e-mail address {normalize_email(email)}.")
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationFailed("A token name must be 1 to 100 characters long.")
        token = new_api_token()
        now = utcnow()
        row = ApiToken(
            user_id=user.id,
            auth_epoch=user.auth_epoch,
            name=name,
            token_hash=sha256_hex(token),
            token_prefix=token[:API_TOKEN_DISPLAY_LENGTH],
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        self.repository.add(row)
        await self.session.flush()
        record_event(
            self.session,
            actor=Actor.system("cli"),
            action="auth.token_create",
            target_type="api_token",
            target_id=row.id,
            details={"user_id": user.id, "name": name},
        )
        await self.session.commit()
        return row, token

    async def revoke_api_token(self, token_id: int) -> ApiToken:
        """Revoke a token by id; revoking twice is harmless."""
        row = await self.repository.token(token_id)
        if row is None:
            raise NotFound(f"API token {token_id} was not found.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            record_event(
                self.session,
                actor=Actor.system("cli"),
                action="auth.token_revoke",
                target_type="api_token",
                target_id=row.id,
            )
            await self.session.commit()
        return row

    async def list_api_tokens(self, email: str) -> list[ApiToken]:
        """Every token of one user, revoked ones included."""
        user = await self.repository.user_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"No user has the e-mail address {normalize_email(email)}.")
        return await self.repository.tokens_of(user.id)

    # ---- operator commands (dbkeep user:*) ---------------------------------------------------

    async def _user_or_404(self, email: str) -> User:
        user = await self.repository.user_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"No user has the e-mail address {normalize_email(email)}.")
        return user

    async def _refuse_last_admin(self, user: User, doing: str) -> None:
        if (
            user.role is Role.admin
            and user.is_active
            and await self.repository.count_active_admins() <= 1
        ):
            raise Conflict(
                f"{user.email} is the only active admin; create another admin before you "
                f"{doing} this one."
            )

    async def disable_user(self, email: str) -> User:
        """The user can't log in, and every session and API token of theirs stops at once."""
        user = await self._user_or_404(email)
        await self._refuse_last_admin(user, "disable")
        user.is_active = False
        # A new epoch: the sessions and tokens bound to the old one never work again, not even
        # after user:enable (new tokens are made then).
        user.auth_epoch = new_auth_epoch()
        await self.repository.delete_sessions_of(user.id)
        record_event(
            self.session,
            actor=Actor.system("cli"),
            action="auth.user_disable",
            target_type="user",
            target_id=user.id,
            details={"email": user.email},
        )
        await self.session.commit()
        return user

    async def enable_user(self, email: str) -> User:
        """The user may log in again (their old sessions and tokens stay dead)."""
        user = await self._user_or_404(email)
        if not user.is_active:
            user.is_active = True
            record_event(
                self.session,
                actor=Actor.system("cli"),
                action="auth.user_enable",
                target_type="user",
                target_id=user.id,
                details={"email": user.email},
            )
            await self.session.commit()
        return user

    async def delete_user(self, email: str) -> User:
        """Delete the user, their sessions and API tokens; the audit log keeps their e-mail."""
        user = await self._user_or_404(email)
        await self._refuse_last_admin(user, "delete")
        await self.repository.delete_sessions_of(user.id)
        await self.repository.delete_tokens_of(user.id)
        await unlock(self.session, user.email)
        await self.session.delete(user)
        record_event(
            self.session,
            actor=Actor.system("cli"),
            action="auth.user_delete",
            target_type="user",
            target_id=user.id,
            details={"email": user.email},
        )
        await self.session.commit()
        return user

    async def unlock_user(self, email: str) -> int:
        """Forget the account's failed logins (from every address); how many counters went."""
        user = await self._user_or_404(email)
        removed = await unlock(self.session, user.email)
        record_event(
            self.session,
            actor=Actor.system("cli"),
            action="auth.user_unlock",
            target_type="user",
            target_id=user.id,
            details={"email": user.email},
        )
        await self.session.commit()
        return removed

    async def list_users(self) -> list[tuple[User, list[KeyState]]]:
        """Every user with their login counters (app/auth/throttle.py)."""
        users = await self.repository.all_users()
        states = await throttle_states(self.session, [u.email for u in users])
        return [(user, states[user.email]) for user in users]
