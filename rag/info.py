"""`rag info`: an index described without changing anything.

Counts come straight from SQLite, opened read-only (`Store(readonly=True)`: not even SQLite's
-wal/-shm files are created when no other process has them open). The segment manifest is reported
`current`, `stale`, `missing` or `damaged` from their headers; none is rebuilt or rewritten, so
`rag info` works on a full or read-only disk and shows what a server would find there. No model
is loaded: the configured embedder is only compared, by name, with the one the index records.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rag.config import Settings
from rag.embed.registry import embedder_name
from rag.index.snapshot import derived_status
from rag.store.sqlite import Store


def describe(settings: Settings, *, documents: bool = False) -> dict[str, Any]:
    """Counts, embedder, generation and the derived files' state of the index in
    `settings.index_dir`; with `documents`, every document's summary (`documents_list`).

    Refuses what opening an engine would refuse: a missing index (`NotFound`), a damaged
    database (`IndexError_`), another embedder than the configured one (`EmbedderMismatch`).
    """
    if settings.store_url:
        return _describe_database(settings, documents=documents)
    store = Store(settings.db_path, readonly=True)
    try:
        configured = embedder_name(settings.embedder)
        store.check_embedder(configured)
        manifest = store.manifest()
        with store.read_view() as view:  # one state of the store for every number below
            chunks, _ = view.counts()
            info: dict[str, Any] = {
                "index_dir": str(settings.index_dir),
                "embedder": manifest.embedder,
                "dim": manifest.dim,
                "schema_version": manifest.schema_version,
                "generation": view.generation,
                "documents": len(view.doc_sources()),
                "chunks": chunks,
                "derived_files": derived_status(settings.index_dir, view, manifest.dim),
            }
        if documents:
            info["documents_list"] = [asdict(d) for d in store.documents()]
        return info
    finally:
        store.close()


def _describe_database(settings: Settings, *, documents: bool) -> dict[str, Any]:
    """`describe` of a PostgreSQL store (RAG_STORE_URL): one read transaction, no derived files."""
    from rag.store.postgres import PgStore, redacted

    store = PgStore(settings.store_url, auto_upgrade=False)
    try:
        store.check_embedder(embedder_name(settings.embedder))
        manifest = store.manifest()
        with store.read_view() as view:
            chunks, _ = view.counts()
            info: dict[str, Any] = {
                "store": redacted(settings.store_url),
                "embedder": manifest.embedder,
                "dim": manifest.dim,
                "schema_version": manifest.schema_version,
                "generation": view.generation,
                "documents": len(view.doc_rows()),
                "chunks": chunks,
            }
        if documents:
            info["documents_list"] = [asdict(d) for d in store.documents()]
        return info
    finally:
        store.close()
