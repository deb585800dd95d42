"""Settings: one pydantic-settings class. Precedence: CLI flags > `RAG_*` environment > defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits


class Settings(BaseSettings):
    """Every knob of the service. Construct with keyword overrides for flags."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", frozen=True)

    index_dir: Path = Field(
        Path("index"), description="Where the SQLite store and derived indexes live."
    )
    store_url: str = Field(
        "",
        description="Empty: the embedded store (SQLite + segment files in index_dir). "
        "postgresql://user:password@host:port/db: documents, vectors and BM25 statistics in "
        "PostgreSQL with pgvector, searched there; any number of `rag serve` replicas may share it.",
    )
    embedder: str = Field(
        "use-multilingual",
        description="Embedding backend: `use-multilingual` (bundled, the default), `e5-small` "
        "(the `e5` extra: better dense-only ranking, ~20x the CPU to ingest, no working "
        "abstention; docs/quality.md), `sbert:<model id or path>`, or a sentence-transformers "
        "model id / local path.",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096)

    # Chunking: target size in characters; neighbouring chunks share `chunk_overlap` sentences.
    chunk_size: int = Field(400, ge=50, le=8000)
    chunk_overlap: int = Field(1, ge=0, le=5)
    max_file_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Files larger than this are refused."
    )
    ingest_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Documents parsed at the same time, each in its own sandbox process (folder "
        "ingests and uploads alike); 0 or 1: one at a time. Without the sandbox "
        "(parse_sandbox false) files are parsed one at a time in the ingesting process.",
    )

    # What a file may expand to while parsed (rag/ingest/limits.py says why these defaults).
    max_expanded_bytes: int = Field(
        DEFAULT_LIMITS.max_expanded_bytes,
        ge=1,
        description="Largest total a zip-based file (.docx) may inflate to, by its zip directory "
        "(verified while inflating); larger ones are refused (413) before parsing.",
    )
    max_document_chars: int = Field(
        DEFAULT_LIMITS.max_document_chars,
        ge=1,
        description="Most characters of text one document may hold once extracted (also the "
        "most all documents of one upload request may hold together); more is refused (413).",
    )
    max_pdf_pages: int = Field(
        DEFAULT_LIMITS.max_pdf_pages,
        ge=1,
        description="Most pages of a PDF; more is refused (413) before the pages are read.",
    )
    max_chunks_per_document: int = Field(
        DEFAULT_LIMITS.max_chunks_per_document,
        ge=1,
        description="Most chunks one document may be split into; more is refused (413).",
    )
    # The parse sandbox (rag/ingest/sandbox.py): untrusted bytes are parsed in a child process.
    parse_sandbox: bool = Field(
        True,
        description="Parse every document (uploads and folder ingests) in a child process with "
        "the memory, CPU and time limits below, so a runaway parser cannot hurt the service. "
        "Off: parsing runs in the ingesting process, bounded only by the size limits above.",
    )
    parse_timeout: float = Field(
        120.0,
        gt=0,
        le=86400,
        description="Seconds (wall clock) one document's parsing may take in the sandbox; the "
        "process is then killed and the file refused (422 document_too_complex). The largest "
        "legitimate files measured take under 45 s on a slow 2-core machine.",
    )
    parse_memory_mb: int = Field(
        2048,
        ge=256,
        description="Address space (MiB) of a sandbox parse process (RLIMIT_AS); a parse that "
        "needs more is refused (422 document_too_complex). The largest legitimate text file "
        "measured peaks at ~0.7 GiB.",
    )

    # Retrieval
    top_k: int = Field(5, ge=1, description="Passages returned when a request names no top_k.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k a request may ask for (422 above).")
    candidates: int = Field(
        50, ge=1, description="Candidates drawn from each retriever before fusion."
    )
    max_query_chars: int = Field(
        2000, ge=1, description="Longest query or question, in characters (422 above)."
    )
    rerank: bool = Field(
        True, description="Rerank the fused top 20 with the fitted feature reranker."
    )
    # Floor on the answerability probability (0..1) below which the answer is "not found".
    # The model behind it is fitted by `python benchmarks/fit_answerability.py`, its bias set so
    # that 0.5 refuses at most 5% of the answerable held-out (check) fitting questions.
    relevance_floor: float = Field(0.5, ge=0.0, le=1.0)

    # LLM (optional; retrieval-only and extractive answers work without it)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_backend: str = Field(
        "openai", description="LLM backend name (only 'openai'-compatible today)."
    )
    llm_timeout: float = Field(60.0, gt=0, description="Seconds for a whole LLM reply.")
    llm_retries: int = Field(2, ge=0, le=10, description="Retries on 429/5xx/connection errors.")
    llm_max_tokens: int = Field(512, ge=1)
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0)
    drop_unsupported: bool = Field(
        True,
        description="Remove LLM sentences that cite nothing or that their cited passages do not "
        "support (false: keep them, only listed in unsupported_sentences).",
    )

    # HTTP
    api_keys: str | None = Field(
        None,
        description="Comma-separated keys for every route but health checks; unset means open.",
    )
    admin_keys: str | None = Field(
        None,
        description="Comma-separated keys required for writes (uploads, deletes); unset: api_keys.",
    )
    cors_origins: str | None = Field(
        None, description="Comma-separated allowed origins; unset: CORS off."
    )
    max_request_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    host: str = Field("127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection has to send a complete request head (request line and "
        "headers), counted from when it opens or its previous response ends; then it is closed. "
        "Bounds idle and slowloris connections.",
    )
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds to receive a whole request body (408 and the connection closed "
        "after), plus one second per body_min_rate bytes received.",
    )
    body_min_rate: int = Field(
        64 * 1024,
        ge=1,
        description="Bytes per second an upload is allowed on top of body_timeout, so that a "
        "large body over a slow link still arrives while a trickling one does not.",
    )
    keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        256,
        ge=1,
        description="Open connections served at once; a request on a connection beyond them "
        "gets 503 and the connection is closed.",
    )
    rate_limit: float = Field(
        0.0,
        ge=0,
        description="Requests per second allowed per API key (per client IP when no keys are "
        "configured), with bursts of rate_burst; over it: 429 with Retry-After. 0: off. "
        "Health checks and /metrics are exempt.",
    )
    rate_burst: int = Field(
        20, ge=1, description="Requests a client may send at once before rate_limit applies."
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Server processes `rag serve` runs on one listening socket (use the cores: "
        "the interpreter lock keeps one process on about one). They share the index's segment "
        "files through memory mapping; one of them merges segments and the others adopt its "
        "merges. A write through one is searchable through the others within about a second. "
        "Each loads its own embedder, and rate limits count per process.",
    )

    @property
    def db_path(self) -> Path:
        """The SQLite file inside the index directory."""
        return self.index_dir / "rag.sqlite3"

    @property
    def parse_limits(self) -> ParseLimits:
        """The expansion limits every format loader enforces."""
        return ParseLimits(
            max_expanded_bytes=self.max_expanded_bytes,
            max_document_chars=self.max_document_chars,
            max_pdf_pages=self.max_pdf_pages,
            max_chunks_per_document=self.max_chunks_per_document,
        )
