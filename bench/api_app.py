"""The dbkeep app as the API benchmark serves it: the real app plus one trivial route.

The trivial route goes through the same middleware stack (request context, metrics, security
headers, body limit) without auth or SQL, so it shows what the framework alone costs.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.main import create_app


def create() -> FastAPI:
    app = create_app()

    @app.get("/__bench/trivial", include_in_schema=False)
    async def trivial() -> dict[str, bool]:
        return {"success": True}

    return app
