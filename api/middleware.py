"""Pure ASGI middleware: the last-resort error guard, API keys, rate limits, request-body deadline
and size limit, and per-request metrics + access log.

The access log records method, route template, status and latency only: never the query string
or headers, so a key mistakenly sent in a URL or header does not end up in a log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyRing, bearer_digest, is_write
from api.errors import RateLimited, error_body, send_error
from api.metrics import Metrics
from rag.errors import RagError

log = logging.getLogger("rag.access")
errors_log = logging.getLogger("api.errors")


class CatchAll:
    """Outermost layer: an exception never reaches the server.

    Starlette's ServerErrorMiddleware sends the 500 (our JSON one) and then re-raises, and uvicorn
    answers an exception by closing the connection, without `Connection: close`: the client's next
    request on that keep-alive connection then fails. Here a response that went out whole ends the
    matter (the connection stays usable); with no response yet, the JSON 500 is sent; only a
    response cut off half-way lets the exception through, since closing is then the only honest end.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app` (the whole middleware stack)."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, keeping track of how much of the response was sent."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = False

        async def tracked(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if complete:
                return  # the error handler answered (and logged) it already
            if started:
                raise
            errors_log.exception("unhandled error")
            await _send_json(send, 500, "internal_error", "internal server error")


class Authenticate:
    """API keys, from the method and path alone: runs before any body is read, so a missing key is
    a 401 (and a read key on a write a 403) whatever the body holds. `open_paths`, and the paths
    that start with one of `open_prefixes` (the web page's and the docs' static files), need no
    key."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        open_paths: frozenset[str],
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        """Wrap `app`."""
        self.app = app
        self.keys = keys
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key, then pass through."""
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.open_paths
            or (path.startswith(self.open_prefixes) and scope["method"] in ("GET", "HEAD"))
        ):
            await self.app(scope, receive, send)
            return
        try:
            self.keys.check(
                Headers(scope=scope),
                QueryParams(scope["query_string"]).keys(),
                write=is_write(scope["method"], scope["path"]),
            )
        except RagError as denied:
            await send_error(scope, receive, send, denied)
            return
        await self.app(scope, receive, send)


class RateLimit:
    """A token bucket per client: `rate` requests/s with bursts of `burst`, else 429 + Retry-After.

    A client is its API key (digest) when keys are configured, else its IP address: without keys
    any Bearer value is accepted, so a client could dodge its bucket by changing it. Runs after
    `Authenticate`, so only valid keys get buckets. `exempt` paths are never limited.
    """

    MAX_CLIENTS = 10_000  # buckets kept before idle (refilled) ones are forgotten

    def __init__(
        self, app: ASGIApp, rate: float, burst: int, keys: KeyRing, exempt: frozenset[str]
    ) -> None:
        """Wrap `app`; `rate` 0 turns limiting off."""
        self.app = app
        self.rate = rate
        self.burst = float(burst)
        self.keys = keys
        self.exempt = exempt
        self._buckets: dict[bytes | str, tuple[float, float]] = {}  # client → (tokens, when)
        self._pruned = 0.0

    def _client(self, scope: Scope) -> bytes | str:
        digest = bearer_digest(Headers(scope=scope)) if self.keys.configured else None
        if digest is not None:
            return digest
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    def take(self, client: bytes | str, now: float) -> float:
        """Spend one token of `client`'s bucket: 0.0, or the seconds until one is available."""
        if len(self._buckets) > self.MAX_CLIENTS and now - self._pruned > 1.0:
            self._prune(now)
        tokens, when = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # A bucket that has refilled says nothing a new one would not: drop it.
        self._pruned = now
        self._buckets = {
            c: (t, w)
            for c, (t, w) in self._buckets.items()
            if t + (now - w) * self.rate < self.burst
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Spend a token or answer 429."""
        if scope["type"] != "http" or self.rate <= 0 or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        wait = self.take(self._client(scope), time.monotonic())
        if wait > 0:
            limited = RateLimited(
                f"over the rate limit of {self.rate:g} requests/s (RAG_RATE_LIMIT); "
                "retry after the Retry-After seconds",
                wait,
            )
            await send_error(scope, receive, send, limited)
            return
        await self.app(scope, receive, send)


class BodyTimeout(HTTPException):
    """408; an HTTPException so FastAPI's body parsing passes it through unchanged. The rest of the
    body may still be on its way: `Connection: close` has the server close the connection."""

    def __init__(self, seconds: float) -> None:
        """Name the limit in the message."""
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s (RAG_BODY_TIMEOUT)",
            headers={"Connection": "close"},
        )


class BodyDeadline:
    """Bound the time to receive a request body: `timeout` seconds from the start of the request,
    plus one second per `min_rate` bytes received (a large upload on a slow link still arrives,
    a body trickled in a byte at a time does not). Over it: 408 and the connection closed.

    uvicorn has no such timeout: a client that sends a byte now and then holds a worker's request
    (and its connection) for as long as it likes.
    """

    def __init__(self, app: ASGIApp, timeout: float, min_rate: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through with a `receive` that times out until the body is complete."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        received = 0
        complete = False

        async def timed() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive() waits for a disconnect: no deadline
                return await receive()
            deadline = start + self.timeout + received / self.min_rate
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.timeout) from None
            received += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


class BodyTooLarge(HTTPException):
    """413; an HTTPException so FastAPI's body parsing passes it through unchanged."""

    def __init__(self, limit: int) -> None:
        """Name the limit in the message."""
        super().__init__(
            413, f"request body is over the limit of {limit} bytes (RAG_MAX_REQUEST_BYTES)"
        )


class BodyLimit:
    """Refuse bodies over `limit` bytes: by Content-Length up front, else while they stream in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(send, 413, "request_too_large", BodyTooLarge(self.limit).detail)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class Observe:
    """Time every request; count it by method, route template and status; write the access log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        """Wrap `app`; `routes` (the app's, with their full paths) name the template of a
        request refused before routing."""
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        routed = getattr(scope.get("route"), "path", None)
        if routed:
            return str(routed)
        # Refused before routing (a 401, 429 or 413 from the middleware): still name its route,
        # the one for its method if there is one.
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "unmatched"))
            if match is Match.PARTIAL and partial is None:
                partial = str(getattr(route, "path", "unmatched"))
        return partial or "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, recording the status of the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = self._template(scope)
            seconds = time.perf_counter() - t0
            self.metrics.observe(scope["method"], route, status, seconds)
            log.info("%s %s %d %.1fms", scope["method"], route, status, 1000 * seconds)


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
