"""SQLite store (WAL): documents, chunks with their embeddings, and a manifest.

Every write (`put_document`, `delete_document`) is one transaction and bumps the `generation`
counter, which the derived FAISS/BM25 files are stamped with. Vectors are float32 blobs.

Schema versions: an index written by an older version is migrated on open, in one transaction,
by the steps of `_MIGRATIONS` (each only adds; nothing stored is rewritten or dropped). Version 2
added, per document, the near-duplicate signature and the file's size and mtime (the fast path
that skips unchanged files without reading them); both are NULL for documents stored before, and
are filled in by the next ingest that needs them. Version 3 made derived indexes incremental:
each chunk's BM25 tokens (`chunks.tokens`, NULL for chunks stored before: tokenised, and written
back, by the next rebuild), chunk ids that are never reused (`meta.next_chunk_id`: SQLite would
hand a deleted row's id to the next insert), and a change log (`changes`, one row per generation,
written in the write's own transaction) that tells a reader which chunks and documents a
generation added, deleted or changed (`StoreView.changes_since`).

A brand-new index is one whose file does not exist: it is created complete (schema and all) under
a temporary name and linked into place, so an existing file is always a whole database, and one
that is not (empty, another kind of file, truncated) is refused, never taken for a new index.

Storage trouble is reported, not suffered: a write that finds the disk full or read-only rolls
back and raises `StorageFull` or `ReadOnlyIndex` (`rag.store.faults`). A database that cannot be
opened for writing (a read-only disk; a disk too full for SQLite's shared-memory file) is opened
read-only: reads are served, writes are refused until one finds the disk writable again. Opening
an index that needs no change writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from rag.errors import EmbedderMismatch, IndexError_, NotFound, RagError, ReadOnlyIndex, StorageFull
from rag.store import faults
from rag.store.view import TOKEN_SEPARATOR, StoreView, has_wal_frames, sqlite_uri
from rag.types import Chunk, ChunkSpan, DocumentInfo

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
CHANGE_LOG_KEEP = 10_000  # generations the change log covers; older rows are pruned
SQLITE_MAGIC = b"SQLite format 3\x00"

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
    tokens TEXT,
    UNIQUE (doc_id, ord)
);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
CREATE TABLE IF NOT EXISTS changes (
    generation INTEGER PRIMARY KEY,
    added TEXT NOT NULL,
    deleted TEXT NOT NULL,
    docs TEXT NOT NULL
);
"""

# version → the statements that bring an index of version - 1 to it
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE documents ADD COLUMN fingerprint BLOB",
        "ALTER TABLE documents ADD COLUMN file_size INTEGER",
        "ALTER TABLE documents ADD COLUMN file_mtime_ns INTEGER",
    ),
    3: (
        "ALTER TABLE chunks ADD COLUMN tokens TEXT",
        "CREATE TABLE IF NOT EXISTS changes (generation INTEGER PRIMARY KEY, added TEXT NOT NULL, "
        "deleted TEXT NOT NULL, docs TEXT NOT NULL)",
        "INSERT OR REPLACE INTO meta(key, value) "
        "SELECT 'next_chunk_id', COALESCE(MAX(id), 0) + 1 FROM chunks",
        # the log covers nothing written before it existed
        "INSERT OR REPLACE INTO meta(key, value) "
        "SELECT 'changes_floor', COALESCE((SELECT value FROM meta WHERE key='generation'), '0')",
    ),
}


_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(method: _F) -> _F:
    """Serialise use of the one SQLite connection across threads (the HTTP threadpool), and say
    what a storage failure means (`faults.translate`) instead of SQLite's error."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._lock, faults.translated(self.path):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def doc_id_for(source: str) -> str:
    """The stable id of the document stored under `source`."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


