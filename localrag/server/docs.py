"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, served offline and guarded by the API key.

FastAPI's own pages load their JavaScript, CSS and fonts from a CDN, so on an offline machine
they stay blank. The same assets ship in the ``fastapi-offline`` package; they are served here
from ``/docs/assets``. With API keys set, the schema and both pages need a key like every other
route, unless ``server.expose_docs`` is on (a browser cannot send the header).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from localrag.errors import DependencyMissingError, NotFoundError

ASSETS_PATH = "/docs/assets"
DOCS_PATHS = ("/openapi.json", "/docs", "/redoc")
_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
           "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}


def assets_folder() -> Path | None:
    """The folder holding the Swagger UI and ReDoc files, or None when fastapi-offline is missing."""
    try:
        folder = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def docs_router(app: FastAPI, guard: Callable[[Request], None]) -> APIRouter:
    """The schema, the two documentation pages and their assets; ``guard`` raises when a key is missing."""
    router = APIRouter(dependencies=[Depends(guard)], include_in_schema=False)
    folder = assets_folder()

    def require_assets() -> Path:
        if folder is None:
            raise DependencyMissingError("the documentation pages need the fastapi-offline package "
                                         "(pip install 'localrag[server]'); /openapi.json works without it")
        return folder

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        require_assets()
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
                                   swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                                   # Swagger UI's default would fetch a validity badge from swagger.io
                                   swagger_ui_parameters={"validatorUrl": None})

    @router.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        require_assets()
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png", with_google_fonts=False)

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in _ASSETS:  # a fixed list: nothing else under the package folder is reachable
            raise NotFoundError(f"no documentation asset {name!r}")
        return FileResponse(require_assets() / name, media_type=_ASSETS[name])

    return router
