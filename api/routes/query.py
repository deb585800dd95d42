"""Search and ask."""

from __future__ import annotations

import time
from dataclasses import asdict

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep
from api.schemas import (
    AskRequest,
    AskResponse,
    CitationOut,
    PassageOut,
    SearchFilter,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/v1", tags=["query"])


def _filters(f: SearchFilter | None) -> dict[str, list[str] | None]:
    """Engine keyword arguments for an optional request filter."""
    return {"sources": f.sources if f else None, "doc_ids": f.doc_ids if f else None}


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, engine: EngineDep) -> SearchResponse:
    """Hybrid search over the collection."""
    t0 = time.perf_counter()
    result = await run_in_threadpool(engine.search, body.query, body.top_k, **_filters(body.filter))
    return SearchResponse(
        query=body.query,
        results=[PassageOut(**asdict(p)) for p in result.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
    )


@router.post("/ask", response_model=AskResponse)
async def ask(body: AskRequest, engine: EngineDep) -> AskResponse:
    """A cited answer (extractive; the LLM path is configured separately)."""
    t0 = time.perf_counter()
    answer = await run_in_threadpool(engine.ask, body.question, body.top_k, **_filters(body.filter))
    return AskResponse(
        question=answer.question,
        answer=answer.answer,
        answerable=answer.answerable,
        mode=answer.mode,
        citations=[CitationOut(**asdict(c)) for c in answer.citations],
        passages=[PassageOut(**asdict(p)) for p in answer.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
    )
