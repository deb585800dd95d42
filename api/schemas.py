"""Pydantic models of the HTTP contract (the only pydantic models besides Settings).

Request models validate strictly: `"5"` or `true` is no `top_k`, `1` is no `stream`. The bounds
that settings decide (top_k up to RAG_MAX_TOP_K, queries up to RAG_MAX_QUERY_CHARS, the default
top_k RAG_TOP_K) are checked by the engine, so that changing a setting changes the limit.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Strict(BaseModel):
    """Unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class StrictIn(BaseModel):
    """A request body: unknown fields are an error, and no value is coerced to another type."""

    model_config = ConfigDict(extra="forbid", strict=True)


# The OpenAPI schema states the bounds the engine checks against the settings.
TOP_K_DOC = (
    "Passages to return: at least 1, at most RAG_MAX_TOP_K (50 by default); "
    "RAG_TOP_K (5 by default) when absent"
)
QUERY_DOC = "At most RAG_MAX_QUERY_CHARS characters (2000 by default)"


class ErrorInfo(Strict):
    """What went wrong: a stable machine `code` and a human `message`."""

    code: str
    message: str


class ErrorOut(Strict):
    """Every error response: `{"error": {"code", "message"}}`."""

    error: ErrorInfo


_ERROR_MEANING = {
    400: "The request body cannot be read (not UTF-8, malformed multipart)",
    401: "Missing or invalid API key (or a key sent in the URL)",
    403: "The key may read but not write",
    404: "No such document",
    408: "The request body did not arrive in time (RAG_BODY_TIMEOUT)",
    413: "The request body or an uploaded file is over its size limit, or a file expands past a "
    "parse limit (uncompressed bytes, characters, PDF pages, chunks)",
    415: "Unsupported content type or file type",
    422: "The request is invalid (parameters, body or document content, or a document too "
    "complex to parse within the parse time and memory limits)",
    429: "Over the rate limit (RAG_RATE_LIMIT); the Retry-After header says when to retry",
    499: "The client closed the connection before its upload was stored (nothing was stored)",
    503: "The index is still loading, or is read-only (a write is refused; searches go on)",
    507: "No space left to store the write (nothing of it was applied; free space and retry)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can answer with."""
    return {c: {"model": ErrorOut, "description": _ERROR_MEANING[c]} for c in codes}


MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MetaValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool
IsoDate = Annotated[str, StringConstraints(max_length=32)]  # checked by the engine (clear 422)


class SearchFilter(StrictIn):
    """Restrict results to some documents. `sources` and `doc_ids` name documents (either list
    may name one); `metadata` and the date range then keep only the documents that match."""

    sources: list[str] | None = Field(None, max_length=1000)
    doc_ids: list[str] | None = Field(None, max_length=1000)
    metadata: dict[MetaKey, MetaValue] | None = Field(
        None,
        max_length=32,
        description="Equality on document metadata keys, all of which must match "
        '(e.g. `{"issuer": "上海市人民政府"}`); a stored list matches when it holds the value; '
        "a key a document lacks matches nothing",
    )
    date_from: IsoDate | None = Field(
        None, description="Earliest metadata `date`, inclusive (ISO `YYYY-MM-DD`)"
    )
    date_to: IsoDate | None = Field(
        None, description="Latest metadata `date`, inclusive (ISO `YYYY-MM-DD`)"
    )


class SearchRequest(StrictIn):
    """`POST /v1/search` body."""

    query: str = Field(..., min_length=1, description=QUERY_DOC)
    top_k: int | None = Field(None, ge=1, description=TOP_K_DOC)
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
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="The document's metadata: extracted `title`, `date`, `issuer`, `doc_number` "
        "and any the uploader gave (theirs win)",
    )
    page: int | None = Field(
        None, description="Page (1-based) the passage starts on; null unless the document is a PDF"
    )
    also_in: list[str] = Field(
        default_factory=list,
        description="Other sources holding the same (near-identical) text; their passages were "
        "collapsed into this one",
    )


class SearchResponse(Strict):
    """`POST /v1/search` response."""

    query: str
    results: list[PassageOut]
    took_ms: float


