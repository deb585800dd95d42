"""OpenAI-compatible chat over the collection: `/v1/chat/completions` and `/v1/models`.

The last user message is the question; the reply is the cited answer. Citations travel in an
extra top-level field `citations` (on the response, and on the final stream chunk), each naming
the `[n]` marker it explains, its source, span and quote; `answerable` and `warnings` (as in
`/v1/ask`) travel the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, MetricsDep, SettingsDep
from api.metrics import Metrics
from api.schemas import (
    AskWarning,
    ChatChoice,
    ChatChoiceMessage,
    ChatCitation,
    ChatRequest,
    ChatResponse,
    ChatUsage,
    ModelCard,
    ModelList,
    error_responses,
)
from api.sse import SSE_HEADERS, sse, start_stream
from rag.answer.stream import AnswerEvent, DeltaEvent, FinalEvent
from rag.errors import InputError
from rag.types import Answer

router = APIRouter(prefix="/v1", tags=["openai"], responses=error_responses(401, 429))

MODEL_ID = "rag-zh"
_STARTED = int(time.time())


def _question(body: ChatRequest) -> str:
    for m in reversed(body.messages):
        if m.role == "user" and m.text().strip():
            return m.text()
    raise InputError("no user message with text: the last user message is the question")


def _usage(answer: Answer) -> ChatUsage:
    return ChatUsage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )


def _citations(answer: Answer) -> list[ChatCitation]:
    """Citations with their passage's title and document metadata."""
    passages = {p.chunk_id: p for p in answer.passages}
    out = []
    for c in answer.citations:
        p = passages.get(c.chunk_id)
        meta = dict(p.metadata) if p else {}
        out.append(ChatCitation(**asdict(c), title=p.title if p else "", metadata=meta))
    return out


@router.get("/models", response_model=ModelList)
async def models(settings: SettingsDep) -> ModelList:
    """The one model this service answers as."""
    return ModelList(data=[ModelCard(id=MODEL_ID, created=_STARTED)])


@router.post(
    "/chat/completions",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **error_responses(400, 408, 413, 422, 503),
    },
    description="OpenAI chat completions over the collection. With `stream: true`: "
    "`chat.completion.chunk` events, the last one carrying `finish_reason: stop` and `citations`, "
    "then `data: [DONE]`.",
)
async def chat(
    body: ChatRequest, engine: EngineDep, metrics: MetricsDep
) -> ChatResponse | StreamingResponse:
    """Answer the last user message with a cited reply."""
    question = _question(body)
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        first, rest = await start_stream(lambda: engine.ask_stream(question, body.top_k))
        return StreamingResponse(
            _chunks(first, rest, cid, created, body, metrics),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    answer = await run_in_threadpool(engine.ask, question, body.top_k)
    metrics.observe_answer(answer)
    return ChatResponse(
        id=cid,
        created=created,
        model=body.model,
        choices=[ChatChoice(message=ChatChoiceMessage(content=answer.answer))],
        usage=_usage(answer),
        citations=_citations(answer),
        answerable=answer.answerable,
        warnings=[AskWarning(code=w.code, message=w.message) for w in answer.warnings],
    )


async def _chunks(
    first: AnswerEvent,
    rest: AsyncIterator[AnswerEvent],
    cid: str,
    created: int,
    body: ChatRequest,
    metrics: Metrics,
) -> AsyncIterator[bytes]:
    """AnswerEvents → `chat.completion.chunk` SSE messages, ending with `[DONE]`."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    usage = ChatUsage()
    async for e in rest:
        if isinstance(e, DeltaEvent):
            yield chunk({"content": e.text})
        elif isinstance(e, FinalEvent):
            metrics.observe_answer(e.answer)
            yield chunk(
                {},
                "stop",
                citations=[c.model_dump() for c in _citations(e.answer)],
                answerable=e.answer.answerable,
                warnings=[{"code": w.code, "message": w.message} for w in e.answer.warnings],
            )
            usage = _usage(e.answer)
    if (body.stream_options or {}).get("include_usage"):
        yield sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [],
                "usage": usage.model_dump(),
            }
        )
    yield sse("[DONE]")
