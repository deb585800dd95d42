"""One consistent read of the whole store, for building a snapshot of the derived indexes.

A `StoreView` is its own read-only SQLite connection inside one read transaction (WAL gives it a
fixed picture of the database), so the generation, the chunk rows, the vectors and the documents'
metadata it returns all belong together even while another thread or process writes — and the
store's own connection (and its lock) stays free for the requests served meanwhile.

Vectors are never all held twice: `vector_batches` streams them from the database a few thousand
rows at a time (the caller adds each batch to a FAISS index and lets it go), and only when a
derived index has to be rebuilt at all.

A view never writes. On a store that could not be opened for writing (see `Store`), it reads
the database file `immutable`, as the store does. SQLite's errors come out as the library's
(`rag.store.faults`): a damaged database is an `IndexError_` saying so.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from rag.store import faults

BATCH_ROWS = 2048  # chunks read per batch when streaming vectors
WAL_HEADER_BYTES = 32  # a -wal file no longer than its header holds no write

_F = TypeVar("_F", bound=Callable[..., Any])


def sqlite_uri(path: Path, *, immutable: bool = False) -> str:
    """The URI that opens `path` read-only; `immutable`: straight from the file, with no -wal,
    -shm or locks (right only when no writes are pending in a -wal and none can come)."""
    return f"file:{urllib.parse.quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")


def has_wal_frames(path: Path) -> bool:
    """Whether the -wal file beside the database at `path` may hold writes not yet copied into
    the database file (it exists and is longer than its header)."""
    try:
        return path.with_name(path.name + "-wal").stat().st_size > WAL_HEADER_BYTES
    except FileNotFoundError:
        return False


def _translated(method: _F) -> _F:
    """SQLite's storage errors as the library's (`faults.translate`)."""

    @functools.wraps(method)
    def wrapper(self: StoreView, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            mapped = faults.translate(exc, self.path)
            if mapped is None:
                raise
            raise mapped from exc

    return wrapper  # type: ignore[return-value]


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

    @_translated
    def __init__(self, path: Path, *, immutable: bool = False) -> None:
        """Open a read-only connection and start the transaction every read below shares."""
        self.path = path
        self._db = sqlite3.connect(
            sqlite_uri(path, immutable=immutable), uri=True, isolation_level=None
        )
        try:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        except BaseException:
            self._db.close()
            raise
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

    @_translated
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
        try:
            cursor = self._db.execute(f"SELECT {column} FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(BATCH_ROWS):
                # one copy, out of the blobs: the batch's blobs are freed once it is consumed
                batch = b"".join(r[0] for r in rows)
                yield np.frombuffer(batch, dtype=np.float32).reshape(-1, dim)
        except sqlite3.Error as exc:
            mapped = faults.translate(exc, self.path)
            if mapped is None:
                raise
            raise mapped from exc

    @_translated
    def counts(self) -> tuple[int, int]:
        """`(chunks, sentences)` stored, without reading the chunks (what `rag info` needs to
        tell whether the derived files are current)."""
        chunks, sentences = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(json_array_length(sent_spans)), 0) FROM chunks"
        ).fetchone()
        return int(chunks), int(sentences)

    @_translated
    def doc_sources(self) -> dict[str, tuple[str, str]]:
        """`doc_id → (source, title)` for every document."""
        return {
            r[0]: (r[1], r[2])
            for r in self._db.execute("SELECT doc_id, source, title FROM documents")
        }

    @_translated
    def doc_metadata(self) -> dict[str, dict[str, Any]]:
        """`doc_id → metadata` for every document."""
        return {
            r[0]: json.loads(r[1])
            for r in self._db.execute("SELECT doc_id, metadata FROM documents")
        }