class Usage(Strict):
    """Token usage of an LLM answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AskWarning(Strict):
    """Something the caller should know about how the answer was made."""

    code: str = Field(
        description="For programs: e.g. `not_a_question`, `constraint_mismatch`, `low_confidence`"
        " (the answer is the closest quote, which may not answer the question directly), `llm_error`"
    )
    message: str = Field(description="For people (Chinese for a Chinese question)")


class AskRequest(StrictIn):
    """`POST /v1/ask` body."""

    question: str = Field(..., min_length=1, description=QUERY_DOC)
    top_k: int | None = Field(None, ge=1, description=TOP_K_DOC)
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
    page: int | None = Field(
        None, description="Page (1-based) the quote starts on; null unless the document is a PDF"
    )


class AskResponse(Strict):
    """`POST /v1/ask` response."""

    question: str
    answer: str
    answerable: bool
    mode: str
    citations: list[CitationOut]
    passages: list[PassageOut]
    took_ms: float
    warnings: list[AskWarning] = Field(default_factory=list)
    usage: Usage | None = Field(None, description="LLM token usage (null for extractive answers)")
    llm_ms: float | None = Field(None, description="LLM latency (null for extractive answers)")
    dropped_citations: int = Field(
        0, description="Markers the LLM invented (pointing at no passage), removed"
    )
    unsupported_sentences: list[str] = Field(
        default_factory=list,
        description="LLM sentences that cite nothing or that their cited passages do not support: "
        "removed from the answer (kept, only listed, with RAG_DROP_UNSUPPORTED=false)",
    )


class Health(Strict):
    """`GET /healthz` and `/readyz`."""

    status: str
    documents: int | None = None
    chunks: int | None = None


class DocumentIn(StrictIn):
    """`POST /v1/documents` JSON body: text sent directly instead of a file."""

    source: str = Field(
        ..., min_length=1, max_length=512, description="Name the document is stored under"
    )
    text: str = Field(..., min_length=1)
    metadata: dict[str, Any] | None = Field(
        None,
        max_length=64,
        description="Any JSON object (at most 64 keys, 16 KiB as JSON); its keys win over the "
        "metadata extracted from the text (`title`, `date`, `issuer`, `doc_number`)",
    )


class DocumentOut(Strict):
    """One ingested document's outcome."""

    doc_id: str
    source: str
    chunks: int
    status: str = Field(..., description="added, updated or unchanged")
    duplicate_of: str | None = Field(
        None, description="Source of a stored document this one nearly duplicates (stored anyway)"
    )


class IngestResponse(DocumentOut):
    """`POST /v1/documents`: the first (or only) document's fields, and every document's outcome."""

    documents: list[DocumentOut]


class DocumentInfoOut(Strict):
    """A stored document."""

    doc_id: str
    source: str
    title: str
    chars: int
    chunks: int
    content_hash: str
    metadata: dict[str, object]
    updated_at: float


class PageSpanOut(Strict):
    """Page `page` (1-based) of a paged document covers `text[start:end]`."""

    page: int
    start: int
    end: int


class DocumentTextOut(Strict):
    """`GET /v1/documents/{doc_id}/text`: the stored text every passage and citation offset
    indexes, with the document's metadata and (for a PDF) its page spans."""

    doc_id: str
    source: str
    title: str
    content_hash: str = Field(..., description="Hash of the stored text (changes when it does)")
    metadata: dict[str, object]
    text: str = Field(
        ...,
        description="The stored (normalised) text. A citation's or passage's `start`/`end` index "
        "it in Unicode code points (Python string indices): `text[start:end]` is the quote. "
        "JavaScript strings count UTF-16 units, so a character outside the BMP counts twice there.",
    )
    pages: list[PageSpanOut] = Field(
        default_factory=list,
        description="One span per page of a paged document (PDF), in page order; empty otherwise",
    )


class DocumentList(Strict):
    """`GET /v1/documents`."""

    documents: list[DocumentInfoOut]
    total: int


class Deleted(Strict):
    """`DELETE /v1/documents/{doc_id}`."""

    deleted: str


# --- OpenAI-compatible chat ---------------------------------------------------------------------
class ContentPart(BaseModel):
    """A part of a multi-part message; only text parts are read."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message (OpenAI format; unknown fields such as `name` are tolerated)."""

    model_config = ConfigDict(extra="allow", strict=True)
    role: str = Field(..., max_length=32)
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content or [] if p.type == "text")


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions` (OpenAI format). Sampling fields are accepted and ignored by the
    extractive answerer; `top_k` is this service's own extension."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = Field("rag-zh", max_length=256)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=256)
    stream: bool = False
    top_k: int | None = Field(None, ge=1, description=TOP_K_DOC)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = Field(None, max_length=256)
    stream_options: dict[str, object] | None = None
    metadata: dict[str, str] | None = None


class ChatCitation(Strict):
    """A citation as it travels with chat responses (extra field `citations`)."""

    marker: int
    chunk_id: str
    source: str
    title: str
    start: int
    end: int
    quote: str
    metadata: dict[str, Any] = Field(default_factory=dict, description="The document's metadata")
    page: int | None = Field(
        None, description="Page (1-based) the quote starts on; null unless the document is a PDF"
    )


class ChatChoiceMessage(Strict):
    """The assistant's reply."""

    role: str = "assistant"
    content: str


class ChatChoice(Strict):
    """One choice (always one)."""

    index: int = 0
    message: ChatChoiceMessage
    finish_reason: str = "stop"


class ChatUsage(Strict):
    """Token usage (zero when no LLM was called)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResponse(Strict):
    """`POST /v1/chat/completions` response, plus `citations`, `answerable` and `warnings`."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    citations: list[ChatCitation] = Field(
        ..., description="Sources for the [n] markers in the reply"
    )
    answerable: bool
    warnings: list[AskWarning] = Field(
        default_factory=list,
        description="As in `/v1/ask`: e.g. `not_a_question`, `constraint_mismatch`, `low_confidence`",
    )


class ModelCard(Strict):
    """One model."""

    id: str
    object: str = "model"
    created: int
    owned_by: str = "rag-zh"


class ModelList(Strict):
    """`GET /v1/models`."""

    object: str = "list"
    data: list[ModelCard]
