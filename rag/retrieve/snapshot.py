"""An immutable view of the index at one generation: chunk table + dense + lexical indexes.

Searches read one `Snapshot` from start to end; a write builds a new one and swaps it in, so a
response never mixes the state before and after a write.

The derived files are caches of SQLite: a snapshot is built in memory, and a file that cannot be
saved (a full or read-only disk, no permission) is logged and left to be rebuilt by a later load;
it never fails a load, nor the write that led to it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.errors import IndexError_
from rag.index.dense import DenseIndex
from rag.index.lexical import LexicalIndex
from rag.index.persist import StaleOrCorrupt
from rag.index.tokenize import fold_long
from rag.ingest.pages import page_spans
from rag.store import faults
from rag.store.sqlite import Store
from rag.store.view import StoreView
from rag.types import PageSpan

log = logging.getLogger(__name__)

DENSE_FILE = "dense.idx"
LEXICAL_FILE = "lexical.idx"
SENTENCE_FILE = "sentences.idx"


@dataclass(frozen=True)
class Snapshot:
    """Everything a search needs, consistent with SQLite generation `generation`."""

    generation: int
    doc_ids: list[str]
    ords: list[int]
    starts: list[int]
    ends: list[int]
    texts: list[str]
    sources: dict[str, tuple[str, str]]  # doc_id -> (source, title)
    dense: DenseIndex
    lexical: LexicalIndex
    sentences: DenseIndex  # one vector per sentence of every chunk
    sent_owner: np.ndarray  # row of each sentence
    sent_starts: np.ndarray  # document offsets of each sentence
    sent_ends: np.ndarray
    folded_texts: list[str] = field(default_factory=list)  # t2s + lower-case, for term matching
    rebuilt: tuple[str, ...] = ()  # which derived files had to be rebuilt on load
    rows_by_doc: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # doc_id -> its metadata
    pages: dict[str, tuple[PageSpan, ...]] = field(default_factory=dict)  # paged documents only

    def __len__(self) -> int:
        """Number of chunks."""
        return len(self.texts)

    def chunk_id(self, row: int) -> str:
        """`doc_id:ord` of a row."""
        return f"{self.doc_ids[row]}:{self.ords[row]}"

    def folded(self, row: int) -> str:
        """The chunk text folded to simplified, lower case (matching only; never shown)."""
        return self.folded_texts[row]

    def sentences_of(self, row: int) -> np.ndarray:
        """Indices (into the sentence index) of the sentences of chunk `row`."""
        lo, hi = np.searchsorted(self.sent_owner, [row, row + 1])
        return np.arange(lo, hi)

    def rows_for(self, doc_ids: list[str]) -> np.ndarray:
        """Rows belonging to any of `doc_ids` (for filtered search)."""
        parts = [self.rows_by_doc[d] for d in doc_ids if d in self.rows_by_doc]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def load_snapshot(store: Store, index_dir: Path, embedder: str, dim: int) -> Snapshot:
    """Load derived indexes stamped with the store's generation, rebuilding any missing/stale/corrupt one.

    Everything is read in one `StoreView` (one consistent state of the store, even with a writer
    in another process); vectors are streamed from it only for an index that must be rebuilt.
    """
    with store.read_view() as view:
        generation = view.generation
        rows = view.chunk_rows()
        metadata = view.doc_metadata()
        sources = view.doc_sources()
        stamps = _stamps(generation, embedder, dim, len(rows.texts), len(rows.sent_owner))
        rebuilt: list[str] = []
        dense = _load_dense(
            index_dir / DENSE_FILE, stamps[DENSE_FILE], view, "vector", dim, rebuilt
        )
        sentences = _load_dense(
            index_dir / SENTENCE_FILE,
            stamps[SENTENCE_FILE],
            view,
            "sent_vectors",
            dim,
            rebuilt,
        )
    try:
        lexical = LexicalIndex.load(index_dir / LEXICAL_FILE, stamps[LEXICAL_FILE])
    except StaleOrCorrupt as exc:
        log.info("rebuilding lexical index: %s", exc)
        lexical = LexicalIndex.build(rows.texts)
        _save(lexical.save, index_dir / LEXICAL_FILE, stamps[LEXICAL_FILE])
        rebuilt.append(LEXICAL_FILE)
    by_doc: dict[str, list[int]] = {}
    for i, d in enumerate(rows.doc_ids):
        by_doc.setdefault(d, []).append(i)
    return Snapshot(
        generation=generation,
        doc_ids=rows.doc_ids,
        ords=rows.ords,
        starts=rows.starts,
        ends=rows.ends,
        texts=rows.texts,
        sources=sources,
        dense=dense,
        lexical=lexical,
        sentences=sentences,
        sent_owner=rows.sent_owner,
        sent_starts=rows.sent_starts,
        sent_ends=rows.sent_ends,
        folded_texts=[fold_long(t) for t in rows.texts],
        rebuilt=tuple(rebuilt),
        rows_by_doc={d: np.array(r, dtype=np.int64) for d, r in by_doc.items()},
        # read once here, so a search never goes back to SQLite for a passage's metadata or page;
        # a PDF's page spans are kept apart (they are long and not for display)
        metadata={d: {k: v for k, v in md.items() if k != "pages"} for d, md in metadata.items()},
        pages={d: spans for d, md in metadata.items() if (spans := page_spans(md))},
    )


def _load_dense(
    path: Path,
    stamp: dict[str, object],
    view: StoreView,
    column: Literal["vector", "sent_vectors"],
    dim: int,
    rebuilt: list[str],
) -> DenseIndex:
    """Load a stamped FAISS file, or rebuild it from the store's `column` (and save it) when
    unusable."""
    try:
        return DenseIndex.load(path, stamp)
    except StaleOrCorrupt as exc:
        log.info("rebuilding %s: %s", path.name, exc)
    index = DenseIndex.build_batches(view.vector_batches(column, dim), dim)
    if len(index) != stamp["rows"]:  # a vector blob of the wrong size: say so, do not serve
        raise IndexError_(
            f"{path.name}: the store holds {len(index)} {column} rows, expected {stamp['rows']}"
        )
    _save(index.save, path, stamp)
    rebuilt.append(path.name)
    return index


def _stamps(
    generation: int, embedder: str, dim: int, chunks: int, sentences: int
) -> dict[str, dict[str, object]]:
    """What each derived file must be stamped with to be current (what its `load` checks)."""
    stamp: dict[str, object] = {"generation": generation, "embedder": embedder, "rows": chunks}
    return {
        DENSE_FILE: dict(stamp, dim=dim),
        SENTENCE_FILE: dict(stamp, rows=sentences, dim=dim),
        LEXICAL_FILE: stamp,
    }


def _save(
    save: Callable[[Path, dict[str, object]], None], path: Path, stamp: dict[str, object]
) -> None:
    """Write a rebuilt derived file. It is a cache: when it cannot be written (`OSError`: a full
    or read-only disk, no permission) the snapshot is served from memory and the file is rebuilt
    by a later load; the failure is logged, never raised. With no room, the stale file it
    replaces (useless to this generation) is removed first and the write tried once more: its
    space may be what the new one needs."""
    try:
        save(path, stamp)
        return
    except OSError as exc:
        error = exc
    if faults.is_no_room(error) and path.exists():
        with contextlib.suppress(OSError):
            path.unlink()
            try:
                save(path, stamp)
                return
            except OSError as exc:
                error = exc
    log.warning(
        "could not save %s (%s): serving it from memory; it is rebuilt on a later load",
        path.name,
        error.strerror or error,
    )


def derived_status(index_dir: Path, view: StoreView, embedder: str, dim: int) -> dict[str, str]:
    """`file → "current" | "stale" | "missing" | "damaged"` for each derived file, as seen from
    the store state `view`: current when its header carries the stamp a load requires. Headers
    only are read (the payload's checksum is not verified), and nothing is written."""
    chunks, sentences = view.counts()
    stamps = _stamps(view.generation, embedder, dim, chunks, sentences)
    out: dict[str, str] = {}
    for name, stamp in stamps.items():
        path = index_dir / name
        current = LexicalIndex.is_current if name == LEXICAL_FILE else DenseIndex.is_current
        try:
            out[name] = "current" if current(path, stamp) else "stale"
        except StaleOrCorrupt:
            out[name] = "damaged" if path.exists() else "missing"
    return out
