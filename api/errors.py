"""One place that maps library exceptions to HTTP statuses and the `{error: {code, message}}` body.

Route code raises `RagError`s (the exception handlers answer them); the pure ASGI middlewares, which
run outside FastAPI's exception handling, answer theirs with `send_error`. Both go through the one
STATUS table. Messages are clipped: input a message echoes (an id, a file name) is cut at
`ECHO_LIMIT` characters, so a 100 KB id does not come back as a 100 KB error.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from api.auth import Forbidden, Unauthorized
from api.deps import NotReady
from rag.errors import (
    Cancelled,
    ConfigError,
    DatabaseUnavailable,
    DocumentError,
    DocumentTooComplex,
    DocumentTooLarge,
    EmbedderMismatch,
    InputError,
    NotFound,
    RagError,
    ReadOnlyIndex,
    StorageFull,
    UnsupportedFormat,
)

log = logging.getLogger(__name__)

ECHO_LIMIT = 100  # characters of echoed input kept in a message
MESSAGE_LIMIT = 1000  # characters of any error message


class RateLimited(RagError):
    """The client is over its request rate (429); `retry_after` is in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        """`retry_after`: seconds until the next request will be accepted (rounded up)."""
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


# Most specific first: the first matching class decides the status.
STATUS: list[tuple[type[RagError], int]] = [
    (NotReady, 503),
    (Unauthorized, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (DocumentTooLarge, 413),
    (UnsupportedFormat, 415),
    (DocumentTooComplex, 422),
    (DocumentError, 422),
    (InputError, 422),
    (NotFound, 404),
    (EmbedderMismatch, 409),
    (StorageFull, 507),  # RFC 4918: the server cannot store what the request needs stored
    (ReadOnlyIndex, 503),  # writes are unavailable (read-only disk); reads are served
    (DatabaseUnavailable, 503),  # RAG_STORE_URL's database is down or refusing: retry later
    # The client closed the connection before the upload was stored: nobody reads this answer;
    # 499 ("client closed request", nginx's) keeps it apart from failures in logs and metrics.
    (Cancelled, 499),
    (ConfigError, 500),
    (RagError, 500),
]

# Messages quote the input they echo ('<id>', '<file name>', '<content type>').
_QUOTED = re.compile(f"'([^']{{{ECHO_LIMIT}}})[^']+'")


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[:limit] + "…"


def safe_message(message: str) -> str:
    """A message fit for a response: quoted echoes clipped, the whole capped, and lone surrogates
    (from JSON like "\\ud800") spelled out, since they cannot be encoded as UTF-8."""
    message = _QUOTED.sub(r"'\1…'", message)
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return clip(message, MESSAGE_LIMIT)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error envelope."""
    return {"error": {"code": code, "message": safe_message(message)}}


def rag_response(exc: RagError) -> JSONResponse:
    """The response for a `RagError`: status from STATUS, plus the headers its status calls for."""
    status = next(s for cls, s in STATUS if isinstance(exc, cls))
    headers: dict[str, str] = {}
    if status == 401:  # RFC 9110 §15.5.2: a 401 must say which scheme to authenticate with
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(error_body(exc.code, str(exc)), status_code=status, headers=headers)


async def send_error(scope: Scope, receive: Receive, send: Send, exc: RagError) -> None:
    """Answer `exc` from a pure ASGI middleware (outside FastAPI's exception handlers)."""
    await rag_response(exc)(scope, receive, send)


def _validation_message(errors: Any) -> str:
    # `loc` can hold client input (the name of an unknown field): clip each part.
    parts = [f"{'.'.join(clip(str(x)) for x in e['loc'])}: {clip(str(e['msg']))}" for e in errors]
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the exception handlers on `app`."""

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return rag_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("invalid_request", _validation_message(exc.errors())), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "request_too_large",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never to the client
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
