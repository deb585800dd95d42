"""PostgreSQL store (with pgvector): the durable truth of stateless API replicas over one database.

`PgStore` implements the storage contract (`rag.store.base.StoreLike`) as the SQLite store does —
documents, chunks with their spans, tokens and vectors, one generation per write with its change
logged — and adds what a search needs to run *in* the database, with no derived files:

* dense search through pgvector's HNSW index (`vector_cosine_ops`; vectors are L2-normalised, so
  cosine = 1 − cosine distance);
* lexical search with real BM25 over the same jieba tokens the local index uses: each chunk's
  tokens are stored as `text[]` and as a `tsvector` built from them (a literal with positions, so
  nothing is re-parsed by a text-search configuration, and a term's frequency is the number of its
  positions), a GIN index finds the chunks holding any query term, and the per-term document
  frequencies and collection statistics are kept in tables updated in the write's own
  transaction — so IDF is exact (PostgreSQL's `ts_rank_cd` has no IDF and is not used);
* metadata filters and date ranges as SQL over the documents' `jsonb` metadata.

Every write is one transaction that takes a transaction-level advisory lock first: writers are
serialised (as SQLite's `BEGIN IMMEDIATE` serialises them), so the statistics are updated without
lost updates or deadlocks, and a reader — every search reads in one REPEATABLE READ, read-only
transaction (`PgView`) — never sees half a document. A commit bumps the generation row; replicas need
no message: every search reads the database itself, so a write committed through one replica is
found by the next search through any.

The schema is versioned (`rag_meta.schema_version`) and created or upgraded by `upgrade`
(`rag db upgrade`, or the service on open), one transaction under the same lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from rag.errors import DatabaseUnavailable, EmbedderMismatch, IndexError_, NotFound
from rag.store.sqlite import (
    CHANGE_LOG_KEEP,
    LEGACY_RECIPE,
    ChunkVectors,
    FileState,
    Manifest,
    Stored,
    chunk_hash,
    doc_id_for,
    id_runs,
)
from rag.store.view import SEGMENT_BATCH_ROWS, Changes, DocRow, StoredRows
from rag.types import Chunk, ChunkSpan, DocumentInfo

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
WRITE_LOCK = 0x7261_6721  # the advisory lock every write transaction takes first ("rag!")
POOL_SIZE = 8  # connections a process keeps (searches run on the HTTP threadpool)
CONNECT_TIMEOUT = 10
MAX_LEXEME_BYTES = 2046  # PostgreSQL refuses longer tsvector lexemes: such tokens are not indexed
MAX_POSITION = 16383  # tsvector positions stop here (a chunk has far fewer tokens)
_LATIN_WORD = re.compile(r"[a-z]+")  # as `rag.retrieve.lexicon` counts the Latin-script share

_F = TypeVar("_F", bound=Callable[..., Any])

# version → the statements that bring a database of version - 1 to it (1: created from nothing)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE EXTENSION IF NOT EXISTS vector",
        """CREATE TABLE rag_documents (
            doc_id text PRIMARY KEY,
            source text NOT NULL UNIQUE,
            title text NOT NULL DEFAULT '',
            text text NOT NULL,
            content_hash text NOT NULL,
            encoding text NOT NULL DEFAULT '',
            metadata jsonb NOT NULL DEFAULT '{}',
            updated_at double precision NOT NULL,
            fingerprint bytea,
            file_size bigint,
            file_mtime_ns bigint,
            seq bigint GENERATED ALWAYS AS IDENTITY)""",
        "CREATE INDEX rag_documents_metadata ON rag_documents USING gin (metadata jsonb_path_ops)",
        "CREATE SEQUENCE rag_chunk_ids",
        # `embedding` gets its dimension (and the HNSW index) when the embedder is bound
        """CREATE TABLE rag_chunks (
            id bigint PRIMARY KEY,
            doc_id text NOT NULL REFERENCES rag_documents(doc_id) ON DELETE CASCADE,
            ord integer NOT NULL,
            start_off integer NOT NULL,
            end_off integer NOT NULL,
            text text NOT NULL,
            hash text NOT NULL,
            embedding vector NOT NULL,
            sent_spans integer[] NOT NULL,
            sent_vectors bytea NOT NULL,
            tokens text[] NOT NULL,
            tsv tsvector NOT NULL,
            n_tokens integer NOT NULL,
            sample_key double precision NOT NULL DEFAULT random(),
            UNIQUE (doc_id, ord))""",
        "CREATE INDEX rag_chunks_hash ON rag_chunks(hash)",
        "CREATE INDEX rag_chunks_tsv ON rag_chunks USING gin (tsv)",
        "CREATE INDEX rag_chunks_sample ON rag_chunks(sample_key)",
        # live document frequency of every term; `id` orders terms by first appearance (a
        # replica romanises only the terms new since it last looked)
        """CREATE TABLE rag_terms (
            term text PRIMARY KEY,
            df integer NOT NULL,
            id bigint GENERATED ALWAYS AS IDENTITY)""",
        "CREATE INDEX rag_terms_id ON rag_terms(id)",
        """CREATE TABLE rag_stats (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            n_chunks bigint NOT NULL,
            total_len bigint NOT NULL,
            df_mass bigint NOT NULL,
            latin_mass bigint NOT NULL)""",
        "INSERT INTO rag_stats VALUES (true, 0, 0, 0, 0)",
        """CREATE TABLE rag_changes (
            generation bigint PRIMARY KEY,
            added jsonb NOT NULL,
            deleted jsonb NOT NULL,
            docs jsonb NOT NULL)""",
    ),
}


def redacted(url: str) -> str:
    """`url` without its password (for messages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def is_postgres_url(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (`postgresql://` or `postgres://`)."""
    return url.startswith(("postgresql://", "postgres://"))


class _Pool:
    """A few open connections, handed out one per use (thread-safe, no background thread)."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def _connect(self) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        try:
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection for the block; a broken one is dropped, not returned."""
        import psycopg

        self._slots.acquire()
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            if conn.closed:
                conn = self._connect()
            yield conn
        except BaseException:
            if conn is not None and (conn.closed or conn.info.transaction_status != 0):
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                if self._closed or conn.closed:
                    conn.close()
                else:
                    self._idle.put(conn)
            self._slots.release()

    def close(self) -> None:
        """Close every idle connection (those in use close when given back)."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _translated(method: _F) -> _F:
    """psycopg's connection and operational errors as `DatabaseUnavailable` (a 503, with a message)."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with translated(self.url):
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper  # type: ignore[return-value]


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn psycopg's errors about the database being unusable into `DatabaseUnavailable`."""
    import psycopg

    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"the database at {redacted(url)} cannot be used: {exc}") from exc


def upgrade(url: str) -> tuple[int, int]:
    """Create the schema in the database at `url`, or bring it to `SCHEMA_VERSION`; returns
    `(version found, version now)` (0: there was none). One transaction, under the write lock:
    two processes upgrading at once upgrade once. A newer schema than this program's is refused."""
    import psycopg

    with translated(url), psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        found = _schema_version(conn)
        if found > SCHEMA_VERSION:
            raise IndexError_(
                f"the database at {redacted(url)} has schema version {found}, newer than this "
                f"program's ({SCHEMA_VERSION})"
            )
        if found == 0:
            conn.execute("CREATE TABLE rag_meta (key text PRIMARY KEY, value text NOT NULL)")
        for target in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO rag_meta VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(target),),
            )
    return found, SCHEMA_VERSION


