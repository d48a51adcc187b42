"""Migration 0006 on a store with data: users, sessions, tokens and the audit log survive (on
SQLite the rebuilt ``users`` table must not cascade into them), each user gets an epoch that its
sessions and tokens share, orphans are dropped, and SQLite never reuses an id afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from app.db import make_engine
from app.migrate import alembic_config
from tests.test_migrations import empty_store_url  # noqa: F401 (the fixture)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _sql(url: str, *statements: tuple[str, dict[str, object]]) -> list[list[tuple]]:
    engine = make_engine(url)
    out = []
    try:
        async with engine.begin() as conn:
            for statement, params in statements:
                result = await conn.execute(sa.text(statement), params)
                out.append([tuple(r) for r in result.all()] if result.returns_rows else [])
    finally:
        await engine.dispose()
    return out


async def test_0006_keeps_sessions_tokens_and_audit_rows(empty_store_url: str) -> None:  # noqa: F811
    config = alembic_config(empty_store_url)
    command.upgrade(config, "0005")
    at = {"at": NOW.replace(tzinfo=None), "until": (NOW + timedelta(days=365)).replace(tzinfo=None)}
    await _sql(
        empty_store_url,
        (
            "INSERT INTO users (email, password_hash, role, is_active, created_at, "
            "updated_at) VALUES ('a@example.com', 'h', 'admin', true, :at, :at), "
            "('b@example.com', 'h', 'viewer', true, :at, :at)",
            at,
        ),
        (
            "INSERT INTO user_sessions (id, user_id, csrf_token, created_at, last_seen_at, "
            "expires_at) VALUES ('s1', 1, 'c', :at, :at, :until), ('s2', 2, 'c', :at, :at, :until)",
            at,
        ),
        (
            "INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at) "
            "VALUES (1, 't', 'h1', 'p', :at), (2, 't', 'h2', 'p', :at)",
            at,
        ),
        (
            "INSERT INTO audit_events (occurred_at, user_id, actor, action) "
            "VALUES (:at, 1, 'a@example.com', 'auth.login')",
            at,
        ),
    )
    command.upgrade(config, "head")
    users, sessions, tokens, audit = await _sql(
        empty_store_url,
        ("SELECT id, auth_epoch FROM users ORDER BY id", {}),
        ("SELECT id, user_id, auth_epoch FROM user_sessions ORDER BY id", {}),
        ("SELECT id, user_id, auth_epoch FROM api_tokens ORDER BY id", {}),
        ("SELECT user_id FROM audit_events", {}),
    )
    epochs = dict(users)
    assert len(epochs) == 2 and len(set(epochs.values())) == 2
    assert all(len(epoch) == 32 for epoch in epochs.values())
    assert sessions == [("s1", 1, epochs[1]), ("s2", 2, epochs[2])]
    assert tokens == [(1, 1, epochs[1]), (2, 2, epochs[2])]
    assert audit == [(1,)]

    # Deleting the newest user and token frees their ids; the next ones get new ids anyway.
    await _sql(
        empty_store_url,
        ("DELETE FROM api_tokens WHERE id = 2", {}),
        ("DELETE FROM users WHERE id = 2", {}),
        (
            "INSERT INTO users (email, password_hash, role, is_active, auth_epoch, created_at, "
            "updated_at) VALUES ('c@example.com', 'h', 'viewer', true, 'e', :at, :at)",
            at,
        ),
        (
            "INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, auth_epoch, "
            "created_at) VALUES (1, 't', 'h3', 'p', 'e', :at)",
            at,
        ),
    )
    (new_user,), (new_token,) = await _sql(
        empty_store_url,
        ("SELECT max(id) FROM users", {}),
        ("SELECT max(id) FROM api_tokens", {}),
    )
    assert new_user[0] > 2 and new_token[0] > 2
