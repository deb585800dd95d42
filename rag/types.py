"""Plain frozen dataclasses that flow through the library (no pydantic inside `rag/`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A loaded, normalised document. `text` is the stored text every offset points into."""

    source: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """A half-open character span `[start, end)` into a document's stored text."""

    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document; `text == doc.text[start:end]`."""

    doc_id: str
    ord: int
    text: str
    start: int
    end: int

    @property
    def chunk_id(self) -> str:
        """Stable, human-readable id: `<doc_id>:<ord>`."""
        return f"{self.doc_id}:{self.ord}"


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document's summary row."""

    doc_id: str
    source: str
    title: str
    chars: int
    chunks: int
    content_hash: str
    metadata: dict[str, Any]
    updated_at: float


@dataclass(frozen=True)
class PageSpan:
    """Page `page` (1-based) of a paged document (PDF) covers `[start, end)` of its stored text."""

    page: int
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its score; `text` is the original (unfolded) chunk text.

    `metadata` is its document's (issuer, date, 文号, the user's own keys…), shown with citations.
    For a paged document, `page` is the page the passage starts on and `page_spans` are the pages
    it overlaps (so a quote inside it can be given its own page); both are empty otherwise.
    `also_in` names the other sources where the same (near-identical) text was retrieved: their
    passages were collapsed into this one.
    """

    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    score: float
    start: int
    end: int
    # shared with the snapshot, never mutated; left out of the hash (a dict cannot be hashed)
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    page: int | None = None
    page_spans: tuple[PageSpan, ...] = ()
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkSpan:
    """A stored chunk's place in its document (`doc_id:ord` names it) and its text."""

    doc_id: str
    ord: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    """Points an answer marker `[marker]` at an exact span of a returned passage."""

    marker: int
    chunk_id: str
    source: str
    start: int
    end: int
    quote: str
    page: int | None = None  # the page the quote starts on (paged documents only)


@dataclass(frozen=True)
class Warning_:
    """Something the caller should know about how an answer was made (e.g. the LLM failed)."""

    code: str
    message: str


@dataclass(frozen=True)
class Answer:
    """A composed answer: text with `[n]` markers, its citations and the passages they index."""

    question: str
    answer: str
    answerable: bool
    mode: str
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    confidence: float = 0.0
    warnings: tuple[Warning_, ...] = ()
    # LLM answers only: tokens, latency, and what the citation check found
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_ms: float | None = None
    dropped_citations: int = 0
    unsupported_sentences: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did to one file: `added`, `updated`, `unchanged` (or `failed` with a reason).

    An added or updated document that nearly duplicates one already stored is stored all the same;
    `duplicate_of` names that document's source (also recorded in its metadata).
    """

    source: str
    status: str
    doc_id: str = ""
    chunks: int = 0
    reason: str = ""
    duplicate_of: str = ""