#: The vector recipe of an index that records none: built before recipes were recorded, when
#: every chunk's text and each of its sentences were embedded separately.
LEGACY_RECIPE = "chunk+sentences"


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
class Stored:
    """What `put_document` did, decided inside its transaction from what was stored: `added` (no
    document under the source), `updated` (other content replaced), or `unchanged` (this very
    content was stored already, e.g. by a concurrent upload: nothing written but the file stat)."""

    doc_id: str
    status: Literal["added", "updated", "unchanged"]
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

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open the database at `path`, creating it when no file is there (unless `readonly`).

        An existing file that is no whole SQLite database is refused (`IndexError_`). When the
        disk does not let the database be opened for writing, it is opened read-only and writes
        raise `ReadOnlyIndex` or `StorageFull` until one finds the disk writable again.
        `readonly=True` (`rag info`) never writes, nor creates SQLite's -wal/-shm files when no
        other process has them open; a missing index is then `NotFound`.
        """
        self.path = path
        self._lock = threading.RLock()
        self._readonly = readonly
        self._refusal: RagError | None = None  # why writes are refused, while they are
        self._immutable = False  # read straight from the file (see `_connect_read_only`)
        self._depth = 0  # > 0 inside a transaction (`batch` holds one around several writes)
        self._pending_bind: tuple[str, int | None, str | None] | None = None
        try:
            if not path.exists():
                if readonly:
                    raise NotFound(f"no index at {path.parent} (nothing was ingested there)")
                _create(path)
            check_database_file(path)
            if readonly:
                self._refusal = faults.read_only(path, "opened read-only")
                self._db = self._connect_read_only(self._refusal)
            else:
                self._db = self._connect()
            try:
                version = self._open_schema()
                if version > SCHEMA_VERSION:
                    raise IndexError_(
                        f"{path}: schema version {version} is newer than this program "
                        f"({SCHEMA_VERSION})"
                    )
            except BaseException:
                self._db.close()
                raise
        except sqlite3.Error as exc:
            mapped = faults.translate(exc, path)
            raise mapped or IndexError_(f"{path}: not a usable index database ({exc})") from exc

    def _connect(self) -> sqlite3.Connection:
        """A connection for reading and writing; read-only (`_refusal` set) when the disk does
        not allow writing now."""
        try:
            return self._connect_writable()
        except sqlite3.OperationalError as exc:
            refusal = faults.open_refusal(exc, self.path)
            if refusal is None:
                raise
            log.warning(
                "the index at %s is served read-only, writes are refused until it can be "
                "written (%s: %s)",
                self.path.parent,
                faults.error_name(exc),
                exc,
            )
        db = self._connect_read_only(refusal)
        self._refusal = refusal
        return db

    def _connect_writable(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            # A first read maps SQLite's shared memory (the -shm file) now: a disk with no room
            # for it fails here, at open, not at the first request.
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _connect_read_only(self, refusal: RagError) -> sqlite3.Connection:
        """A connection that never writes a byte. With no writes pending in a -wal file, the
        database file alone is the whole index: it is read `immutable` (no -wal/-shm files, no
        locks, no disk space needed). Otherwise SQLite needs its shared memory to read the -wal;
        if even that cannot be had, the index cannot be served and `refusal` says why."""
        self._immutable = not has_wal_frames(self.path)
        uri = sqlite_uri(self.path, immutable=self._immutable)
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            db.close()
            if faults.error_name(exc).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                raise
            why = (
                f"({exc})"
                if self._immutable
                else f"writes not yet checkpointed into the database file are in "
                f"{self.path.name}-wal, which SQLite reads through a shared-memory file it "
                f"cannot create ({exc})"
            )
            raise type(refusal)(f"{refusal}; nor can it be read: {why}") from exc
        return db

    def _writable(self) -> bool:
        """Whether the database may be written now. A store that was opened read-only because of
        the disk tries again to open it for writing (space may have been freed, the disk
        remounted), and keeps the new connection when that works."""
        if self._refusal is None:
            return True
        if self._readonly:
            return False
        try:
            db = self._connect_writable()
        except sqlite3.Error:
            return False
        self._db.close()
        self._db, self._refusal, self._immutable = db, None, False
        log.info("the index at %s can be written again", self.path.parent)
        return True

    def _open_schema(self) -> int:
        """Create the tables of a new index, or migrate an older one; returns the version found.

        The check is a read (an up-to-date index is never written to on open); a creation or
        migration is one IMMEDIATE transaction, so two processes opening one old index migrate
        it once.
        """
        version = self._stored_version()
        if version is not None and version >= SCHEMA_VERSION:
            return version
        if not self._writable():
            refusal = self._refusal
            assert refusal is not None
            what = "initialised" if version is None else f"migrated from schema version {version}"
            raise type(refusal)(f"{self.path} must be {what}, which writes: {refusal}")
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
        """The schema version recorded in the database; None for a database with no tables yet
        (created, but not initialised: a creation interrupted by an older version of this
        program). Tables that are not an index's are refused."""
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "documents" not in tables:
            if tables - {"meta"}:
                raise IndexError_(
                    f"{self.path} is an SQLite database but no index (it holds the tables "
                    f"{', '.join(sorted(tables))}); point RAG_INDEX_DIR at another directory"
                )
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

    @property
    def writable(self) -> bool:
        """False while writes are refused (read-only disk, no room to open it for writing, or
        opened read-only on purpose)."""
        return self._refusal is None

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
        """The write counter; bumped by every committed ingest or delete.

        A store serving read-only because of the disk tries to become writable first: once it
        is, it reads what other processes wrote (an `immutable` read would not see it).
        """
        if self._refusal is not None:
            self._writable()
        return int(self._meta("generation") or 0)

    @_locked
    def check_embedder(self, name: str, dim: int | None = None, recipe: str | None = None) -> None:
        """Refuse an embedder other than the one this index was built with (`EmbedderMismatch`,
        naming both), or (given `recipe`) vectors made another way than its vectors were
        (`rag/embed/passages.py`): a chunk vector of one recipe is not comparable to another's.
        An index that holds no chunks accepts any. Cheap: callers check before loading a model."""
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
        stored_recipe = self._meta("vectors") or LEGACY_RECIPE
        if recipe is not None and stored_recipe != recipe and self.count_chunks() > 0:
            raise EmbedderMismatch(
                f"the index at {self.path.parent} holds vectors made as '{stored_recipe}', but this "
                f"version makes them as '{recipe}' (same embedder, other chunk vectors), and "
                "does not mix the two: re-ingest the documents into a new RAG_INDEX_DIR"
            )

    @_locked
    def vector_recipe(self) -> str | None:
        """How this index's chunk vectors were made (`rag/embed/passages.py`): the recorded
        recipe, the legacy one for an index that holds chunks and records none, None for an
        index without chunks (any recipe may start it)."""
        if self.count_chunks() == 0:
            return None
        return self._meta("vectors") or LEGACY_RECIPE

    @_locked
    def bind_embedder(self, name: str, dim: int | None = None, recipe: str | None = None) -> None:
        """Record `name` (and `dim`, `recipe`) as this index's embedder, after `check_embedder`.

        Nothing is written when both are recorded already, so an index on a full or read-only
        disk still opens. When they must be recorded but the index cannot be written now, the
        next write that can records them first, in its own transaction: no chunk is ever stored
        without its embedder on record.
        """
        self.check_embedder(name, dim, recipe)
        if (
            self._meta("embedder") == name
            and (dim is None or self._meta("dim") == str(dim))
            and (recipe is None or self._meta("vectors") == recipe)
        ):
            return
        try:
            with self._tx():
                self._record_embedder(name, dim, recipe)
        except (StorageFull, ReadOnlyIndex) as exc:
            log.warning("the embedder is recorded with the next write: %s", exc)
            self._pending_bind = (name, dim, recipe)

    def _record_embedder(self, name: str, dim: int | None, recipe: str | None) -> None:
        self._set_meta("embedder", name)
        if dim is not None:
            self._set_meta("dim", str(dim))
        if recipe is not None:
            self._set_meta("vectors", recipe)

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

    def chunk_at(self, doc_id: str, offset: int) -> ChunkSpan | None:
        """The first chunk of `doc_id` holding document offset `offset`; None if none does."""
        row = self._db.execute(
            "SELECT ord, start, end, text FROM chunks WHERE doc_id=? AND start<=? AND end>?"
            " ORDER BY ord LIMIT 1",
            (doc_id, offset, offset),
        ).fetchone()
        return None if row is None else ChunkSpan(doc_id, int(row[0]), row[1], row[2], row[3])

    def read_view(self) -> StoreView:
        """A consistent read of the whole store on a connection of its own (see `StoreView`)."""
        return StoreView(self.path, immutable=self._immutable)

    # --- writes ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One IMMEDIATE transaction: all of it commits, or none of it. Inside `batch`, part of
        the batch's transaction.

        Refused at once (`ReadOnlyIndex`, `StorageFull`) while the index cannot be written. A
        failure anywhere, the COMMIT included (a full disk shows there), rolls back: the
        connection is never left inside a failed transaction, and nothing of it is stored.
        """
        if self._depth:
            yield
            return
        if not self._writable():
            refusal = self._refusal
            assert refusal is not None
            raise type(refusal)(str(refusal))
        self._depth += 1
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if self._pending_bind is not None:
                self._record_embedder(*self._pending_bind)
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:  # SQLite rolls some failures back itself (SQLITE_FULL)
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            mapped = faults.translate(exc, self.path) if isinstance(exc, sqlite3.Error) else None
            if mapped is not None:
                raise mapped from exc
            raise
        finally:
            self._depth -= 1
        self._pending_bind = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around several writes (`put_document`, …): all of them commit, or
        none does. A multi-document upload is one write: a disk that fills up half-way through
        it leaves nothing of it behind."""
        with self._lock, self._tx():
            yield

    def _bump(self, added: Sequence[int], deleted: Sequence[int], docs: Sequence[str]) -> None:
        """Start the next generation, logging what it changed (in the caller's transaction):
        the chunk ids it added and deleted, and the documents whose rows changed. Log rows
        older than `CHANGE_LOG_KEEP` generations are pruned, the floor recorded."""
        generation = int(self._meta("generation") or 0) + 1
        self._set_meta("generation", str(generation))
        self._db.execute(
            "INSERT OR REPLACE INTO changes(generation, added, deleted, docs) VALUES (?, ?, ?, ?)",
            (
                generation,
                json.dumps(id_runs(added)),
                json.dumps(id_runs(deleted)),
                json.dumps(list(docs)),
            ),
        )
        floor = generation - CHANGE_LOG_KEEP
        if floor > 0 and floor > int(self._meta("changes_floor") or 0):
            self._db.execute("DELETE FROM changes WHERE generation <= ?", (floor,))
            self._set_meta("changes_floor", str(floor))

    def _new_chunk_ids(self, n: int) -> list[int]:
        """`n` chunk ids never used before (the counter in `meta` only grows)."""
        (top,) = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()
        first = max(int(self._meta("next_chunk_id") or 1), int(top))
        self._set_meta("next_chunk_id", str(first + n))
        return list(range(first, first + n))

    def _chunk_ids_of(self, doc_id: str) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]

    @_locked
    def set_tokens(self, tokens: Sequence[tuple[int, Sequence[str]]], version: int) -> None:
        """Store the BM25 tokens of chunks that had none (`(chunk id, tokens)` pairs, made by
        tokenizer `version`, recorded too). No new generation: the chunks are unchanged."""
        with self._tx():
            self._db.executemany(
                "UPDATE chunks SET tokens=? WHERE id=?",
                [(join_tokens(t), cid) for cid, t in tokens],
            )
            self._set_meta("tokenizer_version", str(version))

    @_locked
    def clear_tokens(self) -> None:
        """Forget every stored token list (the tokenizer changed: they are made again)."""
        with self._tx():
            self._db.execute("UPDATE chunks SET tokens=NULL")

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
        tokens: Sequence[Sequence[str]] | None = None,
        tokenizer_version: int | None = None,
    ) -> Stored:
        """Insert or replace the document stored under `source` with its chunks, atomically.

        `fingerprint` is its near-duplicate signature; `file_stat` the `(size, mtime_ns)` of the
        file it was read from, when that may be trusted to tell a later change. Whether this adds,
        updates or changes nothing is decided here, under the write lock, from what is stored at
        commit time (concurrent uploads of one source: one adds, the others update). `tokens`
        are the chunks' BM25 tokens, made before the write by tokenizer `tokenizer_version`
        (None: made by the next rebuild).
        """
        if len(chunks) != len(vectors):
            raise ValueError("one set of vectors per chunk")
        if tokens is not None and len(tokens) != len(chunks):
            raise ValueError("one token list per chunk")
        doc_id = doc_id_for(source)
        with self._tx():
            row = self._db.execute(
                "SELECT content_hash FROM documents WHERE doc_id=?", (doc_id,)
            ).fetchone()
            if row is not None and row[0] == content_hash:
                if file_stat is not None:
                    self._db.execute(
                        "UPDATE documents SET file_size=?, file_mtime_ns=? WHERE doc_id=?",
                        (*file_stat, doc_id),
                    )
                (stored,) = self._db.execute(
                    "SELECT COUNT(*) FROM chunks WHERE doc_id=?", (doc_id,)
                ).fetchone()
                return Stored(doc_id, "unchanged", int(stored))
            old_ids = self._chunk_ids_of(doc_id)
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
            new_ids = self._new_chunk_ids(len(chunks))
            token_text = (
                [join_tokens(t) for t in tokens] if tokens is not None else [None] * len(chunks)
            )
            self._db.executemany(
                "INSERT INTO chunks(id, doc_id, ord, start, end, text, hash, vector, sent_spans, "
                "sent_vectors, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        cid,
                        doc_id,
                        c.ord,
                        c.start,
                        c.end,
                        c.text,
                        chunk_hash(c.text),
                        np.ascontiguousarray(v.vector, dtype=np.float32).tobytes(),
                        json.dumps([list(x) for x in v.sent_spans]),
                        np.ascontiguousarray(v.sent_vectors, dtype=np.float32).tobytes(),
                        tok,
                    )
                    for cid, c, v, tok in zip(new_ids, chunks, vectors, token_text, strict=True)
                ],
            )
            if tokens is not None and tokenizer_version is not None:
                self._set_meta("tokenizer_version", str(tokenizer_version))
            self._bump(new_ids, old_ids, [doc_id])
        return Stored(doc_id, "added" if row is None else "updated", len(chunks))

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
            old_ids = self._chunk_ids_of(doc_id)
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
            self._bump((), old_ids, [doc_id, *(c for c, _ in copies)])


