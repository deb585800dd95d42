"""SQLite store (WAL): documents, chunks with their embeddings, and a manifest.

Every write (`put_document`, `delete_document`) is one transaction and bumps the `generation`
counter, which the derived FAISS/BM25 files are stamped with. Vectors are float32 blobs.

Schema versions: an index written by an older version is migrated on open, in one transaction,
by the steps of `_MIGRATIONS` (each only adds; nothing stored is rewritten or dropped). Version 2
added, per document, the near-duplicate signature and the file's size and mtime (the fast path
that skips unchanged files without reading them); both are NULL for documents stored before, and
are filled in by the next ingest that needs them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.errors import EmbedderMismatch, IndexError_, NotFound
from rag.store.view import StoreView
from rag.types import Chunk, DocumentInfo

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    encoding TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL,
    fingerprint BLOB,
    file_size INTEGER,
    file_mtime_ns INTEGER
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    sent_spans TEXT NOT NULL DEFAULT '[]',
    sent_vectors BLOB NOT NULL DEFAULT x'',
    UNIQUE (doc_id, ord)
);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
"""

# version → the statements that bring an index of version - 1 to it
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE documents ADD COLUMN fingerprint BLOB",
        "ALTER TABLE documents ADD COLUMN file_size INTEGER",
        "ALTER TABLE documents ADD COLUMN file_mtime_ns INTEGER",
    ),
}


_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(method: _F) -> _F:
    """Serialise use of the one SQLite connection across threads (the HTTP threadpool)."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def doc_id_for(source: str) -> str:
    """The stable id of the document stored under `source`."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


