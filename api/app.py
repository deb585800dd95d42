"""The FastAPI application factory; the engine loads once, in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api import errors
from api.auth import KeyRing
from api.metrics import Metrics
from api.middleware import BodyLimit, Observe
from api.routes import chat, documents, health, metrics, query
from rag import __version__
from rag.config import Settings
from rag.engine import Engine
from rag.ingest.loaders import check_format_dependencies


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. With `engine` given (tests), the lifespan uses it instead of opening one."""
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
            if engine is None:
                app.state.engine.close()
            app.state.engine = None

    app = FastAPI(
        title="rag-zh",
        version=__version__,
        lifespan=lifespan,
        description="Cited question answering over Chinese and English documents.",
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.keys = KeyRing(settings)
    app.state.metrics = Metrics()
    errors.install(app)
    for module in (health, metrics, query, documents, chat):
        app.include_router(module.router)
    # Added innermost first: CORS wraps everything (errors carry its headers too), then metrics.
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(Observe, metrics=app.state.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
