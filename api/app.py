"""The FastAPI application factory; the engine loads once, in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import errors
from api.routes import health, query
from rag import __version__
from rag.config import Settings
from rag.engine import Engine


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. With `engine` given (tests), the lifespan uses it instead of opening one."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = (
            engine if engine is not None else await run_in_threadpool(Engine, settings)
        )
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
    errors.install(app)
    app.include_router(health.router)
    app.include_router(query.router)
    return app
