"""`rag migrate --to URL`: copy a local index (SQLite) into a PostgreSQL database.

Everything the local store holds is copied as it is — documents with their text, metadata,
signatures and file stats; chunks with their spans, vectors, sentence vectors and BM25 tokens —
so nothing is re-embedded (tokens are made again only for chunks stored without them, or by an
older tokenizer) and the database answers as the local index does. The copy reads one
consistent state of the SQLite file (one read transaction, read-only) and writes one PostgreSQL
transaction: the database gets the whole index, or nothing of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import NotFound
from rag.index.tokenize import TOKENIZER_VERSION, tokenize
from rag.store.postgres import PgStore
from rag.store.sqlite import LEGACY_RECIPE, Store
from rag.store.view import StoredRows, StoreView

BATCH_ROWS = 5_000  # chunks read and written at a time
_DOC_COLS = (
    "doc_id",
    "source",
    "title",
    "text",
    "content_hash",
    "encoding",
    "metadata",
    "updated_at",
    "fingerprint",
    "file_size",
    "file_mtime_ns",
)


@dataclass(frozen=True)
class Migrated:
    """What a migration copied."""

    documents: int
    chunks: int
    generation: int  # the database's generation after the copy


def migrate(db_path: Path, url: str) -> Migrated:
    """Copy the index at `db_path` into the database at `url` (its schema created or upgraded
    first). `NotFound` when there is no index; `EmbedderMismatch` when the database holds
    chunks of another embedder or vector recipe."""
    if not db_path.exists():
        raise NotFound(f"no index at {db_path.parent} (nothing was ingested there)")
    local = Store(db_path, readonly=True)
    try:
        manifest = local.manifest()
        recipe = local.vector_recipe() or LEGACY_RECIPE
    finally:
        local.close()
    target = PgStore(url)
    try:
        if manifest.embedder:
            target.bind_embedder(manifest.embedder, manifest.dim or None, recipe)
        with StoreView(db_path) as view:
            documents = _documents(view)
            stored = view.meta("tokenizer_version")
            trusted = stored is None or stored == str(TOKENIZER_VERSION)
            n = target.import_documents(documents, _batches(view, manifest.dim, trusted))
        return Migrated(len(documents), n, target.generation())
    finally:
        target.close()


def _documents(view: StoreView) -> list[dict[str, Any]]:
    """Every document row, in insertion order (the order duplicates are re-pointed in)."""
    out = []
    sql = f"SELECT {', '.join(_DOC_COLS)} FROM documents ORDER BY rowid"
    for r in view._db.execute(sql):
        d = dict(zip(_DOC_COLS, r, strict=True))
        d["metadata"] = json.loads(d["metadata"])
        out.append(d)
    return out


def _batches(
    view: StoreView, dim: int, trusted: bool
) -> Iterator[tuple[StoredRows, Sequence[Sequence[str]]]]:
    """The chunks in batches, with their tokens (made now where missing or untrusted)."""
    for rows in view.row_batches(dim, batch=BATCH_ROWS):
        yield (
            rows,
            [
                t if t is not None and trusted else tokenize(text)
                for t, text in zip(rows.tokens, rows.texts, strict=True)
            ],
        )
