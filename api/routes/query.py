"""Search and ask (with `stream: true`, ask answers as server-sent events)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict

from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_read
from api.deps import EngineDep, SettingsDep
from api.schemas import (
    AskRequest,
    AskResponse,
    AskWarning,
    CitationOut,
    PassageOut,
    SearchFilter,
    SearchRequest,
    SearchResponse,
    error_responses,
)
from api.sse import SSE_HEADERS, sse, start_stream
from rag.answer.stream import AnswerEvent, DeltaEvent, FinalEvent, PassagesEvent
from rag.config import Settings

router = APIRouter(
    prefix="/v1",
    tags=["query"],
    dependencies=[Depends(require_read)],
    responses=error_responses(400, 401, 413, 422, 503),
)

_ASK_STREAM_DOC = """With `stream: true` the response is `text/event-stream`: one `passages` event
(`{"passages": [...]}`), then `delta` events (`{"text": "..."}`; their concatenation is the answer),
then `citations` (`{"citations": [...], "answerable": bool, "mode": str, "warnings": [...]}`), then
`done` (`{"took_ms": float}`)."""


def _filters(f: SearchFilter | None) -> dict[str, list[str] | None]:
    """Engine keyword arguments for an optional request filter."""
    return {"sources": f.sources if f else None, "doc_ids": f.doc_ids if f else None}


def _warnings(mode: str, settings: Settings) -> list[AskWarning]:
    """Explain a requested mode that cannot be honoured."""
    if mode == "llm" and not settings.llm_base_url:
        return [
            AskWarning(
                code="llm_not_configured",
                message="no LLM is configured (RAG_LLM_BASE_URL); answered extractively",
            )
        ]
    return []


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, engine: EngineDep, response: Response) -> SearchResponse:
    """Hybrid search over the collection. `X-Index-Generation` names the index state searched."""
    t0 = time.perf_counter()
    result = await run_in_threadpool(engine.search, body.query, body.top_k, **_filters(body.filter))
    response.headers["X-Index-Generation"] = str(result.generation)
    return SearchResponse(
        query=body.query,
        results=[PassageOut(**asdict(p)) for p in result.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    description=_ASK_STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask(
    body: AskRequest, engine: EngineDep, settings: SettingsDep
) -> AskResponse | StreamingResponse:
    """A cited answer; `stream: true` for server-sent events."""
    t0 = time.perf_counter()
    warnings = _warnings(body.mode, settings)
    if body.stream:
        first, rest = await start_stream(
            lambda: engine.ask_stream(body.question, body.top_k, **_filters(body.filter))
        )
        return StreamingResponse(
            _ask_events(first, rest, warnings, t0),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    answer = await run_in_threadpool(engine.ask, body.question, body.top_k, **_filters(body.filter))
    return AskResponse(
        question=answer.question,
        answer=answer.answer,
        answerable=answer.answerable,
        mode=answer.mode,
        citations=[CitationOut(**asdict(c)) for c in answer.citations],
        passages=[PassageOut(**asdict(p)) for p in answer.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
        warnings=warnings,
    )


async def _ask_events(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent], warnings: list[AskWarning], t0: float
) -> AsyncIterator[bytes]:
    """AnswerEvents → SSE messages."""

    async def all_events() -> AsyncIterator[AnswerEvent]:
        yield first
        async for e in rest:
            yield e

    async for event in all_events():
        if isinstance(event, PassagesEvent):
            yield sse(
                {"passages": [PassageOut(**asdict(p)).model_dump() for p in event.passages]},
                "passages",
            )
        elif isinstance(event, DeltaEvent):
            yield sse({"text": event.text}, "delta")
        elif isinstance(event, FinalEvent):
            a = event.answer
            yield sse(
                {
                    "citations": [CitationOut(**asdict(c)).model_dump() for c in a.citations],
                    "answerable": a.answerable,
                    "mode": a.mode,
                    "warnings": [w.model_dump() for w in warnings],
                },
                "citations",
            )
    yield sse({"took_ms": round(1000 * (time.perf_counter() - t0), 2)}, "done")
