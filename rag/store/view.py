"""One consistent read of the whole store, for building a snapshot of the derived indexes.

A `StoreView` is its own read-only SQLite connection inside one read transaction (WAL gives it a
fixed picture of the database), so the generation, the chunk rows, the vectors and the documents'
metadata it returns all belong together even while another thread or process writes — and the
store's own connection (and its lock) stays free for the requests served meanwhile.

Vectors are never all held twice: `vector_batches` streams them from the database a few thousand
rows at a time (the caller adds each batch to a FAISS index and lets it go), and only when a
derived index has to be rebuilt at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

BATCH_ROWS = 2048  # chunks read per batch when streaming vectors


@dataclass(frozen=True)
class ChunkRows:
    """All chunks in store order, column-wise, as the derived indexes and searches need them."""

    doc_ids: list[str]
    ords: list[int]
    starts: list[int]
    ends: list[int]
    texts: list[str]
    sent_owner: np.ndarray  # int64 row of each sentence
    sent_starts: np.ndarray  # int64 document offsets
    sent_ends: np.ndarray


class StoreView:
    """A read transaction on the store at `path`; use as a context manager (closes on exit)."""

    def __init__(self, path: Path) -> None:
        """Open a read-only connection and start the transaction every read below shares."""
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self._db.execute("BEGIN")
        row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        self.generation = int(row[0]) if row else 0

    def __enter__(self) -> StoreView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the transaction and close the connection."""
        try:
            self._db.execute("COMMIT")
        finally:
            self._db.close()

    def chunk_rows(self) -> ChunkRows:
        """Every chunk's place and text (no vectors), in row-id order (the derived indexes')."""
        doc_ids: list[str] = []
        ords: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        texts: list[str] = []
        owner: list[int] = []
        s_starts: list[int] = []
        s_ends: list[int] = []
        cursor = self._db.execute(
            "SELECT doc_id, ord, start, end, text, sent_spans FROM chunks ORDER BY id"
        )
        for i, (doc_id, ord_, start, end, text, spans) in enumerate(cursor):
            doc_ids.append(doc_id)
            ords.append(ord_)
            starts.append(start)
            ends.append(end)
            texts.append(text)
            for a, b in json.loads(spans):
                owner.append(i)
                s_starts.append(start + a)
                s_ends.append(start + b)
        return ChunkRows(
            doc_ids=doc_ids,
            ords=ords,
            starts=starts,
            ends=ends,
            texts=texts,
            sent_owner=np.array(owner, dtype=np.int64),
            sent_starts=np.array(s_starts, dtype=np.int64),
            sent_ends=np.array(s_ends, dtype=np.int64),
        )

    def vector_batches(
        self, column: Literal["vector", "sent_vectors"], dim: int
    ) -> Iterator[np.ndarray]:
        """The chunks' (`vector`) or their sentences' (`sent_vectors`) embeddings in row order,
        as float32 `(rows, dim)` arrays of at most `BATCH_ROWS` chunks' worth each."""
        cursor = self._db.execute(f"SELECT {column} FROM chunks ORDER BY id")
        while rows := cursor.fetchmany(BATCH_ROWS):
            # one copy, out of the blobs: the batch's blobs are freed once it is consumed
            yield np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(-1, dim)

    def doc_sources(self) -> dict[str, tuple[str, str]]:
        """`doc_id → (source, title)` for every document."""
        return {
            r[0]: (r[1], r[2])
            for r in self._db.execute("SELECT doc_id, source, title FROM documents")
        }

    def doc_metadata(self) -> dict[str, dict[str, Any]]:
        """`doc_id → metadata` for every document."""
        return {
            r[0]: json.loads(r[1])
            for r in self._db.execute("SELECT doc_id, metadata FROM documents")
        }
