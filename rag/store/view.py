"""One consistent read of the whole store, for building a snapshot of the derived indexes.

A `StoreView` is its own read-only SQLite connection inside one read transaction (WAL gives it a
fixed picture of the database), so the generation, the chunk rows, the vectors and the documents'
metadata it returns all belong together even while another thread or process writes — and the
store's own connection (and its lock) stays free for the requests served meanwhile.

Rows are read in batches (`row_batches`: at most `SEGMENT_BATCH_ROWS` chunks, by id), so a
rebuild never holds the whole collection's vectors at once, and an incremental update reads only
the chunks a write added (`row_batches(ids)`, after `changes_since`).

A view never writes. On a store that could not be opened for writing (see `Store`), it reads
the database file `immutable`, as the store does. SQLite's errors come out as the library's
(`rag.store.faults`): a damaged database is an `IndexError_` saying so.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.store import faults

SEGMENT_BATCH_ROWS = 100_000  # chunks read per batch (one segment each) when rebuilding
_ID_CHUNK = 500  # ids per `IN (...)` query
TOKEN_SEPARATOR = "\x1f"  # as `rag.store.sqlite` joins a chunk's tokens
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
        with faults.translated(self.path):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class StoredRows:
    """Chunks read from the store, column-wise, ordered by chunk id (what a segment is built
    from). `tokens[i]` is None for a chunk stored without tokens (before schema version 3)."""

    chunk_ids: np.ndarray  # int64, increasing
    doc_ids: list[str]
    ords: np.ndarray  # int64
    starts: np.ndarray
    ends: np.ndarray
    texts: list[str]
    tokens: list[list[str] | None]
    vectors: np.ndarray  # float32 (n, dim)
    sent_vectors: np.ndarray  # float32 (m, dim)
    sent_owner: np.ndarray  # int64 (m,): row of each sentence
    sent_starts: np.ndarray  # int64 document offsets
    sent_ends: np.ndarray

    def __len__(self) -> int:
        """Number of chunks."""
        return len(self.chunk_ids)


@dataclass(frozen=True)
class Changes:
    """What the generations after one (up to the view's) changed, net: chunk ids added and
    still there, chunk ids that existed before and are gone, documents whose rows changed
    (stored, replaced, deleted, or re-pointed by a delete). Chunk ids are never reused, so an
    id both added and deleted in the window is simply not there."""

    since: int
    generation: int
    added: list[int]
    deleted: list[int]
    docs: list[str]

    @classmethod
    def net(
        cls,
        since: int,
        generation: int,
        logged: Iterable[tuple[Sequence[Sequence[int]], Sequence[Sequence[int]], Sequence[str]]],
    ) -> Changes:
        """The net change of the logged generations after `since` up to `generation`, each given
        as (added id runs, deleted id runs, documents), runs as `[first, last + 1)` — the change
        log's layout in every store."""
        added: set[int] = set()
        deleted: set[int] = set()
        docs: dict[str, None] = {}
        for a, d, ds in logged:
            added.update(_expand(a))
            deleted.update(_expand(d))
            docs.update(dict.fromkeys(ds))
        return cls(
            since=since,
            generation=generation,
            added=sorted(added - deleted),
            deleted=sorted(deleted - added),
            docs=list(docs),
        )


@dataclass(frozen=True)
class DocRow:
    """What a search shows of a document: its source, title and metadata."""

    source: str
    title: str
    metadata: dict[str, Any]


class StoreView:
    """A read transaction on the store at `path`; use as a context manager (closes on exit)."""

    def __init__(self, path: Path, *, immutable: bool = False) -> None:
        """Open a read-only connection and start the transaction every read below shares."""
        self.path = path
        with faults.translated(path):
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

    def meta(self, key: str) -> str | None:
        """A value of the store's `meta` table (None when absent)."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @_translated
    def changes_since(self, generation: int) -> Changes | None:
        """The net changes of the generations after `generation` up to this view's, or None when
        the change log does not cover them (pruned, written before the log existed, or the
        store is behind `generation`: restored from a backup)."""
        if generation > self.generation:
            return None
        if generation < int(self.meta("changes_floor") or 0):
            return None
        rows = self._db.execute(
            "SELECT added, deleted, docs FROM changes WHERE generation > ? AND generation <= ? "
            "ORDER BY generation",
            (generation, self.generation),
        ).fetchall()
        if len(rows) != self.generation - generation:
            return None
        return Changes.net(
            generation,
            self.generation,
            ((json.loads(a), json.loads(d), json.loads(ds)) for a, d, ds in rows),
        )

    def row_batches(
        self, dim: int, chunk_ids: Sequence[int] | None = None, batch: int = SEGMENT_BATCH_ROWS
    ) -> Iterator[StoredRows]:
        """Chunks with tokens and vectors, by id, at most `batch` a time: all of them, or those
        of `chunk_ids` (ids the store lacks are skipped)."""
        cols = (
            "id, doc_id, ord, start, end, text, tokens, vector, sent_spans, sent_vectors "
            "FROM chunks"
        )
        try:
            if chunk_ids is None:
                cursor = self._db.execute(f"SELECT {cols} ORDER BY id")
                while True:
                    # no name holds the raw rows while the batch is out: their blobs (as large
                    # as the batch's vectors) are freed once converted, not after it is used
                    stored = _stored_rows(cursor.fetchmany(batch), dim)
                    if not len(stored):
                        return
                    yield stored
                    del stored  # before the next batch is read, not after
            ids = sorted(set(chunk_ids))
            for i in range(0, len(ids), batch):
                part = ids[i : i + batch]
                rows = []
                for j in range(0, len(part), _ID_CHUNK):
                    sub = part[j : j + _ID_CHUNK]
                    marks = ",".join("?" * len(sub))
                    rows += self._db.execute(
                        f"SELECT {cols} WHERE id IN ({marks}) ORDER BY id", sub
                    ).fetchall()
                stored = _stored_rows(rows, dim)
                del rows
                yield stored
        except sqlite3.Error as exc:
            mapped = faults.translate(exc, self.path)
            if mapped is None:
                raise
            raise mapped from exc

    @_translated
    def doc_rows(self, doc_ids: Iterable[str] | None = None) -> dict[str, DocRow]:
        """`doc_id → DocRow` of every document, or of those of `doc_ids` that exist (the large
        `text` column is not read)."""
        sql = "SELECT doc_id, source, title, metadata FROM documents"
        if doc_ids is None:
            rows = self._db.execute(sql).fetchall()
        else:
            wanted = list(dict.fromkeys(doc_ids))
            rows = []
            for j in range(0, len(wanted), _ID_CHUNK):
                sub = wanted[j : j + _ID_CHUNK]
                marks = ",".join("?" * len(sub))
                rows += self._db.execute(f"{sql} WHERE doc_id IN ({marks})", sub).fetchall()
        return {r[0]: DocRow(r[1], r[2], json.loads(r[3])) for r in rows}

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


def _expand(runs: Sequence[Sequence[int]]) -> Iterator[int]:
    """The ids of `[first, last + 1)` runs."""
    for lo, hi in runs:
        yield from range(lo, hi)


def _stored_rows(rows: Sequence[Sequence[Any]], dim: int) -> StoredRows:
    """Column-wise rows of `row_batches`' query. Equal tokens share one string object: a batch
    holds tens of millions of tokens but a vocabulary of a few hundred thousand, so this is most
    of what a rebuild's batch would otherwise hold in memory."""
    shared: dict[str, str] = {}
    share = shared.setdefault
    owner: list[int] = []
    s_starts: list[int] = []
    s_ends: list[int] = []
    for i, r in enumerate(rows):
        start = r[3]
        for a, b in json.loads(r[8]):
            owner.append(i)
            s_starts.append(start + a)
            s_ends.append(start + b)
    return StoredRows(
        chunk_ids=np.array([r[0] for r in rows], dtype=np.int64),
        doc_ids=[r[1] for r in rows],
        ords=np.array([r[2] for r in rows], dtype=np.int64),
        starts=np.array([r[3] for r in rows], dtype=np.int64),
        ends=np.array([r[4] for r in rows], dtype=np.int64),
        texts=[r[5] for r in rows],
        tokens=[
            None
            if r[6] is None
            else [share(t, t) for t in r[6].split(TOKEN_SEPARATOR)]
            if r[6]
            else []
            for r in rows
        ],
        vectors=np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(-1, dim),
        sent_vectors=np.frombuffer(b"".join(r[9] for r in rows), dtype=np.float32).reshape(-1, dim),
        sent_owner=np.array(owner, dtype=np.int64),
        sent_starts=np.array(s_starts, dtype=np.int64),
        sent_ends=np.array(s_ends, dtype=np.int64),
    )
