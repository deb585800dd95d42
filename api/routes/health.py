"""Liveness and readiness (async: answered on the event loop, no threadpool hop during ingests)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (does not touch the index)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request) -> Health | JSONResponse:
    """503 until the index is loaded and its search helpers are built (an English question
    would wait for them), then its counts."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None or engine.warming:
        return JSONResponse(Health(status="loading").model_dump(), status_code=503)
    documents, chunks, _ = await run_in_threadpool(engine.counts)  # may ask the database
    return Health(status="ready", documents=documents, chunks=chunks)
