"""The dashboard: files of the built ``frontend/dist`` and ``index.html`` for the SPA's routes.

Only files inside ``frontend_dist`` are served, checked after resolving links; the backup
directory is never reachable from here.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from app.http.envelope import error_response

# Files straight under dist/ that the browser asks for by name (vite copies public/ there).
_TOP_LEVEL_FILE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(?:ico|png|svg|txt|webmanifest|xml|jpg|webp)"
_IMMUTABLE = "public, max-age=31536000, immutable"
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
_REVALIDATE = "no-cache"


class _TopLevelFileConvertor(Convertor[str]):
    regex = _TOP_LEVEL_FILE

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dist_file", _TopLevelFileConvertor())


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a regular file that really lies under ``root``."""
    if not relative or "\x00" in relative or relative.startswith("/"):
        return None
    try:
        base = root.resolve(strict=True)
        candidate = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


async def _file_response(path: Path, *, cache_control: str) -> Response:
    # Read whole: dashboard files are small, and a file vanishing mid-send can't become a 500.
    try:
        content = await anyio.Path(path).read_bytes()
    except OSError:
        return _not_built()
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in {"application/javascript", "image/svg+xml"}:
        media_type += "; charset=utf-8"
    return Response(content, media_type=media_type, headers={"Cache-Control": cache_control})


def _not_built() -> Response:
    return error_response(404, "The dashboard is not built (run 'npm run build' in frontend/).")


def build_spa_router(app: FastAPI) -> APIRouter:
    """Routes for the dashboard; registered last so API routes always win."""
    router = APIRouter(include_in_schema=False)

    def dist() -> Path:
        path: Path = app.state.settings.frontend_dist
        return path

    async def index() -> Response:
        page = _inside(dist(), "index.html")
        if page is None:
            return _not_built()
        return await _file_response(page, cache_control=_REVALIDATE)

    @router.get("/", name="spa_root")
    async def root() -> Response:
        return Response(status_code=307, headers={"Location": "/admin/database-backups"})

    @router.get("/login", name="spa_login")
    async def login_page() -> Response:
        return await index()

    @router.get("/admin/database-backups", name="spa_backups")
    async def backups_page() -> Response:
        return await index()

    @router.get("/admin/database-backups/{rest:path}", name="spa_backups_deep")
    async def backups_deep_page(rest: str) -> Response:
        return await index()

    @router.get("/admin/sources", name="spa_sources")
    async def sources_page() -> Response:
        return await index()

    @router.get("/admin/notifications", name="spa_notifications")
    async def notifications_page() -> Response:
        return await index()

    @router.get("/assets/{asset:path}", name="spa_asset")
    async def asset(asset: str, request: Request) -> Response:
        path = _inside(dist() / "assets", asset)
        if path is None:
            return error_response(404, "The requested resource was not found.")
        return await _file_response(path, cache_control=_IMMUTABLE)

    @router.get("/swagger/{name}", name="swagger_ui_file")
    async def swagger_ui_file(name: str) -> Response:
        # Swagger UI for /docs, copied into the build by vite.config.ts (app/http/docs.py).
        path = _inside(dist() / "swagger", name) if name in SWAGGER_UI_FILES else None
        if path is None:
            return error_response(404, "The requested resource was not found.")
        return await _file_response(path, cache_control=_REVALIDATE)

    @router.get("/{name:dist_file}", name="spa_file")
    async def top_level_file(name: str) -> Response:
        path = _inside(dist(), name)
        if path is None:
            return error_response(404, "The requested resource was not found.")
        return await _file_response(path, cache_control=_REVALIDATE)

    return router
