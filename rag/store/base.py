"""The storage contract the engine and the indexer use: what a backend must provide.

`rag.store.sqlite.Store` (with `rag.store.view.StoreView`) is the embedded implementation; a
PostgreSQL backend implements the same two protocols. The contract is small on purpose:
documents and chunks are written one transaction per write, each write is one generation with its
changes logged (`ReadView.changes_since`), and derived indexes are built from consistent reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rag.store.sqlite import ChunkVectors, FileState, Manifest, Stored
    from rag.store.view import Changes, DocRow, StoredRows
    from rag.types import Chunk, ChunkSpan, DocumentInfo


class ReadView(Protocol):
    """One consistent read of the store (a read transaction), closed on exit."""

    generation: int

    def __enter__(self) -> ReadView:
        """Enter the context (the read is already open)."""
        ...

    def __exit__(self, *exc: object) -> None:
        """End the read."""
        ...

    def meta(self, key: str) -> str | None:
        """A value of the store's metadata (None when absent)."""
        ...

    def changes_since(self, generation: int) -> Changes | None:
        """Net changes after `generation` up to this view's; None when not logged any more."""
        ...

    def row_batches(
        self, dim: int, chunk_ids: Sequence[int] | None = None, batch: int = ...
    ) -> Iterator[StoredRows]:
        """Chunks with tokens and vectors, by id, in batches: all, or those of `chunk_ids`."""
        ...

    def doc_rows(self, doc_ids: Iterable[str] | None = None) -> dict[str, DocRow]:
        """Source, title and metadata of all documents, or of `doc_ids`."""
        ...

    def counts(self) -> tuple[int, int]:
        """`(chunks, sentences)` stored."""
        ...


class StoreLike(Protocol):
    """The durable truth: documents, chunks with vectors and tokens, and the change log."""

    @property
    def writable(self) -> bool:
        """False while writes are refused (read-only or full disk)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

    def manifest(self) -> Manifest:
        """Embedder, dimension, schema version and generation on record."""
        ...

    def generation(self) -> int:
        """The write counter (one per committed write)."""
        ...

    def check_embedder(self, name: str, dim: int | None = None) -> None:
        """Refuse another embedder than the recorded one."""
        ...

    def bind_embedder(self, name: str, dim: int | None = None) -> None:
        """Record the embedder (once)."""
        ...

    def count_documents(self) -> int:
        """Number of documents."""
        ...

    def count_chunks(self) -> int:
        """Number of chunks."""
        ...

    def content_hash(self, source: str) -> str | None:
        """The content hash stored for `source`."""
        ...

    def file_states(self) -> dict[str, FileState]:
        """What is stored about every source's file."""
        ...

    def set_file_stat(self, source: str, stat: tuple[int, int] | None) -> None:
        """Record a file's size and mtime."""
        ...

    def fingerprints(self) -> list[tuple[str, str, bytes | None, bool]]:
        """Near-duplicate signatures of every document."""
        ...

    def set_fingerprints(self, signatures: Sequence[tuple[str, bytes]]) -> None:
        """Back-fill signatures."""
        ...

    def cached_vectors(self, hashes: Sequence[str], dim: int) -> dict[str, ChunkVectors]:
        """Vectors already stored for chunk hashes."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every document's summary."""
        ...

    def document(self, doc_id: str) -> DocumentInfo:
        """One document's summary."""
        ...

    def document_text(self, doc_id: str) -> str:
        """A document's stored text."""
        ...

    def chunk_at(self, doc_id: str, offset: int) -> ChunkSpan | None:
        """The first chunk of `doc_id` holding document offset `offset`; None if none does."""
        ...

    def read_view(self) -> ReadView:
        """A consistent read on a connection of its own."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """One transaction around several writes."""
        ...

    def put_document(
        self,
        *,
        source: str,
        title: str,
        text: str,
        content_hash: str,
        encoding: str,
        metadata: dict[str, Any],
        chunks: Sequence[Chunk],
        vectors: Sequence[ChunkVectors],
        fingerprint: bytes | None = None,
        file_stat: tuple[int, int] | None = None,
        tokens: Sequence[Sequence[str]] | None = None,
        tokenizer_version: int | None = None,
    ) -> Stored:
        """Insert or replace a document with its chunks (one generation)."""
        ...

    def delete_document(self, doc_id: str) -> None:
        """Remove a document (one generation)."""
        ...

    def set_tokens(self, tokens: Sequence[tuple[int, Sequence[str]]], version: int) -> None:
        """Store tokens made for chunks stored without them."""
        ...
