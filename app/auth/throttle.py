"""Login throttling (OWASP ASVS V2.2.1): counted before the password is checked, per (account,
client address), per address and per account, with delays that grow instead of a lock.

Every attempt first takes a count on three keys, in one transaction, before argon2 runs:

* the (account, address) pair: ``login_max_failures`` failures in a row and that client is
  refused for ``PAIR_DELAY`` seconds, doubling with each further failure up to the window. This
  is the client that has been failing: the 6th wrong password in a row answers 429.
* the address, for any account: ``login_max_failures_per_address`` failures (a client trying
  many accounts), the same growing delays.
* the account, from any address: ``login_max_failures_per_account`` failures (a guess spread over
  many addresses). Here the delay starts at one second and stops growing at
  ``ACCOUNT_DELAY_CAP``: the account's owner, from a client that has not been failing, waits
  seconds between tries, never a lock that anyone can renew forever.

A count is one ``INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE`` that counts only when the key is
not blocked, then a read of the row it has locked: concurrent attempts are counted one after the
other, and no more than the limit reach the password check, however many arrive at once. A
refused attempt undoes its counts (the transaction is rolled back), so hammering a blocked key
neither extends the delay nor costs the owner anything. A successful login forgets the pair and
takes its count back from the address and the account.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginCounter
from app.config import Settings
from app.db import utcnow

PAIR_DELAY = timedelta(seconds=60)
ACCOUNT_DELAY = timedelta(seconds=1)
ACCOUNT_DELAY_CAP = timedelta(seconds=60)
NO_ADDRESS = "?"  # a request without a peer address still has a pair of its own
# A deadlock between two counts (MySQL's upsert takes gap locks) is retried this often.
COUNT_ATTEMPTS = 4
# Counters dropped per login at most (the rest go with later logins).
PURGE_BATCH = 20

TABLE: Table = LoginCounter.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Rule:
    limit: int
    delay: timedelta
    cap: timedelta

    def delay_after(self, failures: int) -> timedelta:
        """How long a key is refused once it has ``failures`` (>= limit) failures in a row."""
        doublings = min(failures - self.limit, 30)
        delay: timedelta = min(self.cap, self.delay * (2**doublings))
        return delay


@dataclass(frozen=True)
class Refused:
    retry_after: int  # seconds


@dataclass(frozen=True)
class Counted:
    """The keys an attempt was counted on; given back on success."""

    email: str
    client_ip: str


@dataclass(frozen=True)
class KeyState:
    email: str
    client_ip: str
    failures: int
    blocked_until: datetime | None


def _keys(email: str, client_ip: str) -> list[tuple[str, str]]:
    # Always in this order: two attempts lock their rows in the same order, never a deadlock.
    return [("", client_ip), (email, client_ip), (email, "")]


class LoginThrottle:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.window = timedelta(seconds=settings.login_failure_window_seconds)
        self.pair = Rule(settings.login_max_failures, PAIR_DELAY, max(self.window, PAIR_DELAY))
        self.address = Rule(
            settings.login_max_failures_per_address, PAIR_DELAY, max(self.window, PAIR_DELAY)
        )
        self.account = Rule(
            settings.login_max_failures_per_account, ACCOUNT_DELAY, ACCOUNT_DELAY_CAP
        )

    def _rule(self, email: str, client_ip: str) -> Rule:
        if not email:
            return self.address
        return self.account if not client_ip else self.pair

    async def count(self, email: str, client_ip: str | None) -> Counted | Refused:
        """Count one attempt on all three keys (committed), or refuse it (nothing counted)."""
        ip = client_ip or NO_ADDRESS
        for attempt in range(COUNT_ATTEMPTS):
            try:
                return await self._count(email, ip)
            except OperationalError:
                await self.session.rollback()
                if attempt == COUNT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _count(self, email: str, ip: str) -> Counted | Refused:
        now = utcnow()
        token = secrets.token_hex(16)
        refused: list[int] = []
        blocks: list[tuple[str, str, datetime]] = []
        for key_email, key_ip in _keys(email, ip):
            await self.session.execute(self._upsert(key_email, key_ip, now=now, token=token))
            row = (
                await self.session.execute(
                    select(TABLE.c.failures, TABLE.c.blocked_until, TABLE.c.attempt)
                    .where(TABLE.c.email == key_email, TABLE.c.client_ip == key_ip)
                    .with_for_update()
                )
            ).one()
            if row.attempt != token:  # blocked: the upsert left the row as it was
                wait = (row.blocked_until - now).total_seconds() if row.blocked_until else 1
                refused.append(max(1, math.ceil(wait)))
                continue
            rule = self._rule(key_email, key_ip)
            if row.failures >= rule.limit:
                blocks.append((key_email, key_ip, now + rule.delay_after(row.failures)))
        if refused:
            await self.session.rollback()
            return Refused(retry_after=max(refused))
        for key_email, key_ip, until in blocks:
            await self.session.execute(
                update(LoginCounter)
                .where(LoginCounter.email == key_email, LoginCounter.client_ip == key_ip)
                .values(blocked_until=until)
            )
        await self.session.commit()
        return Counted(email=email, client_ip=ip)

    def _upsert(self, email: str, ip: str, *, now: datetime, token: str) -> Any:
        """Insert the key with one failure, or count one more unless it is blocked."""
        blocked = TABLE.c.blocked_until > now
        stale = TABLE.c.last_failure_at <= now - self.window
        # Order matters on MySQL, where an assignment sees the columns assigned before it.
        assignments: list[tuple[Any, Any]] = [
            (
                TABLE.c.failures,
                case((blocked, TABLE.c.failures), (stale, 1), else_=TABLE.c.failures + 1),
            ),
            (TABLE.c.attempt, case((blocked, TABLE.c.attempt), else_=token)),
            (
                TABLE.c.last_failure_at,
                case((blocked, TABLE.c.last_failure_at), else_=now),
            ),
        ]
        values = {
            "email": email,
            "client_ip": ip,
            "failures": 1,
            "last_failure_at": now,
            "blocked_until": None,
            "attempt": token,
        }
        dialect = self.session.get_bind().dialect.name
        if dialect == "mysql":
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            return (
                mysql_insert(TABLE)
                .values(values)
                .on_duplicate_key_update([(column.key, value) for column, value in assignments])
            )
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement: Any = pg_insert(TABLE)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(TABLE)
        return statement.values(values).on_conflict_do_update(
            index_elements=[TABLE.c.email, TABLE.c.client_ip],
            set_={column.key: value for column, value in assignments},
        )

    async def succeeded(self, counted: Counted) -> None:
        """The password was right: forget the pair, give the address and account their count
        back. Not committed (the login's commit is). Rows in the order ``count`` locks them."""
        for key_email, key_ip in _keys(counted.email, counted.client_ip):
            where = (LoginCounter.email == key_email, LoginCounter.client_ip == key_ip)
            if key_email and key_ip:
                await self.session.execute(delete(LoginCounter).where(*where))
            else:
                await self.session.execute(
                    update(LoginCounter)
                    .where(*where, LoginCounter.failures > 0)
                    .values(failures=LoginCounter.failures - 1)
                )

    async def purge(self, *, now: datetime) -> None:
        """Drop counters of runs that ended a window ago and block nothing; housekeeping, in
        transactions of its own, after the login's.

        Row by row, by key: a range ``DELETE`` locks the gaps of its index on MySQL and
        deadlocks with the counts of attempts arriving meanwhile. A row that is busy is left
        for the next time."""
        stale = (
            LoginCounter.last_failure_at <= now - self.window,
            (LoginCounter.blocked_until.is_(None)) | (LoginCounter.blocked_until <= now),
        )
        try:
            keys = (
                await self.session.execute(
                    select(LoginCounter.email, LoginCounter.client_ip)
                    .where(*stale)
                    .limit(PURGE_BATCH)
                )
            ).all()
            await self.session.commit()
            for key_email, key_ip in keys:
                await self.session.execute(
                    delete(LoginCounter).where(
                        LoginCounter.email == key_email, LoginCounter.client_ip == key_ip, *stale
                    )
                )
                await self.session.commit()
        except OperationalError:
            await self.session.rollback()


async def throttle_states(session: AsyncSession, emails: list[str]) -> dict[str, list[KeyState]]:
    """Every counter of these accounts (their pairs and the account-wide one), current or not."""
    rows = await session.execute(
        select(LoginCounter).where(LoginCounter.email.in_(emails)).order_by(LoginCounter.client_ip)
    )
    out: dict[str, list[KeyState]] = {email: [] for email in emails}
    for row in rows.scalars():
        out[row.email].append(KeyState(row.email, row.client_ip, row.failures, row.blocked_until))
    return out


async def unlock(session: AsyncSession, email: str) -> int:
    """Forget every counter of one account (all addresses); how many there were. No commit."""
    result = await session.execute(delete(LoginCounter).where(LoginCounter.email == email))
    return int(getattr(result, "rowcount", 0) or 0)


def is_blocked(state: KeyState, *, now: datetime | None = None) -> bool:
    return state.blocked_until is not None and state.blocked_until > (now or utcnow())


def wait_seconds(until: datetime, *, now: datetime | None = None) -> int:
    return max(0, math.ceil((until - (now or utcnow())).total_seconds()))
