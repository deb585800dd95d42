"""The library's exception tree. `api/errors.py` maps each class to one HTTP status."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the library raises on purpose; `code` is a stable machine name."""

    code = "rag_error"


class InputError(RagError):
    """The caller's input is unusable (bad query, bad parameter)."""

    code = "bad_input"


class DocumentError(InputError):
    """A document cannot be ingested: empty, binary, undecodable, malformed."""

    code = "bad_document"


class UnsupportedFormat(DocumentError):
    """The file type is not one the loaders read."""

    code = "unsupported_format"


class DocumentTooLarge(DocumentError):
    """The file exceeds a configured size limit: its bytes, or what it expands to when parsed
    (uncompressed bytes, characters, PDF pages, chunks)."""

    code = "document_too_large"


class DocumentTooComplex(DocumentError):
    """Parsing the file needed more than the parse process may use (time, memory), or crashed the
    parser: the file is refused, the service is unharmed."""

    code = "document_too_complex"


class EncryptedDocument(DocumentError):
    """The file is password-protected (a PDF or Office file that needs a password to open)."""

    code = "encrypted_document"


class CorruptDocument(DocumentError):
    """The file is damaged or truncated, or is not the format its name says."""

    code = "corrupt_document"


class NoTextLayer(DocumentError):
    """A PDF whose pages are images only (a scan): there is no text to extract without OCR."""

    code = "no_text_layer"


class Cancelled(RagError):
    """The caller gave up (an HTTP client disconnected) before anything was stored; the work
    stopped and nothing was written."""

    code = "cancelled"


class NotFound(RagError):
    """A named document or path does not exist."""

    code = "not_found"


class IndexError_(RagError):
    """The index on disk cannot be used (corrupt database, schema from the future)."""

    code = "index_error"


class EmbedderMismatch(IndexError_):
    """The index was built with another embedder than the one configured."""

    code = "embedder_mismatch"


class StorageFull(RagError):
    """The disk (or quota) holding the index has no room for a write: the write was refused and
    rolled back, nothing of it is stored; reads go on from the last committed state."""

    code = "insufficient_storage"


class ReadOnlyIndex(RagError):
    """The index cannot be written (read-only disk or directory, or opened read-only): writes are
    refused, reads are served."""

    code = "read_only_index"


class DatabaseUnavailable(RagError):
    """The PostgreSQL database (`RAG_STORE_URL`) cannot be reached or used: down, refusing
    connections, or failing the statement. Nothing half-done is stored: every write is one
    transaction."""

    code = "database_unavailable"


class ConfigError(RagError):
    """A setting names something that does not exist (unknown backend, bad path)."""

    code = "config_error"


class LLMError(RagError):
    """The LLM could not give a usable answer. Never reaches a client: answers fall back to extractive."""

    code = "llm_error"


class LLMTimeout(LLMError):
    """No (complete) answer within the timeout."""

    code = "llm_timeout"


class LLMRateLimited(LLMError):
    """Still rate-limited (429) after the retries."""

    code = "llm_rate_limited"


class LLMBadResponse(LLMError):
    """The reply was not valid OpenAI-format JSON / SSE, or empty."""

    code = "llm_bad_response"
