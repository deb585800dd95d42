"""The JSON shapes of answers and search results, as `POST /v1/ask` and `/v1/search` return them.

Pure functions over `rag.types` (no FastAPI): `rag ask --json` and `rag search --json` print the
same objects the HTTP API answers with (`api.schemas.AskResponse`, `SearchResponse`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rag.types import Answer, Passage

PASSAGE_FIELDS = (
    "chunk_id",
    "doc_id",
    "source",
    "title",
    "text",
    "score",
    "start",
    "end",
    "metadata",
    "page",
    "also_in",
)


def passage_json(p: Passage) -> dict[str, Any]:
    """The contract's fields of a passage (its page spans stay inside: `page` says enough)."""
    out = {name: getattr(p, name) for name in PASSAGE_FIELDS}
    out["metadata"] = dict(out["metadata"])
    out["also_in"] = list(out["also_in"])
    return out


def search_json(query: str, passages: Any, took_ms: float) -> dict[str, Any]:
    """`/v1/search`'s response: `query`, `results`, `took_ms`."""
    return {
        "query": query,
        "results": [passage_json(p) for p in passages],
        "took_ms": round(took_ms, 2),
    }


def answer_json(answer: Answer, took_ms: float) -> dict[str, Any]:
    """`/v1/ask`'s (non-streamed) response."""
    llm = answer.llm_ms is not None
    return {
        "question": answer.question,
        "answer": answer.answer,
        "answerable": answer.answerable,
        "mode": answer.mode,
        "citations": [asdict(c) for c in answer.citations],
        "passages": [passage_json(p) for p in answer.passages],
        "took_ms": round(took_ms, 2),
        "warnings": [{"code": w.code, "message": w.message} for w in answer.warnings],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
        if llm
        else None,
        "llm_ms": answer.llm_ms,
        "dropped_citations": answer.dropped_citations,
        "unsupported_sentences": list(answer.unsupported_sentences),
    }
