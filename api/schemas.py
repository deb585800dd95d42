"""Pydantic models of the HTTP contract (the only pydantic models besides Settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class SearchFilter(Strict):
    """Restrict results to some documents."""

    sources: list[str] | None = Field(None, max_length=1000)
    doc_ids: list[str] | None = Field(None, max_length=1000)


class SearchRequest(Strict):
    """`POST /v1/search` body."""

    query: str = Field(..., min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=50)
    filter: SearchFilter | None = None


class PassageOut(Strict):
    """A retrieved passage."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    score: float
    start: int
    end: int


class SearchResponse(Strict):
    """`POST /v1/search` response."""

    query: str
    results: list[PassageOut]
    took_ms: float


class AskRequest(Strict):
    """`POST /v1/ask` body."""

    question: str = Field(..., min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=50)
    mode: str = Field("auto", pattern="^(auto|extractive|llm)$")
    stream: bool = False
    filter: SearchFilter | None = None


class CitationOut(Strict):
    """Points answer marker `[marker]` at `passages[marker-1]`, span and exact quote."""

    marker: int
    chunk_id: str
    source: str
    start: int
    end: int
    quote: str


class AskResponse(Strict):
    """`POST /v1/ask` response."""

    question: str
    answer: str
    answerable: bool
    mode: str
    citations: list[CitationOut]
    passages: list[PassageOut]
    took_ms: float


class Health(Strict):
    """`GET /healthz` and `/readyz`."""

    status: str
    documents: int | None = None
    chunks: int | None = None