def join_tokens(tokens: Sequence[str]) -> str:
    """A token list as stored in `chunks.tokens`."""
    return TOKEN_SEPARATOR.join(tokens)


def id_runs(ids: Sequence[int]) -> list[list[int]]:
    """Chunk ids as `[first, last + 1)` runs (a document's ids are consecutive: one run)."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


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


def check_database_file(path: Path) -> None:
    """Refuse (`IndexError_`) a file at `path` that is not a whole SQLite database: empty, of
    another kind, or shorter than its header says (truncated). Reads 100 bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise IndexError_(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise IndexError_(
            f"{path} is empty (0 bytes), so it holds no index: it was truncated or never "
            "written. Restore it from a backup, or remove it (with its -wal and -shm files) to "
            "start a new, empty index"
        )
    page_size = int.from_bytes(head[16:18], "big") if len(head) == 100 else 0
    page_size = 65536 if page_size == 1 else page_size
    if not head.startswith(SQLITE_MAGIC) or page_size < 512 or page_size & (page_size - 1):
        raise IndexError_(
            f"{path} is not an SQLite database (its header is damaged, or it is another kind of "
            "file); restore it from a backup, or index the documents again into a new "
            "RAG_INDEX_DIR"
        )
    pages = int.from_bytes(head[28:32], "big")
    # The page count in the header is valid when the change counter equals "version valid for"
    # (SQLite's file format, section 1.3.7). Pages may also be waiting in the -wal: a database
    # with writes pending there can be shorter than its header says until the checkpoint.
    if head[24:28] == head[92:96] and size < pages * page_size and not has_wal_frames(path):
        raise IndexError_(
            f"{path} is truncated: {size} bytes, where its header says {pages * page_size}; "
            "restore it from a backup, or index the documents again into a new RAG_INDEX_DIR"
        )


def _create(path: Path) -> None:
    """Create a new, empty index at `path`: built complete under a temporary name, then linked
    into place, so that `path` never names a half-made database (and an existing empty file
    is a damaged one). Another process creating it at the same time wins or loses the link
    whole; the loser opens the winner's. The temporary file is removed on every path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as claim:
            # Held while the file is made: `rag.index.persist.sweep_temp_files` leaves alone a
            # temporary file that somebody holds locked.
            fcntl.flock(claim.fileno(), fcntl.LOCK_EX)
            db = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                db.execute("COMMIT")
            finally:
                db.close()  # the last connection checkpoints: the file alone is the database
            os.fsync(claim.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError as exc:
                if faults.is_no_room(exc) or exc.errno == errno.EROFS:
                    raise
                os.replace(tmp, path)  # no hard links on this file system (EPERM, ENOTSUP…)
            with contextlib.suppress(OSError):
                fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except OSError as exc:
        if faults.is_no_room(exc):
            raise faults.no_room(path, f"cannot create the index: {exc.strerror}") from exc
        if faults.is_read_only(exc):
            raise faults.read_only(path, f"cannot create the index: {exc.strerror}") from exc
        raise
    except sqlite3.Error as exc:
        mapped = faults.translate(exc, path)
        raise mapped or IndexError_(f"{path}: cannot create the index ({exc})") from exc
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            with contextlib.suppress(OSError):
                leftover.unlink()