def _schema_version(conn: Any) -> int:
    """The recorded schema version (0: no rag tables)."""
    row = conn.execute("SELECT to_regclass('rag_meta')").fetchone()
    if row[0] is None:
        return 0
    row = conn.execute("SELECT value FROM rag_meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def tsvector_literal(tokens: Sequence[str]) -> str:
    """The `tsvector` of a token list, as a literal: every token a lexeme (quoted, nothing
    re-parsed or stemmed), with its positions (1-based), so a lexeme's positions count its
    frequency. PostgreSQL keeps at most 256 positions per lexeme: a chunk repeating a token
    more often (never at ~400 characters) has that token's frequency capped there."""
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        if t and len(t.encode("utf-8")) <= MAX_LEXEME_BYTES:
            positions.setdefault(t, []).append(min(i + 1, MAX_POSITION))
    return " ".join(
        f"{quote_lexeme(t)}:{','.join(map(str, ps[:256]))}" for t, ps in positions.items()
    )


def quote_lexeme(token: str) -> str:
    """A token as a quoted `tsvector`/`tsquery` lexeme (quotes and backslashes escaped)."""
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _term_stats(tokens: Sequence[Sequence[str]]) -> tuple[Counter[str], int, int, int, int]:
    """What a set of chunks adds to the statistics: per-term document frequency, chunks,
    tokens, distinct (chunk, term) pairs, and those pairs whose term is a Latin word."""
    df: Counter[str] = Counter()
    total = 0
    for t in tokens:
        df.update(set(t))
        total += len(t)
    mass = sum(df.values())
    latin = sum(n for term, n in df.items() if _LATIN_WORD.fullmatch(term))
    return df, len(tokens), total, mass, latin


class PgStore:
    """Documents, chunks, vectors, tokens and statistics in PostgreSQL (see the module docstring)."""

    def __init__(self, url: str, *, auto_upgrade: bool = True, pool_size: int = POOL_SIZE) -> None:
        """Connect to `url`; create or upgrade the schema (`auto_upgrade`), else refuse a
        database whose schema is missing or older (`rag db upgrade` first)."""
        self.url = url
        self._pool = _Pool(url, pool_size)
        self._lock = threading.RLock()  # one write transaction of this process at a time
        self._tx_conn: Any = None  # the connection of the open write transaction, if any
        self._tx_thread = 0  # the thread that holds it (its reads go through it too)
        self._pending_bind: tuple[str, int | None, str | None] | None = None
        if auto_upgrade:
            upgrade(url)
        with translated(url), self._pool.connection() as conn:
            found = _schema_version(conn)
        if found != SCHEMA_VERSION:
            self._pool.close()
            raise IndexError_(
                f"the database at {redacted(url)} has schema version {found}; this program "
                f"needs {SCHEMA_VERSION}: run `rag db upgrade`"
            )

    # --- plumbing -------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """Writes are always attempted (a database refusing one raises `DatabaseUnavailable`)."""
        return True

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.close()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A connection for one autocommit read (or the open write transaction's)."""
        if self._tx_conn is not None and self._tx_thread == threading.get_ident():
            yield self._tx_conn
            return
        with translated(self.url), self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction under the advisory write lock (inside `batch`: the batch's)."""
        with self._lock:
            if self._tx_conn is not None:
                yield self._tx_conn
                return
            with (
                translated(self.url),
                self._pool.connection() as conn,
                conn.transaction(),
            ):
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                self._tx_conn, self._tx_thread = conn, threading.get_ident()
                try:
                    if self._pending_bind is not None:
                        self._record_embedder(conn, *self._pending_bind)
                        self._pending_bind = None
                    yield conn
                finally:
                    self._tx_conn, self._tx_thread = None, 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around several writes: all of them commit, or none does."""
        with self._tx():
            yield

    def _meta(self, conn: Any, key: str) -> str | None:
        row = conn.execute("SELECT value FROM rag_meta WHERE key=%s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, conn: Any, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO rag_meta VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    # --- manifest -------------------------------------------------------------------------
    @_translated
    def manifest(self) -> Manifest:
        """Embedder, dimension, schema version and generation on record."""
        with self._read() as conn:
            meta = dict(conn.execute("SELECT key, value FROM rag_meta").fetchall())
        return Manifest(
            embedder=meta.get("embedder", ""),
            dim=int(meta.get("dim", 0)),
            schema_version=int(meta.get("schema_version", SCHEMA_VERSION)),
            generation=int(meta.get("generation", 0)),
        )

    @_translated
    def generation(self) -> int:
        """The write counter (one per committed write)."""
        with self._read() as conn:
            return int(self._meta(conn, "generation") or 0)

    @_translated
    def meta(self, key: str) -> str | None:
        """A value of `rag_meta` (None when absent)."""
        with self._read() as conn:
            return self._meta(conn, key)

    def check_embedder(self, name: str, dim: int | None = None, recipe: str | None = None) -> None:
        """Refuse another embedder, dimension or vector recipe than the recorded ones (a
        database without chunks accepts any)."""
        m = self.manifest()
        if self.count_chunks() == 0:
            return
        where = f"the database at {redacted(self.url)}"
        if m.embedder and m.embedder != name:
            raise EmbedderMismatch(
                f"{where} was built with embedder '{m.embedder}', but '{name}' is configured; "
                f"set RAG_EMBEDDER={m.embedder} or use another database"
            )
        if dim is not None and m.dim and m.dim != dim:
            raise EmbedderMismatch(
                f"{where} holds vectors of dimension {m.dim}, '{name}' gives {dim}"
            )
        stored = self.meta("vectors") or LEGACY_RECIPE
        if recipe is not None and stored != recipe:
            raise EmbedderMismatch(
                f"{where} holds vectors made as '{stored}', but this version makes them as "
                f"'{recipe}'; re-ingest the documents into another database"
            )

    def vector_recipe(self) -> str | None:
        """How the stored chunk vectors were made (None: no chunks yet, any may start)."""
        if self.count_chunks() == 0:
            return None
        return self.meta("vectors") or LEGACY_RECIPE

    def bind_embedder(self, name: str, dim: int | None = None, recipe: str | None = None) -> None:
        """Record the embedder (and give the vector column its dimension and HNSW index)."""
        self.check_embedder(name, dim, recipe)
        m = self.manifest()
        if (
            m.embedder == name
            and (dim is None or m.dim == dim)
            and (recipe is None or self.meta("vectors") == recipe)
        ):
            return
        with self._tx() as conn:
            self._record_embedder(conn, name, dim, recipe)

    def _record_embedder(self, conn: Any, name: str, dim: int | None, recipe: str | None) -> None:
        self._set_meta(conn, "embedder", name)
        if recipe is not None:
            self._set_meta(conn, "vectors", recipe)
        if dim is not None and self._meta(conn, "dim") != str(dim):
            # a typed column is what an HNSW index needs; the table has no chunks (checked)
            conn.execute("DROP INDEX IF EXISTS rag_chunks_hnsw")
            conn.execute(f"ALTER TABLE rag_chunks ALTER COLUMN embedding TYPE vector({int(dim)})")
            conn.execute(
                "CREATE INDEX rag_chunks_hnsw ON rag_chunks "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
            self._set_meta(conn, "dim", str(dim))

    # --- reads ----------------------------------------------------------------------------
    @_translated
    def count_documents(self) -> int:
        """Number of documents."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM rag_documents").fetchone()[0])

    @_translated
    def count_chunks(self) -> int:
        """Number of chunks."""
        with self._read() as conn:
            return int(conn.execute("SELECT n_chunks FROM rag_stats").fetchone()[0])

    @_translated
    def content_hash(self, source: str) -> str | None:
        """The content hash stored for `source`."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT content_hash FROM rag_documents WHERE source=%s", (source,)
            ).fetchone()
        return None if row is None else str(row[0])

    @_translated
    def file_states(self) -> dict[str, FileState]:
        """What is stored about every source's file."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT d.source, d.content_hash, d.file_size, d.file_mtime_ns, "
                "(SELECT count(*) FROM rag_chunks c WHERE c.doc_id = d.doc_id) FROM rag_documents d"
            ).fetchall()
        return {r[0]: FileState(r[1], r[2], r[3], int(r[4])) for r in rows}

    @_translated
    def set_file_stat(self, source: str, stat: tuple[int, int] | None) -> None:
        """Record a file's size and mtime (no new generation)."""
        size, mtime_ns = stat if stat is not None else (None, None)
        with self._tx() as conn:
            conn.execute(
                "UPDATE rag_documents SET file_size=%s, file_mtime_ns=%s WHERE source=%s",
                (size, mtime_ns, source),
            )

    @_translated
    def fingerprints(self) -> list[tuple[str, str, bytes | None, bool]]:
        """`(doc_id, source, signature or None, is_original)` of every document."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc_id, source, fingerprint, metadata ? 'duplicate_of' FROM rag_documents"
            ).fetchall()
        return [(r[0], r[1], None if r[2] is None else bytes(r[2]), not r[3]) for r in rows]

    @_translated
    def set_fingerprints(self, signatures: Sequence[tuple[str, bytes]]) -> None:
        """Back-fill signatures (no new generation)."""
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE rag_documents SET fingerprint=%s WHERE doc_id=%s",
                [(blob, doc_id) for doc_id, blob in signatures],
            )

    @_translated
    def cached_vectors(self, hashes: Sequence[str], dim: int) -> dict[str, ChunkVectors]:
        """Vectors already stored for chunk hashes (the embedding cache)."""
        out: dict[str, ChunkVectors] = {}
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return out
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (hash) hash, embedding, sent_spans, sent_vectors "
                "FROM rag_chunks WHERE hash = ANY(%s)",
                (wanted,),
            ).fetchall()
        for h, vec, spans, sblob in rows:
            out[h] = ChunkVectors(
                np.asarray(vec.to_numpy(), dtype=np.float32),
                _pairs(spans),
                np.frombuffer(bytes(sblob), dtype=np.float32).reshape(-1, dim),
            )
        return out

    _INFO = (
        "SELECT d.doc_id, d.source, d.title, length(d.text), "
        "(SELECT count(*) FROM rag_chunks c WHERE c.doc_id = d.doc_id), d.content_hash, "
        "d.metadata, d.updated_at FROM rag_documents d"
    )

    @_translated
    def documents(self) -> list[DocumentInfo]:
        """Every document's summary, ordered by source."""
        with self._read() as conn:
            rows = conn.execute(self._INFO + ' ORDER BY d.source COLLATE "C"').fetchall()
        return [_info(r) for r in rows]

    @_translated
    def document(self, doc_id: str) -> DocumentInfo:
        """One document's summary; `NotFound` when absent."""
        with self._read() as conn:
            row = conn.execute(self._INFO + " WHERE d.doc_id=%s", (doc_id,)).fetchone()
        if row is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return _info(row)

    @_translated
    def document_text(self, doc_id: str) -> str:
        """A document's stored text."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT text FROM rag_documents WHERE doc_id=%s", (doc_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return str(row[0])

    @_translated
    def chunk_at(self, doc_id: str, offset: int) -> ChunkSpan | None:
        """The first chunk of `doc_id` holding document offset `offset`; None if none does."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT ord, start_off, end_off, text FROM rag_chunks"
                " WHERE doc_id=%s AND start_off<=%s AND end_off>%s ORDER BY ord LIMIT 1",
                (doc_id, offset, offset),
            ).fetchone()
        return None if row is None else ChunkSpan(doc_id, int(row[0]), row[1], row[2], row[3])

    @_translated
    def texts_with(self, term: str, limit: int) -> list[str]:
        """The texts of up to `limit` chunks whose tokens include `term`, in id order (what the
        collection says of a name: `rag.answer.gazetteer`)."""
        if len(term.encode()) > MAX_LEXEME_BYTES:
            return []
        with self._read() as conn:
            rows = conn.execute(
                "SELECT text FROM rag_chunks WHERE tsv @@ %s::tsquery ORDER BY id LIMIT %s",
                (quote_lexeme(term), limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def read_view(self) -> PgView:
        """One consistent read (a REPEATABLE READ, read-only transaction) on a pooled connection."""
        return PgView(self)

    # --- writes ---------------------------------------------------------------------------
    def _bump(
        self, conn: Any, added: Sequence[int], deleted: Sequence[int], docs: Sequence[str]
    ) -> int:
        """Start the next generation, logging what it changed, and tell listeners at commit."""
        generation = int(self._meta(conn, "generation") or 0) + 1
        self._set_meta(conn, "generation", str(generation))
        conn.execute(
            "INSERT INTO rag_changes VALUES (%s, %s, %s, %s) ON CONFLICT (generation) DO UPDATE "
            "SET added = EXCLUDED.added, deleted = EXCLUDED.deleted, docs = EXCLUDED.docs",
            (
                generation,
                json.dumps(id_runs(added)),
                json.dumps(id_runs(deleted)),
                json.dumps(list(docs)),
            ),
        )
        floor = generation - CHANGE_LOG_KEEP
        if floor > 0 and floor > int(self._meta(conn, "changes_floor") or 0):
            conn.execute("DELETE FROM rag_changes WHERE generation <= %s", (floor,))
            self._set_meta(conn, "changes_floor", str(floor))
        return generation

    def _add_stats(self, conn: Any, tokens: Sequence[Sequence[str]], sign: int) -> None:
        """Add (`sign` 1) or take away (−1) what chunks with these tokens contribute to the
        per-term document frequencies and the collection statistics."""
        df, n, total, mass, latin = _term_stats(tokens)
        if df:
            terms = sorted(df)
            conn.execute(
                "INSERT INTO rag_terms (term, df) SELECT * FROM unnest(%s::text[], %s::int[]) "
                "ON CONFLICT (term) DO UPDATE SET df = rag_terms.df + EXCLUDED.df",
                (terms, [sign * df[t] for t in terms]),
            )
            if sign < 0:
                conn.execute("DELETE FROM rag_terms WHERE term = ANY(%s) AND df <= 0", (terms,))
        conn.execute(
            "UPDATE rag_stats SET n_chunks = n_chunks + %s, total_len = total_len + %s, "
            "df_mass = df_mass + %s, latin_mass = latin_mass + %s",
            (sign * n, sign * total, sign * mass, sign * latin),
        )

    def _remove_chunks(self, conn: Any, doc_id: str) -> list[int]:
        """Take a document's chunks out of the statistics; returns their ids (the rows go with
        the document, by cascade)."""
        rows = conn.execute(
            "SELECT id, tokens FROM rag_chunks WHERE doc_id=%s ORDER BY id", (doc_id,)
        ).fetchall()
        self._add_stats(conn, [r[1] for r in rows], -1)
        return [int(r[0]) for r in rows]

    @_translated
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
        """Insert or replace the document stored under `source` with its chunks, atomically
        (statistics, generation and change log in the same transaction)."""
        if len(chunks) != len(vectors):
            raise ValueError("one set of vectors per chunk")
        if tokens is None:  # made now: every chunk in PostgreSQL has its tokens
            from rag.index.tokenize import TOKENIZER_VERSION, tokenize

            tokens = [tokenize(c.text) for c in chunks]
            tokenizer_version = TOKENIZER_VERSION
        if len(tokens) != len(chunks):
            raise ValueError("one token list per chunk")
        doc_id = doc_id_for(source)
        with self._tx() as conn:
            row = conn.execute(
                "SELECT content_hash FROM rag_documents WHERE doc_id=%s", (doc_id,)
            ).fetchone()
            if row is not None and row[0] == content_hash:
                if file_stat is not None:
                    conn.execute(
                        "UPDATE rag_documents SET file_size=%s, file_mtime_ns=%s WHERE doc_id=%s",
                        (*file_stat, doc_id),
                    )
                (stored,) = conn.execute(
                    "SELECT count(*) FROM rag_chunks WHERE doc_id=%s", (doc_id,)
                ).fetchone()
                return Stored(doc_id, "unchanged", int(stored))
            old_ids = self._remove_chunks(conn, doc_id)
            conn.execute("DELETE FROM rag_documents WHERE doc_id=%s", (doc_id,))
            conn.execute(
                "INSERT INTO rag_documents (doc_id, source, title, text, content_hash, encoding, "
                "metadata, updated_at, fingerprint, file_size, file_mtime_ns) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
            new_ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT nextval('rag_chunk_ids') FROM generate_series(1, %s)", (len(chunks),)
                ).fetchall()
            ]
            self._insert_chunks(conn, doc_id, new_ids, chunks, vectors, tokens)
            self._add_stats(conn, tokens, 1)
            if tokenizer_version is not None:
                self._set_meta(conn, "tokenizer_version", str(tokenizer_version))
            self._bump(conn, new_ids, old_ids, [doc_id])
        return Stored(doc_id, "added" if row is None else "updated", len(chunks))

    def _insert_chunks(
        self,
        conn: Any,
        doc_id: str,
        ids: Sequence[int],
        chunks: Sequence[Chunk],
        vectors: Sequence[ChunkVectors],
        tokens: Sequence[Sequence[str]],
    ) -> None:
        rows = [
            (
                cid,
                doc_id,
                c.ord,
                c.start,
                c.end,
                c.text,
                chunk_hash(c.text),
                np.ascontiguousarray(v.vector, dtype=np.float32),
                [int(x) for span in v.sent_spans for x in span],
                np.ascontiguousarray(v.sent_vectors, dtype=np.float32).tobytes(),
                list(tok),
                tsvector_literal(tok),
                len(tok),
            )
            for cid, c, v, tok in zip(ids, chunks, vectors, tokens, strict=True)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO rag_chunks (id, doc_id, ord, start_off, end_off, text, hash, "
                "embedding, sent_spans, sent_vectors, tokens, tsv, n_tokens) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::tsvector, %s)",
                rows,
            )

    @_translated
    def delete_document(self, doc_id: str) -> None:
        """Remove a document (one generation); copies naming it `duplicate_of` are re-pointed
        in the same transaction, as the SQLite store does."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT source FROM rag_documents WHERE doc_id=%s", (doc_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no document with id '{doc_id}'")
            old_ids = self._remove_chunks(conn, doc_id)
            conn.execute("DELETE FROM rag_documents WHERE doc_id=%s", (doc_id,))
            copies = conn.execute(
                "SELECT doc_id, source FROM rag_documents "
                "WHERE metadata->>'duplicate_of' = %s ORDER BY seq",
                (row[0],),
            ).fetchall()
            for i, (copy_id, _) in enumerate(copies):
                if i == 0:
                    conn.execute(
                        "UPDATE rag_documents SET metadata = metadata - 'duplicate_of' "
                        "WHERE doc_id=%s",
                        (copy_id,),
                    )
                else:
                    conn.execute(
                        "UPDATE rag_documents SET metadata = jsonb_set(metadata, "
                        "'{duplicate_of}', to_jsonb(%s::text)) WHERE doc_id=%s",
                        (copies[0][1], copy_id),
                    )
            self._bump(conn, (), old_ids, [doc_id, *(c for c, _ in copies)])

    def set_tokens(self, tokens: Sequence[tuple[int, Sequence[str]]], version: int) -> None:
        """Nothing to do: every chunk is stored with its tokens (`put_document` makes them)."""

    @_translated
    def import_documents(
        self,
        documents: Sequence[dict[str, Any]],
        batches: Iterable[tuple[StoredRows, Sequence[Sequence[str]]]],
    ) -> int:
        """Copy documents and their chunks as another store holds them (texts, spans, vectors,
        tokens; nothing re-embedded or re-tokenised) in one transaction and one generation
        (`rag migrate`); returns the chunks written. A document already stored under the same
        source is replaced; chunks get new ids from this database's counter. `documents` are
        dicts of the `rag_documents` columns; `batches` the chunks, with their tokens."""
        with self._tx() as conn:
            removed: list[int] = []
            for d in documents:
                removed += self._remove_chunks(conn, d["doc_id"])
                conn.execute("DELETE FROM rag_documents WHERE doc_id=%s", (d["doc_id"],))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO rag_documents (doc_id, source, title, text, content_hash, "
                    "encoding, metadata, updated_at, fingerprint, file_size, file_mtime_ns) "
                    "VALUES (%(doc_id)s, %(source)s, %(title)s, %(text)s, %(content_hash)s, "
                    "%(encoding)s, %(metadata)s, %(updated_at)s, %(fingerprint)s, %(file_size)s, "
                    "%(file_mtime_ns)s)",
                    [
                        {**d, "metadata": json.dumps(d["metadata"], ensure_ascii=False)}
                        for d in documents
                    ],
                )
            added: list[int] = []
            for rows, tokens in batches:
                ids = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT nextval('rag_chunk_ids') FROM generate_series(1, %s)", (len(rows),)
                    ).fetchall()
                ]
                ptr = np.searchsorted(rows.sent_owner, np.arange(len(rows) + 1))
                for doc_id in dict.fromkeys(rows.doc_ids):
                    at = [i for i, d in enumerate(rows.doc_ids) if d == doc_id]
                    self._insert_chunks(
                        conn,
                        doc_id,
                        [ids[i] for i in at],
                        [
                            Chunk(
                                doc_id,
                                int(rows.ords[i]),
                                rows.texts[i],
                                int(rows.starts[i]),
                                int(rows.ends[i]),
                            )
                            for i in at
                        ],
                        [
                            ChunkVectors(
                                rows.vectors[i],
                                [
                                    (int(a) - int(rows.starts[i]), int(b) - int(rows.starts[i]))
                                    for a, b in zip(
                                        rows.sent_starts[ptr[i] : ptr[i + 1]],
                                        rows.sent_ends[ptr[i] : ptr[i + 1]],
                                        strict=True,
                                    )
                                ],
                                rows.sent_vectors[ptr[i] : ptr[i + 1]],
                            )
                            for i in at
                        ],
                        [tokens[i] for i in at],
                    )
                self._add_stats(conn, tokens, 1)
                added += ids
            from rag.index.tokenize import TOKENIZER_VERSION

            self._set_meta(conn, "tokenizer_version", str(TOKENIZER_VERSION))
            self._bump(conn, added, removed, [d["doc_id"] for d in documents])
        return len(added)


def _pairs(flat: Sequence[int]) -> list[tuple[int, int]]:
    """`[a0, b0, a1, b1, …]` as `[(a0, b0), (a1, b1), …]`."""
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


def _info(r: Sequence[Any]) -> DocumentInfo:
    return DocumentInfo(
        doc_id=r[0],
        source=r[1],
        title=r[2],
        chars=int(r[3]),
        chunks=int(r[4]),
        content_hash=r[5],
        metadata=dict(r[6]),
        updated_at=float(r[7]),
    )


Filter = tuple[str, list[Any]]  # an SQL condition on `rag_documents d` and its parameters


class PgView:
    """One consistent read of the database: a REPEATABLE READ, read-only transaction on one
    pooled connection, held until `close` (use as a context manager). Everything a derived-index
    rebuild reads (`ReadView`) and everything a search reads (`rag.retrieve.pg`) comes from the
    same state, whatever other replicas commit meanwhile."""

    def __init__(self, store: PgStore) -> None:
        """Take a connection and open the transaction; read the generation."""
        self.url = store.url
        self._cm = store._pool.connection()
        with translated(self.url):
            self._conn = self._cm.__enter__()
            try:
                self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                meta = dict(self._conn.execute("SELECT key, value FROM rag_meta").fetchall())
            except BaseException as exc:
                self._cm.__exit__(type(exc), exc, exc.__traceback__)
                raise
        self.generation = int(meta.get("generation", 0))
        self._meta = meta

    def __enter__(self) -> PgView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the transaction and give the connection back."""
        try:
            with contextlib.suppress(Exception):
                self._conn.execute("COMMIT")
        finally:
            self._cm.__exit__(None, None, None)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Run one statement in this view's transaction (a cursor)."""
        with translated(self.url):
            return self._conn.execute(sql, params)

    def meta(self, key: str) -> str | None:
        """A value of `rag_meta` as of this view."""
        return self._meta.get(key)

    def changes_since(self, generation: int) -> Changes | None:
        """Net changes after `generation` up to this view's (None: not logged any more)."""
        if generation > self.generation or generation < int(self.meta("changes_floor") or 0):
            return None
        rows = self.execute(
            "SELECT added, deleted, docs FROM rag_changes WHERE generation > %s "
            "AND generation <= %s ORDER BY generation",
            (generation, self.generation),
        ).fetchall()
        if len(rows) != self.generation - generation:
            return None
        return Changes.net(generation, self.generation, rows)

    _ROW_COLS = (
        "id, doc_id, ord, start_off, end_off, text, tokens, embedding, sent_spans, sent_vectors"
    )

    def row_batches(
        self, dim: int, chunk_ids: Sequence[int] | None = None, batch: int = SEGMENT_BATCH_ROWS
    ) -> Iterator[StoredRows]:
        """Chunks with tokens and vectors, by id, at most `batch` a time."""
        if chunk_ids is None:
            last = 0
            while True:
                rows = self.execute(
                    f"SELECT {self._ROW_COLS} FROM rag_chunks WHERE id > %s ORDER BY id LIMIT %s",
                    (last, batch),
                ).fetchall()
                if not rows:
                    return
                yield stored_rows(rows, dim)
                last = int(rows[-1][0])
        ids = sorted(set(chunk_ids))
        for i in range(0, len(ids), batch):
            yield self.rows(ids[i : i + batch], dim)

    def rows(self, chunk_ids: Sequence[int], dim: int) -> StoredRows:
        """The chunks of `chunk_ids` (those that exist), ordered by id."""
        rows = self.execute(
            f"SELECT {self._ROW_COLS} FROM rag_chunks WHERE id = ANY(%s) ORDER BY id",
            (list(chunk_ids),),
        ).fetchall()
        return stored_rows(rows, dim)

    def doc_rows(self, doc_ids: Iterable[str] | None = None) -> dict[str, DocRow]:
        """Source, title and metadata of every document, or of `doc_ids`."""
        sql = "SELECT doc_id, source, title, metadata FROM rag_documents"
        if doc_ids is None:
            rows = self.execute(sql).fetchall()
        else:
            rows = self.execute(sql + " WHERE doc_id = ANY(%s)", (list(doc_ids),)).fetchall()
        return {r[0]: DocRow(r[1], r[2], dict(r[3])) for r in rows}

    def counts(self) -> tuple[int, int]:
        """`(chunks, sentences)` stored."""
        row = self.execute(
            "SELECT count(*), COALESCE(sum(cardinality(sent_spans) / 2), 0) FROM rag_chunks"
        ).fetchone()
        return int(row[0]), int(row[1])

    # --- what a search reads (rag/retrieve/pg.py) -------------------------------------------
    def stats(self) -> tuple[int, int, int, int]:
        """`(chunks, tokens, df mass, Latin-word df mass)` of the collection."""
        row = self.execute(
            "SELECT n_chunks, total_len, df_mass, latin_mass FROM rag_stats"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        """Live document frequency of each of `terms` that some chunk holds."""
        if not terms:
            return {}
        rows = self.execute(
            "SELECT term, df FROM rag_terms WHERE term = ANY(%s) AND df > 0", (list(terms),)
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def terms_after(self, last_id: int) -> tuple[list[str], int]:
        """Terms first seen after term id `last_id`, and the largest id now."""
        rows = self.execute(
            "SELECT id, term FROM rag_terms WHERE id > %s ORDER BY id", (last_id,)
        ).fetchall()
        return [r[1] for r in rows], (int(rows[-1][0]) if rows else last_id)

    def allowed_docs(self, condition: Filter | None) -> list[str] | None:
        """The documents a filter allows (None: no filter, all)."""
        if condition is None:
            return None
        sql, params = condition
        return [
            r[0] for r in self.execute(f"SELECT d.doc_id FROM rag_documents d WHERE {sql}", params)
        ]

    def dense_top(
        self, vector: np.ndarray, n: int, docs: list[str] | None, ef_search: int
    ) -> list[int]:
        """Ids of the `n` chunks with the highest cosine to `vector` (pgvector's HNSW index;
        with `docs`, among those documents' chunks, scanned iteratively until `n` are found)."""
        self.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        from pgvector import Vector

        q = Vector(np.asarray(vector, dtype=np.float32))
        if docs is None:
            rows = self.execute(
                "SELECT id FROM rag_chunks ORDER BY embedding <=> %s, id LIMIT %s", (q, n)
            ).fetchall()
        else:
            self.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            rows = self.execute(
                "SELECT id FROM rag_chunks WHERE doc_id = ANY(%s) "
                "ORDER BY embedding <=> %s, id LIMIT %s",
                (docs, q, n),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def bm25_top(
        self,
        weights: dict[str, float],
        n: int,
        avgdl: float,
        docs: list[str] | None,
        k1: float,
        b: float,
    ) -> list[tuple[int, float]]:
        """The `n` best chunks by BM25, best first, ties by id. `weights` are the query terms'
        IDF × repetitions (from the statistics tables); candidates are the chunks the GIN index
        finds holding any term; a term's frequency in a chunk is the number of its positions
        in the chunk's tsvector (the lexemes kept by `setweight`+`ts_filter`: only the query's
        terms are expanded)."""
        terms = [t for t in weights if t and len(t.encode("utf-8")) <= MAX_LEXEME_BYTES]
        if not terms or avgdl <= 0:
            return []
        tsq = " | ".join(quote_lexeme(t) for t in terms)
        doc_cond = "" if docs is None else " AND c.doc_id = ANY(%(docs)s)"
        sql = f"""
            SELECT c.id, sum(q.w * x.tf / (x.tf + %(k1)s * (1 - %(b)s + %(b)s * c.n_tokens / %(avgdl)s))) AS s
            FROM rag_chunks c
            CROSS JOIN LATERAL unnest(ts_filter(setweight(c.tsv, 'A', %(terms)s), '{{a}}')) u
            CROSS JOIN LATERAL (SELECT cardinality(u.positions)::float8 AS tf) x
            JOIN unnest(%(terms)s::text[], %(w)s::float8[]) AS q(term, w) ON q.term = u.lexeme
            WHERE c.tsv @@ %(tsq)s::tsquery{doc_cond}
            GROUP BY c.id ORDER BY s DESC, c.id LIMIT %(n)s"""
        rows = self.execute(
            sql,
            {
                "k1": k1,
                "b": b,
                "avgdl": avgdl,
                "terms": terms,
                "w": [weights[t] for t in terms],
                "tsq": tsq,
                "docs": docs,
                "n": n,
            },
        ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def sample_ids(self, k: int, docs: list[str] | None) -> list[int]:
        """A fixed sample of at most `k` chunk ids (the smallest random keys, drawn once per
        chunk when stored): the rows whose median dense score a search compares with."""
        if docs is None:
            sql, params = "SELECT id FROM rag_chunks ORDER BY sample_key LIMIT %s", (k,)
        else:
            sql = "SELECT id FROM rag_chunks WHERE doc_id = ANY(%s) ORDER BY sample_key LIMIT %s"
            params = (docs, k)  # type: ignore[assignment]
        return [int(r[0]) for r in self.execute(sql, params)]

    def vectors(
        self, chunk_ids: Sequence[int], dim: int
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """`id → (chunk vector, its sentences' vectors)` of `chunk_ids`."""
        rows = self.execute(
            "SELECT id, embedding, sent_vectors FROM rag_chunks WHERE id = ANY(%s)",
            (list(chunk_ids),),
        ).fetchall()
        return {
            int(r[0]): (
                np.asarray(r[1].to_numpy(), dtype=np.float32),
                np.frombuffer(bytes(r[2]), dtype=np.float32).reshape(-1, dim),
            )
            for r in rows
        }


def stored_rows(rows: Sequence[Sequence[Any]], dim: int) -> StoredRows:
    """Column-wise rows of `PgView._ROW_COLS` (as `rag.store.view` reads SQLite's)."""
    owner: list[int] = []
    s_starts: list[int] = []
    s_ends: list[int] = []
    for i, r in enumerate(rows):
        start = int(r[3])
        for a, b in _pairs(r[8]):
            owner.append(i)
            s_starts.append(start + a)
            s_ends.append(start + b)
    vec = [np.asarray(r[7].to_numpy(), dtype=np.float32) for r in rows]
    return StoredRows(
        chunk_ids=np.array([r[0] for r in rows], dtype=np.int64),
        doc_ids=[r[1] for r in rows],
        ords=np.array([r[2] for r in rows], dtype=np.int64),
        starts=np.array([r[3] for r in rows], dtype=np.int64),
        ends=np.array([r[4] for r in rows], dtype=np.int64),
        texts=[r[5] for r in rows],
        tokens=[list(r[6]) for r in rows],
        vectors=np.stack(vec) if vec else np.zeros((0, dim), np.float32),
        sent_vectors=np.frombuffer(b"".join(bytes(r[9]) for r in rows), dtype=np.float32).reshape(
            -1, dim
        ),
        sent_owner=np.array(owner, dtype=np.int64),
        sent_starts=np.array(s_starts, dtype=np.int64),
        sent_ends=np.array(s_ends, dtype=np.int64),
    )


def metadata_condition(
    sources: Iterable[str] | None,
    doc_ids: Iterable[str] | None,
    equals: dict[str, Any] | None,
    date_from: str | None,
    date_to: str | None,
) -> Filter | None:
    """The SQL condition (on `rag_documents d`) of a search filter, as `rag.retrieve.search`
    applies one: named sources and doc ids add up; metadata equality (a stored list matches
    when it holds the value: jsonb containment) and the `date` range then narrow them."""
    parts: list[str] = []
    params: list[Any] = []
    named_sources, named_ids = list(sources or ()), list(doc_ids or ())
    if named_sources or named_ids:
        parts.append("(d.source = ANY(%s) OR d.doc_id = ANY(%s))")
        params += [named_sources, named_ids]
    for key, value in (equals or {}).items():
        parts.append("d.metadata -> %s @> %s::jsonb")
        params += [key, json.dumps(value, ensure_ascii=False)]
    if date_from is not None or date_to is not None:
        parts.append(
            "jsonb_typeof(d.metadata -> 'date') = 'string' "
            "AND d.metadata ->> 'date' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$'"
        )
        if date_from is not None:
            parts.append("left(d.metadata ->> 'date', 10) >= %s")
            params.append(date_from)
        if date_to is not None:
            parts.append("left(d.metadata ->> 'date', 10) <= %s")
            params.append(date_to)
    if not parts:
        return None
    return " AND ".join(parts), params
