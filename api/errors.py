"""One place that maps library exceptions to HTTP statuses and the `{error: {code, message}}` body."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Forbidden, Unauthorized, require_read, require_write
from api.deps import NotReady
from rag.errors import (
    Cancelled,
    ConfigError,
    DocumentError,
    DocumentTooComplex,
    DocumentTooLarge,
    EmbedderMismatch,
    InputError,
    NotFound,
    RagError,
    UnsupportedFormat,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
STATUS: list[tuple[type[RagError], int]] = [
    (NotReady, 503),
    (Unauthorized, 401),
    (Forbidden, 403),
    (DocumentTooLarge, 413),
    (UnsupportedFormat, 415),
    (DocumentTooComplex, 422),
    (DocumentError, 422),
    (InputError, 422),
    (NotFound, 404),
    (EmbedderMismatch, 409),
    # The client closed the connection before the upload was stored: nobody reads this answer;
    # 499 ("client closed request", nginx's) keeps it apart from failures in logs and metrics.
    (Cancelled, 499),
    (ConfigError, 500),
    (RagError, 500),
]


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error envelope."""
    return {"error": {"code": code, "message": message}}


def _rag_response(exc: RagError) -> JSONResponse:
    status = next(s for cls, s in STATUS if isinstance(exc, cls))
    # RFC 9110 §15.5.2: a 401 must say which scheme to authenticate with.
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(exc.code, str(exc)), status_code=status, headers=headers)


def _authorize(request: Request) -> None:
    """Run the route's key check. FastAPI decodes a JSON body before it runs the route's
    dependencies, so without this a malformed body would get 422 before a missing key got 401."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        for dep in route.dependant.dependencies:
            if dep.call in (require_read, require_write):
                request.app.state.keys.check(request, write=dep.call is require_write)


def install(app: FastAPI) -> None:
    """Register the exception handlers on `app`."""

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return _rag_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            _authorize(request)
        except RagError as denied:
            return _rag_response(denied)
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(error_body("invalid_request", "; ".join(parts)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not parse: the key comes first here too
            try:
                _authorize(request)
            except RagError as denied:
                return _rag_response(denied)
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never to the client
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
