"""Strict ids, pages and flags in paths and query strings: one definition for every route.

``int("+1")``, ``int(" 1")``, ``int("1_0")`` (= 10) and pydantic's lax ``"1.0"`` all read as
numbers; an id or a page is written in ASCII digits without a sign, spaces, underscores,
a fraction or leading zeros, and nothing else. A flag is ``true``/``false`` or ``1``/``0``, never
``"no"``, ``"off"``, ``"f"`` or ``"0.0"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator

MAX_ID = 2**63 - 1
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100

# At most 19 digits: every id up to MAX_ID (the bound itself is checked as a number).
_WHOLE = re.compile(r"[1-9][0-9]{0,18}")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def whole_number(value: Any) -> Any:
    """A path or query value as a positive whole number written in digits, or a ValueError."""
    if isinstance(value, str):
        if not (value.isascii() and _WHOLE.fullmatch(value)):
            raise ValueError("must be a positive whole number written in digits (e.g. 42)")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a positive whole number")
    return value


def flag(value: Any) -> Any:
    """A query flag: ``true``/``false`` or ``1``/``0`` (a bool given in code passes)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _FLAGS:
        return _FLAGS[value]
    raise ValueError("must be true or false (or 1 or 0)")


# Path/Query before the validator: the other order drops the bounds from the OpenAPI document.
BackupId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The backup's id.", examples=[42]),
    BeforeValidator(whole_number),
]
RestoreId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The restore operation's id.", examples=[3]),
    BeforeValidator(whole_number),
]
SourceId = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="The source's id.", examples=[1]),
    BeforeValidator(whole_number),
]
PageNumber = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE, description="The page, from 1."),
    BeforeValidator(whole_number),
]
PerPage = Annotated[
    int,
    Query(ge=1, le=MAX_PER_PAGE, description=f"Items per page, 1 to {MAX_PER_PAGE}."),
    BeforeValidator(whole_number),
]
UserIdFilter = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="Only events of this user."),
    BeforeValidator(whole_number),
]
SourceIdFilter = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="Only backups of this source (none if it is unknown)."),
    BeforeValidator(whole_number),
]
RawFlag = Annotated[
    bool,
    Query(description="Send the stored file as it is (e.g. .sql.zst): true/false or 1/0."),
    BeforeValidator(flag),
]
