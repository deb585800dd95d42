"""Prometheus exposition at `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import MetricsDep
from api.schemas import error_responses

router = APIRouter(tags=["health"], responses=error_responses(401))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, m: MetricsDep) -> Response:
    """Requests and latency by route and status, documents and chunks indexed, ingest counts."""
    engine = getattr(request.app.state, "engine", None)
    documents, chunks, generation = engine.counts() if engine is not None else (0, 0, 0)
    body = m.render(documents=documents, chunks=chunks, generation=generation)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
