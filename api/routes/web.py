"""The web page at `/` and the API docs at `/docs` and `/redoc`, all served offline.

The page is three static files shipped inside the package (`api/web/`): no build step, no CDN.
The docs use the Swagger UI and ReDoc bundles shipped by the PyPI package `fastapi-offline`
(only its files are used), instead of FastAPI's default CDN links, which leave an offline
machine with a blank page. None of these need an API key: the page asks for one when the API
answers 401.
"""

from __future__ import annotations

import json
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.errors import error_body

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

PAGE_PREFIX = "/ui/"
DOCS_PREFIX = "/docs-assets/"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
# Paths and path prefixes that need no API key (the page, its assets, the docs).
OPEN_PATHS = frozenset({"/", DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL})
OPEN_PREFIXES = (PAGE_PREFIX, DOCS_PREFIX)

# The page's own files, by the name they are served under (nothing else under /ui/ is served).
_PAGE_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_DOCS_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The page runs only its own script and style and talks only to this server; document text is
# never parsed as HTML by it, and this policy would stop an injected script besides.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# The docs pages are FastAPI's (an inline script starts them). Other hosts are refused: ReDoc
# would otherwise fetch its makers' logo from their CDN, a failed request on an offline machine.
_DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(_DOCS_HEADERS)
    return page


def _not_found(name: str) -> Response:
    return Response(
        content=json.dumps(error_body("not_found", f"no such file '{name[:100]}'")),
        status_code=404,
        media_type="application/json",
    )


@router.get("/")
async def page() -> FileResponse:
    """The question-answering page."""
    return FileResponse(
        WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS
    )


@router.get(PAGE_PREFIX + "{name}")
async def page_asset(name: str) -> Response:
    """The page's script, style sheet and icon."""
    if name not in _PAGE_FILES:
        return _not_found(name)
    return FileResponse(WEB_DIR / name, media_type=_PAGE_FILES[name], headers=_PAGE_HEADERS)


@router.get(DOCS_PREFIX + "{name}")
async def docs_asset(name: str) -> Response:
    """Swagger UI's and ReDoc's files, from the `fastapi-offline` package."""
    if name not in _DOCS_FILES:
        return _not_found(name)
    return FileResponse(
        DOCS_ASSETS_DIR / name,
        media_type=_DOCS_FILES[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over this app's OpenAPI document."""
    root = request.scope.get("root_path", "")
    return _docs_page(
        get_swagger_ui_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{DOCS_PREFIX}swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PREFIX}swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_PREFIX}favicon.png",
        )
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page (part of Swagger UI; unused without OAuth2)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc over this app's OpenAPI document."""
    root = request.scope.get("root_path", "")
    return _docs_page(
        get_redoc_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_PREFIX}redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_PREFIX}favicon.png",
            with_google_fonts=False,
        )
    )
