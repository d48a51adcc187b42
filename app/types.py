"""Column types shared by every model."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; everywhere else ids are 64-bit.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
