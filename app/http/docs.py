"""The OpenAPI page, ``/docs``: Swagger UI from the dashboard's build, so it works offline.

FastAPI's own page loads Swagger UI from a CDN, which a self-hosted install often can't reach
(the page stays blank). ``vite build`` copies Swagger UI into ``dist/swagger/``; without a build
the page falls back to the CDN.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse

from app.http.spa import SWAGGER_UI_FILES


def build_docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", name="swagger_ui")
    async def swagger_ui() -> HTMLResponse:
        local = app.state.settings.frontend_dist / "swagger"
        assets: dict[str, Any] = {}
        if all((local / name).is_file() for name in SWAGGER_UI_FILES):
            assets = {
                "swagger_js_url": "/swagger/swagger-ui-bundle.js",
                "swagger_css_url": "/swagger/swagger-ui.css",
            }
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_favicon_url="data:,",
            swagger_ui_parameters=app.swagger_ui_parameters,
            **assets,
        )

    return router
