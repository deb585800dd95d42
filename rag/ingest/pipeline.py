"""Prepare a file for storage: size check → load/decode/normalise → metadata → chunk →
near-duplicate signature. No I/O on the index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, DocumentTooLarge, NotFound
from rag.ingest.chunk import make_chunks
from rag.ingest.dedup import signature, to_bytes
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.loaders import load_document
from rag.ingest.metadata import check_user_metadata, with_metadata
from rag.store.sqlite import doc_id_for
from rag.types import Chunk, Document


@dataclass(frozen=True)
class Prepared:
    """A document ready to embed and store."""

    document: Document
    chunks: list[Chunk]
    content_hash: str
    encoding: str
    fingerprint: bytes  # MinHash signature of the text (rag.ingest.dedup)


def content_hash(data: bytes, metadata: dict[str, object] | None = None) -> str:
    """Hash of the raw bytes (and user metadata): unchanged files are skipped by it."""
    h = hashlib.sha256(data)
    if metadata:
        h.update(repr(sorted(metadata.items())).encode())
    return h.hexdigest()


def read_file(path: Path, max_bytes: int) -> bytes:
    """Read a file, refusing missing paths, non-files and files over `max_bytes`."""
    if not path.exists():
        raise NotFound(f"{path}: no such file")
    if not path.is_file():
        raise DocumentError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentTooLarge(
            f"{path}: {size} bytes is over the limit of {max_bytes} bytes (RAG_MAX_FILE_BYTES)"
        )
    return path.read_bytes()


def prepare(
    source: str,
    data: bytes,
    *,
    chunk_size: int,
    chunk_overlap: int,
    max_bytes: int,
    metadata: dict[str, object] | None = None,
    as_type: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> Prepared:
    """Validate, parse and chunk one document; raises `DocumentError` subclasses on bad input
    (`InputError` for unusable user metadata; `DocumentTooLarge` for a file over `max_bytes` or
    one that expands past `limits`). Metadata found in the text is added under the user's own
    (`rag.ingest.metadata`)."""
    check_user_metadata(metadata)
    if len(data) > max_bytes:
        raise DocumentTooLarge(
            f"{source}: {len(data)} bytes is over the limit of {max_bytes} bytes (RAG_MAX_FILE_BYTES)"
        )
    document, encoding = load_document(source, data, metadata, as_type=as_type, limits=limits)
    document = with_metadata(document)
    chunks = make_chunks(doc_id_for(source), document.text, chunk_size, chunk_overlap)
    if not chunks:
        raise DocumentError(f"{source}: no text to index")
    if len(chunks) > limits.max_chunks_per_document:
        raise DocumentTooLarge(
            f"{source}: {len(chunks)} chunks, over the limit of {limits.max_chunks_per_document} "
            "chunks per document (RAG_MAX_CHUNKS_PER_DOCUMENT)"
        )
    return Prepared(
        document, chunks, content_hash(data, metadata), encoding, to_bytes(signature(document.text))
    )
