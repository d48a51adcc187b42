"""Content-type rules for routes that take a JSON body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import UnsupportedMediaType


async def require_json(request: Request) -> None:
    """415 when a body is sent as anything but JSON (an empty body is left to validation)."""
    if not await request.body():
        return
    mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        raise UnsupportedMediaType(
            "The request body must be JSON (Content-Type: application/json)."
        )


JsonBody = Annotated[None, Depends(require_json)]
