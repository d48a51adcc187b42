"""405 for the wrong method on a fixed path that sits beside a ``/{id}`` path."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException

_ALL_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def refuse_other_methods(router: APIRouter, path: str, allowed: set[str]) -> None:
    """Answer 405 (with ``Allow``) to every other method on ``path``. Without this, ``GET
    /bulk-delete`` would reach ``GET /{backup_id}`` and answer 422. Call it before the router
    declares its ``/{id}`` routes: the first route that matches wins."""
    allow = ", ".join(sorted(allowed))

    async def not_allowed() -> None:
        raise HTTPException(status_code=405, headers={"Allow": allow})

    router.add_api_route(
        path,
        not_allowed,
        methods=sorted(_ALL_METHODS - allowed),
        include_in_schema=False,
        name=f"not_allowed_{path.strip('/').replace('-', '_').replace('.', '_')}",
    )
