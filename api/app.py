"""The FastAPI application factory; the engine loads once, in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from api import errors
from api.auth import KeyRing
from api.metrics import Metrics
from api.middleware import (
    Authenticate,
    BodyDeadline,
    BodyLimit,
    CatchAll,
    Observe,
    RateLimit,
)
from api.routes import chat, documents, health, metrics, query, web
from rag import __version__
from rag.config import Settings
from rag.engine import Engine
from rag.ingest.loaders import check_format_dependencies

# Health checks: open without a key (like the docs) and never rate-limited.
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


class App(FastAPI):
    """FastAPI with `CatchAll` outside Starlette's own error middleware (which re-raises)."""

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, wrapped so that an exception never reaches the server."""
        return CatchAll(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, *, owns_engine: bool = False
) -> FastAPI:
    """Build the app. With `engine` given, the lifespan uses it instead of opening one, and
    closes it on shutdown only if `owns_engine` (`rag serve`; tests share theirs)."""
    settings = settings or Settings()
    # Before the server starts (`rag serve` prints the error and exits), not on the first upload.
    check_format_dependencies()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = (
            engine if engine is not None else await run_in_threadpool(Engine, settings)
        )
        app.state.engine.warm_parser()
        try:
            yield
        finally:
            if engine is None or owns_engine:
                app.state.engine.close()
            app.state.engine = None

    app = App(
        title="rag-zh",
        version=__version__,
        lifespan=lifespan,
        description="Cited question answering over Chinese and English documents.",
        # served by api.routes.web from bundled files: FastAPI's own pages load a CDN
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.keys = KeyRing(settings)
    app.state.metrics = Metrics()
    errors.install(app)
    modules = (health, metrics, query, documents, chat, web)
    for module in modules:
        app.include_router(module.router)
    # Added innermost first: CORS wraps everything (errors carry its headers too), then metrics,
    # then the key check (before any body is read), rate limits (per valid key), body limits.
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(BodyDeadline, timeout=settings.body_timeout, min_rate=settings.body_min_rate)
    app.add_middleware(
        RateLimit,
        rate=settings.rate_limit,
        burst=settings.rate_burst,
        keys=app.state.keys,
        exempt=HEALTH_PATHS | {"/metrics"},
    )
    app.add_middleware(
        Authenticate,
        keys=app.state.keys,
        open_paths=HEALTH_PATHS | web.OPEN_PATHS | {app.openapi_url or ""},
        open_prefixes=web.OPEN_PREFIXES,
    )
    app.add_middleware(
        Observe, metrics=app.state.metrics, routes=[r for m in modules for r in m.router.routes]
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