def chunk_hash(text: str) -> str:
    """Content hash of a chunk's text, the key of the embedding cache."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChunkVectors:
    """A chunk's embedding and its sentences' embeddings (spans relative to the chunk text)."""

    vector: np.ndarray  # (dim,)
    sent_spans: list[tuple[int, int]]
    sent_vectors: np.ndarray  # (len(sent_spans), dim)


@dataclass(frozen=True)
class FileState:
    """What is stored about a source's file: its content hash, and the size and mtime it had when
    read (None when unknown or not to be trusted)."""

    content_hash: str
    size: int | None
    mtime_ns: int | None
    chunks: int


@dataclass(frozen=True)
class Manifest:
    """What the index was built with."""

    embedder: str
    dim: int
    schema_version: int
    generation: int


class Store:
    """A SQLite-backed document store. One instance per process; writes are serialised by SQLite."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database at `path`."""
        self.path = path
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._open_schema()
        except sqlite3.DatabaseError as exc:
            raise IndexError_(f"{path}: not a usable index database ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise IndexError_(
                f"{path}: schema version {version} is newer than this program ({SCHEMA_VERSION})"
            )

    def _open_schema(self) -> int:
        """Create the tables of a new index, or migrate an older one; returns the version found.

        The check is a read (an up-to-date index is never written to on open); a creation or
        migration is one IMMEDIATE transaction, so two processes opening one old index migrate
        it once.
        """
        version = self._stored_version()
        if version is not None and version >= SCHEMA_VERSION:
            return version
        with self._tx():
            version = self._stored_version()  # another process may have done it meanwhile
            self._db.execute(_SCHEMA.split(";")[0])  # the meta table
            if version is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                return SCHEMA_VERSION
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    self._db.execute(statement)
                self._set_meta("schema_version", str(target))
            return version

    def _stored_version(self) -> int | None:
        """The schema version recorded in the database; None for a new (empty) database."""
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "documents" not in tables:
            return None
        stored = self._meta("schema_version") if "meta" in tables else None
        return int(stored) if stored is not None else 1  # version 1 wrote it on creation

    @_locked
    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # --- manifest -------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @_locked
    def manifest(self) -> Manifest:
        """The embedder, dimension, schema version and write generation recorded in the store."""
        return Manifest(
            embedder=self._meta("embedder") or "",
            dim=int(self._meta("dim") or 0),
            schema_version=int(self._meta("schema_version") or SCHEMA_VERSION),
            generation=int(self._meta("generation") or 0),
        )

    @_locked
    def generation(self) -> int:
        """The write counter; bumped by every committed ingest or delete."""
        return int(self._meta("generation") or 0)

    @_locked
    def check_embedder(self, name: str, dim: int | None = None) -> None:
        """Refuse an embedder other than the one this index was built with (`EmbedderMismatch`,
        naming both). An index that holds no chunks accepts any embedder. Cheap: callers check
        before loading a model."""
        current = self._meta("embedder")
        if current and current != name and self.count_chunks() > 0:
            raise EmbedderMismatch(
                f"the index at {self.path.parent} was built with embedder '{current}', "
                f"but '{name}' is configured; re-index into a new RAG_INDEX_DIR or set RAG_EMBEDDER={current}"
            )
        stored_dim = int(self._meta("dim") or 0)
        if dim is not None and stored_dim and stored_dim != dim and self.count_chunks() > 0:
            raise EmbedderMismatch(
                f"index vectors have dimension {stored_dim}, embedder '{name}' gives {dim}"
            )

    @_locked
    def bind_embedder(self, name: str, dim: int | None = None) -> None:
        """Record `name` (and `dim`) as this index's embedder, after `check_embedder`."""
        self.check_embedder(name, dim)
        with self._tx():
            self._set_meta("embedder", name)
            if dim is not None:
                self._set_meta("dim", str(dim))

    # --- reads ----------------------------------------------------------------------------
    @_locked
    def count_documents(self) -> int:
        """Number of stored documents."""
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    @_locked
    def count_chunks(self) -> int:
        """Number of stored chunks."""
        return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    @_locked
    def content_hash(self, source: str) -> str | None:
        """The content hash stored for `source`, or None when it is not indexed."""
        row = self._db.execute(
            "SELECT content_hash FROM documents WHERE source=?", (source,)
        ).fetchone()
        return None if row is None else str(row[0])

    @_locked
    def file_states(self) -> dict[str, FileState]:
        """`source → FileState` for every document (what the fast path compares a file with),
        in one query: a folder ingest asks once, not once per file."""
        return {
            r[0]: FileState(r[1], r[2], r[3], r[4])
            for r in self._db.execute(
                "SELECT d.source, d.content_hash, d.file_size, d.file_mtime_ns, "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id) FROM documents d"
            )
        }

    @_locked
    def set_file_stat(self, source: str, stat: tuple[int, int] | None) -> None:
        """Record the `(size, mtime_ns)` a file had when its stored content was read (None: do
        not trust the stat, compare content). Derived indexes do not depend on it: no new
        generation."""
        size, mtime_ns = stat if stat is not None else (None, None)
        with self._tx():
            self._db.execute(
                "UPDATE documents SET file_size=?, file_mtime_ns=? WHERE source=?",
                (size, mtime_ns, source),
            )

    @_locked
    def fingerprints(self) -> list[tuple[str, str, bytes | None, bool]]:
        """`(doc_id, source, signature or None, is_original)` of every document; a document is
        original when its metadata names no `duplicate_of`."""
        return [
            (r[0], r[1], r[2], r[3] is None)
            for r in self._db.execute(
                "SELECT doc_id, source, fingerprint, json_extract(metadata, '$.duplicate_of') "
                "FROM documents"
            )
        ]

    @_locked
    def set_fingerprints(self, signatures: Sequence[tuple[str, bytes]]) -> None:
        """Store `(doc_id, signature)` pairs (back-filling documents stored before version 2).
        No new generation: derived indexes do not depend on them."""
        with self._tx():
            self._db.executemany(
                "UPDATE documents SET fingerprint=? WHERE doc_id=?",
                [(blob, doc_id) for doc_id, blob in signatures],
            )

    @_locked
    def cached_vectors(self, hashes: Sequence[str], dim: int) -> dict[str, ChunkVectors]:
        """Embeddings already stored for any of these chunk hashes (the embedding cache)."""
        out: dict[str, ChunkVectors] = {}
        wanted = list(dict.fromkeys(hashes))
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = (
                f"SELECT hash, vector, sent_spans, sent_vectors FROM chunks WHERE hash IN ({marks})"
            )
            for h, blob, spans, sblob in self._db.execute(sql, part):
                out[h] = ChunkVectors(
                    np.frombuffer(blob, dtype=np.float32),
                    [(int(a), int(b)) for a, b in json.loads(spans)],
                    np.frombuffer(sblob, dtype=np.float32).reshape(-1, dim),
                )
        return out

    @_locked
    def documents(self) -> list[DocumentInfo]:
        """All documents, ordered by source."""
        rows = self._db.execute(
            "SELECT d.doc_id, d.source, d.title, length(d.text), "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id), d.content_hash, d.metadata, d.updated_at "
            "FROM documents d ORDER BY d.source"
        ).fetchall()
        return [_info(r) for r in rows]

    @_locked
    def document(self, doc_id: str) -> DocumentInfo:
        """One document's summary; `NotFound` when absent."""
        row = self._db.execute(
            "SELECT d.doc_id, d.source, d.title, length(d.text), "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id), d.content_hash, d.metadata, d.updated_at "
            "FROM documents d WHERE d.doc_id=?",
            (doc_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return _info(row)

    @_locked
    def document_text(self, doc_id: str) -> str:
        """The stored (normalised) text every chunk offset points into."""
        row = self._db.execute("SELECT text FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return str(row[0])

    def read_view(self) -> StoreView:
        """A consistent read of the whole store on a connection of its own (see `StoreView`)."""
        return StoreView(self.path)

    # --- writes ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One IMMEDIATE transaction: all of it commits, or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _bump(self) -> None:
        self._set_meta("generation", str(self.generation() + 1))

    @_locked
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
    ) -> str:
        """Insert or replace the document stored under `source` with its chunks, atomically.

        `fingerprint` is its near-duplicate signature; `file_stat` the `(size, mtime_ns)` of the
        file it was read from, when that may be trusted to tell a later change.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one set of vectors per chunk")
        doc_id = doc_id_for(source)
        with self._tx():
            self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._db.execute(
                "INSERT INTO documents(doc_id, source, title, text, content_hash, encoding, metadata, "
                "updated_at, fingerprint, file_size, file_mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    source,
                    title,
                    text,
                    content_hash,
                    encoding,
                    json.dumps(metadata, ensure_ascii=False),
                    time.time(),
                    fingerprint,
                    *(file_stat if file_stat is not None else (None, None)),
                ),
            )
            self._db.executemany(
                "INSERT INTO chunks(doc_id, ord, start, end, text, hash, vector, sent_spans, sent_vectors) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        doc_id,
                        c.ord,
                        c.start,
                        c.end,
                        c.text,
                        chunk_hash(c.text),
                        np.ascontiguousarray(v.vector, dtype=np.float32).tobytes(),
                        json.dumps([list(x) for x in v.sent_spans]),
                        np.ascontiguousarray(v.sent_vectors, dtype=np.float32).tobytes(),
                    )
                    for c, v in zip(chunks, vectors, strict=True)
                ],
            )
            self._bump()
        return doc_id

    @_locked
    def delete_document(self, doc_id: str) -> None:
        """Remove a document and its chunks, atomically; `NotFound` when absent.

        Copies that named it as their `duplicate_of` are re-pointed in the same transaction: the
        oldest becomes the original (the key goes), the others name it instead.
        """
        with self._tx():
            row = self._db.execute(
                "SELECT source FROM documents WHERE doc_id=?", (doc_id,)
            ).fetchone()
            cur = self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            if row is None or cur.rowcount == 0:
                raise NotFound(f"no document with id '{doc_id}'")
            copies = self._db.execute(
                "SELECT doc_id, source FROM documents "
                "WHERE json_extract(metadata, '$.duplicate_of') = ? ORDER BY rowid",
                (row[0],),
            ).fetchall()
            for i, (copy_id, _) in enumerate(copies):
                if i == 0:
                    sql = "UPDATE documents SET metadata = json_remove(metadata, '$.duplicate_of')"
                    args: tuple[str, ...] = (copy_id,)
                else:
                    sql = "UPDATE documents SET metadata = json_set(metadata, '$.duplicate_of', ?)"
                    args = (copies[0][1], copy_id)
                self._db.execute(sql + " WHERE doc_id=?", args)
            self._bump()


def _info(r: Sequence[Any]) -> DocumentInfo:
    return DocumentInfo(
        doc_id=r[0],
        source=r[1],
        title=r[2],
        chars=int(r[3]),
        chunks=int(r[4]),
        content_hash=r[5],
        metadata=json.loads(r[6]),
        updated_at=float(r[7]),
    )
