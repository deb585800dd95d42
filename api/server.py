"""Running the app under uvicorn, with the connection limits uvicorn lacks.

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`)
and can refuse requests beyond a number of connections (`limit_concurrency`), but it arms no timer
on a new connection: one that never sends a request, or sends its headers a byte at a time (a
slowloris), stays open forever, and each new byte even cancels the keep-alive timer. The protocol
below adds that deadline; request bodies are bounded by `api.middleware.BodyDeadline`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.config import Settings
from rag.serving import remove_serve_file, write_serve_file

log = logging.getLogger(__name__)


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head: `header_timeout` seconds from
    when the connection opens, or from the end of the previous response, until the request line
    and headers are complete; otherwise the connection is closed."""

    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As H11Protocol; no head timer yet."""
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start waiting for the first request head."""
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        """Parse what arrived; a new request cycle means its head is complete: stop the clock."""
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        """Wait for the next request head. Armed before the parent runs: it starts a request that
        is already buffered (pipelined), which cancels the timer again."""
        self._arm_head_timer()
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection that sent no complete request head in %gs",
                self.header_timeout,
            )
            self.transport.close()


def http_protocol(header_timeout: float) -> type[HeadTimeoutProtocol]:
    """The protocol class for uvicorn's `http=`, with its head deadline (uvicorn instantiates the
    class itself, so the setting travels as a class attribute)."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"header_timeout": header_timeout})


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for `app`: address, timeouts and the connection cap from `settings`.

    uvicorn refuses a request when its open connections (the requesting one included) reach
    `limit_concurrency`, with a 503 and `Connection: close`; +1 so that RAG_MAX_CONNECTIONS
    connections are served. Its own access log is off: it would print query strings (a key sent in
    a URL); ours prints the route only.
    """
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=http_protocol(settings.header_timeout),
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections + 1,
        log_level="info",
        access_log=False,
    )


class RecordedServer(uvicorn.Server):
    """uvicorn's server that, once listening, records itself in `<index_dir>/serve.json` for the
    CLI (`rag.serving`) and removes the file when it shuts down (before uvicorn re-raises a
    SIGTERM; a file left by a killed server is recognised as stale by its pid or its silence)."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        """As uvicorn.Server; `settings` name the index, embedder and whether keys are needed."""
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: Any = None) -> None:
        """Start listening, then write the file (only once the port is bound)."""
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            s = self.settings
            write_serve_file(
                s.index_dir, s.host, s.port, s.embedder, bool(s.api_keys or s.admin_keys)
            )

    async def shutdown(self, sockets: Any = None) -> None:
        """Remove the file first: no new CLI command picks this server while it stops."""
        remove_serve_file(self.settings.index_dir)
        await super().shutdown(sockets=sockets)
