"""Search and ask (with `stream: true`, ask answers as server-sent events)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, MetricsDep
from api.metrics import Metrics
from api.schemas import (
    AskRequest,
    AskResponse,
    AskWarning,
    CitationOut,
    PassageOut,
    SearchFilter,
    SearchRequest,
    SearchResponse,
    Usage,
    error_responses,
)
from api.sse import SSE_HEADERS, sse, start_stream
from rag.answer.stream import AnswerEvent, DeltaEvent, FinalEvent, PassagesEvent
from rag.retrieve.filter import MetadataFilter
from rag.types import Answer, Passage

router = APIRouter(
    prefix="/v1",
    tags=["query"],
    responses=error_responses(400, 401, 408, 413, 422, 429, 503),
)

_ASK_STREAM_DOC = """With `stream: true` the response is `text/event-stream`: one `passages` event
(`{"passages": [...]}`), then `delta` events (`{"text": "..."}`; their concatenation is the answer),
then `citations` (the final answer's fields: `answer`, `answerable`, `mode`, `citations`, `passages`,
`warnings`, `usage`, `llm_ms`, `dropped_citations`, `unsupported_sentences`), then
`done` (`{"took_ms": float}`)."""


def _filters(f: SearchFilter | None) -> dict[str, Any]:
    """Engine keyword arguments for an optional request filter (`InputError` on a bad date)."""
    if f is None:
        return {}
    return {
        "sources": f.sources,
        "doc_ids": f.doc_ids,
        "where": MetadataFilter.build(f.metadata, f.date_from, f.date_to),
    }


def _passage_out(p: Passage) -> PassageOut:
    """The contract's fields of a passage (its page spans stay inside: `page` says enough)."""
    return PassageOut(**{name: getattr(p, name) for name in PassageOut.model_fields})


def _warnings(answer: Answer) -> list[AskWarning]:
    return [AskWarning(code=w.code, message=w.message) for w in answer.warnings]


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, engine: EngineDep, response: Response) -> SearchResponse:
    """Hybrid search over the collection. `X-Index-Generation` names the index state searched."""
    t0 = time.perf_counter()
    result = await run_in_threadpool(engine.search, body.query, body.top_k, **_filters(body.filter))
    response.headers["X-Index-Generation"] = str(result.generation)
    return SearchResponse(
        query=body.query,
        results=[_passage_out(p) for p in result.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    description=_ASK_STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask(
    body: AskRequest, engine: EngineDep, metrics: MetricsDep
) -> AskResponse | StreamingResponse:
    """A cited answer; `stream: true` for server-sent events."""
    t0 = time.perf_counter()
    f = _filters(body.filter)
    if body.stream:
        first, rest = await start_stream(
            lambda: engine.ask_stream(body.question, body.top_k, mode=body.mode, **f)
        )
        return StreamingResponse(
            _ask_events(first, rest, metrics, t0),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    answer = await run_in_threadpool(
        lambda: engine.ask(body.question, body.top_k, mode=body.mode, **f)
    )
    metrics.observe_answer(answer)
    return _response(answer, t0)


def _response(answer: Answer, t0: float) -> AskResponse:
    return AskResponse(
        question=answer.question,
        answer=answer.answer,
        answerable=answer.answerable,
        mode=answer.mode,
        citations=[CitationOut(**asdict(c)) for c in answer.citations],
        passages=[_passage_out(p) for p in answer.passages],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
        warnings=_warnings(answer),
        usage=Usage(
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            total_tokens=answer.prompt_tokens + answer.completion_tokens,
        )
        if answer.llm_ms is not None
        else None,
        llm_ms=answer.llm_ms,
        dropped_citations=answer.dropped_citations,
        unsupported_sentences=list(answer.unsupported_sentences),
    )


async def _ask_events(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent], metrics: Metrics, t0: float
) -> AsyncIterator[bytes]:
    """AnswerEvents → SSE messages. The `citations` event carries the final answer too: if the LLM
    broke off mid-stream, the final (extractive) answer replaces the deltas sent so far."""

    async def all_events() -> AsyncIterator[AnswerEvent]:
        yield first
        async for e in rest:
            yield e

    async for event in all_events():
        if isinstance(event, PassagesEvent):
            yield sse(
                {"passages": [_passage_out(p).model_dump() for p in event.passages]},
                "passages",
            )
        elif isinstance(event, DeltaEvent):
            yield sse({"text": event.text}, "delta")
        elif isinstance(event, FinalEvent):
            metrics.observe_answer(event.answer)
            final = _response(event.answer, t0).model_dump(exclude={"question", "took_ms"})
            yield sse(final, "citations")
    yield sse({"took_ms": round(1000 * (time.perf_counter() - t0), 2)}, "done")
