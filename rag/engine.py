"""The engine: one object that owns the store, the embedder and the current index snapshot.

It is what the CLI and the HTTP app call. Writes are serialised by a lock and end by swapping in a
fresh snapshot; reads take the current snapshot once and use only it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.extractive import compose_answer
from rag.answer.generate import generate
from rag.answer.generate import warn as _warn
from rag.answer.stream import AnswerEvent, FinalEvent, replay
from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.batcher import QueryBatcher
from rag.embed.registry import embedder_name, get_embedder
from rag.errors import DocumentError, EmbedderMismatch, InputError, NotFound, RagError
from rag.index.tokenize import warm_up
from rag.ingest.loaders import supported_suffixes
from rag.ingest.metadata import check_user_metadata
from rag.ingest.pages import page_at, pages_within
from rag.ingest.pipeline import Prepared, content_hash, prepare, read_file
from rag.ingest.split import sentence_spans
from rag.llm.base import LLM
from rag.llm.registry import get_llm
from rag.retrieve.crosslingual import glossary
from rag.retrieve.filter import MetadataFilter
from rag.retrieve.hybrid import Hit, Query, analyse, retrieve
from rag.retrieve.merge import Merged, merge_hits
from rag.retrieve.rerank import load_reranker
from rag.retrieve.snapshot import Snapshot, load_snapshot
from rag.store.sqlite import ChunkVectors, Store, chunk_hash, doc_id_for
from rag.types import Answer, DocumentInfo, IngestResult, Passage

log = logging.getLogger(__name__)

MODES = ("auto", "extractive", "llm")
RECHECK_SECONDS = 1.0  # how stale a reader may be with respect to writes by other processes


@dataclass(frozen=True)
class Upload:
    """One document to ingest from bytes (an HTTP upload, or text sent as JSON with `as_type`)."""

    source: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    as_type: str | None = None  # loader to use instead of the source's suffix (e.g. ".txt")


@dataclass(frozen=True)
class _Plan:
    """What ingesting one upload will do; `prepared` is None when the content is unchanged."""

    source: str
    previous: str | None  # content hash stored before, if any
    prepared: Prepared | None


@dataclass(frozen=True)
class SearchResult:
    """Passages for a query, with the hits (signals) behind them."""

    query: str
    passages: tuple[Passage, ...]
    hits: tuple[Hit, ...]
    analysed: Query
    idf: dict[str, float]  # IDF of the query tokens in the snapshot searched
    generation: int  # the index generation the whole result comes from


class Engine:
    """Ingest, search and answer over one index directory."""

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, llm: LLM | None = None
    ) -> None:
        """Open the store, refuse a mismatched embedder before loading it, load the snapshot."""
        self.settings = settings
        self.store = Store(settings.db_path)
        try:  # refuse a mismatched embedder before spending time loading it
            self.store.check_embedder(
                embedder.name if embedder is not None else embedder_name(settings.embedder)
            )
        except EmbedderMismatch:
            self.store.close()
            raise
        self.embedder = embedder if embedder is not None else get_embedder(settings.embedder)
        self.store.bind_embedder(self.embedder.name, self.embedder.dim)
        warm_up()
        # The cross-lingual glossary takes ~2 s to parse: do it now, off the request path.
        threading.Thread(target=glossary, name="glossary", daemon=True).start()
        self._queries = QueryBatcher(self.embedder)
        self.llm = llm if llm is not None else get_llm(settings)
        self._write_lock = threading.Lock()
        self._snapshot = self._load_snapshot()
        self._checked_at = time.monotonic()

    def close(self) -> None:
        """Stop the query batcher and release the database connection."""
        self._queries.close()
        self.store.close()

    # --- state ------------------------------------------------------------------------------
    def _load_snapshot(self) -> Snapshot:
        return load_snapshot(
            self.store, self.settings.index_dir, self.embedder.name, self.embedder.dim
        )

    @property
    def snapshot(self) -> Snapshot:
        """The current consistent index state."""
        return self._snapshot

    def refresh(self) -> None:
        """Rebuild derived indexes if SQLite moved on, and swap the new snapshot in."""
        if self.store.generation() != self._snapshot.generation:
            self._snapshot = self._load_snapshot()
        self._checked_at = time.monotonic()

    def _current(self) -> Snapshot:
        """The snapshot to read; at most once per `RECHECK_SECONDS`, pick up writes made by another
        process (e.g. `rag ingest` into the index a server is serving)."""
        if time.monotonic() - self._checked_at > RECHECK_SECONDS and self._write_lock.acquire(
            blocking=False
        ):
            try:
                self.refresh()
            finally:
                self._write_lock.release()
        return self._snapshot

    def info(self) -> dict[str, Any]:
        """Counts, embedder and paths, for `rag info` and readiness checks."""
        m = self.store.manifest()
        return {
            "index_dir": str(self.settings.index_dir),
            "embedder": m.embedder,
            "dim": m.dim,
            "schema_version": m.schema_version,
            "generation": m.generation,
            "documents": self.store.count_documents(),
            "chunks": self.store.count_chunks(),
            "rebuilt_on_load": list(self._snapshot.rebuilt),
        }

    # --- writes -----------------------------------------------------------------------------
    def ingest_paths(
        self,
        paths: Sequence[Path],
        progress: Callable[[IngestResult], None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[IngestResult]:
        """Ingest files and folders (walked for supported files). Bad files fail alone.

        `metadata` is the user's, given to every file. Missing paths (`NotFound`) and unusable
        metadata (`InputError`) are refused before anything is written.
        """
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise NotFound(f"no such file or directory: {', '.join(missing)}")
        check_user_metadata(metadata)
        results: list[IngestResult] = []
        for path, source in self.expand(paths):
            try:
                data = read_file(path, self.settings.max_file_bytes)
                result = self._ingest_one(source, data, dict(metadata or {}))
            except (DocumentError, NotFound) as exc:
                result = IngestResult(source=source, status="failed", reason=str(exc))
            results.append(result)
            if progress:
                progress(result)
        with self._write_lock:
            self.refresh()
        return results

    @staticmethod
    def expand(paths: Sequence[Path]) -> list[tuple[Path, str]]:
        """`(file, source)` pairs: a folder contributes its supported files, named relative to it."""
        out: list[tuple[Path, str]] = []
        suffixes = set(supported_suffixes())
        for p in paths:
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    if (
                        f.is_file()
                        and f.suffix.lower() in suffixes
                        and not any(part.startswith(".") for part in f.relative_to(p).parts)
                    ):
                        out.append((f, f.relative_to(p).as_posix()))
            else:
                out.append((p, p.name))
        return out

    def ingest_bytes(
        self,
        source: str,
        data: bytes,
        metadata: dict[str, Any] | None = None,
        *,
        as_type: str | None = None,
    ) -> IngestResult:
        """Ingest one document given as bytes; raises `DocumentError` on bad input (index untouched)."""
        return self.ingest_documents([Upload(source, data, metadata or {}, as_type)])[0]

    def ingest_documents(self, uploads: Sequence[Upload]) -> list[IngestResult]:
        """Ingest several documents: all are validated and parsed before any is written.

        A bad one raises its `DocumentError` (naming it) and nothing is stored.
        """
        plans = [self._plan(u) for u in uploads]
        results = [self._commit(p) for p in plans]
        with self._write_lock:
            self.refresh()
        return results

    def _ingest_one(self, source: str, data: bytes, metadata: dict[str, Any]) -> IngestResult:
        return self._commit(self._plan(Upload(source, data, metadata)))

    def _plan(self, upload: Upload) -> _Plan:
        """Decide what an upload needs: nothing (unchanged), or a parsed, chunked document."""
        digest = content_hash(upload.data, upload.metadata)
        previous = self.store.content_hash(upload.source)
        if previous == digest:
            return _Plan(upload.source, previous, None)
        prepared = prepare(
            upload.source,
            upload.data,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            max_bytes=self.settings.max_file_bytes,
            metadata=upload.metadata,
            as_type=upload.as_type,
        )
        return _Plan(upload.source, previous, prepared)

    def _commit(self, plan: _Plan) -> IngestResult:
        """Embed (outside the write lock: searches go on) and store one planned document."""
        doc_id = doc_id_for(plan.source)
        if plan.prepared is None:
            chunks = self.store.document(doc_id).chunks
            return IngestResult(
                source=plan.source, status="unchanged", doc_id=doc_id, chunks=chunks
            )
        prepared = plan.prepared
        vectors = self._embed_chunks(prepared)
        with self._write_lock:
            self.store.put_document(
                source=plan.source,
                title=prepared.document.title,
                text=prepared.document.text,
                content_hash=prepared.content_hash,
                encoding=prepared.encoding,
                metadata=prepared.document.metadata,
                chunks=prepared.chunks,
                vectors=vectors,
            )
        return IngestResult(
            source=plan.source,
            status="updated" if plan.previous else "added",
            doc_id=doc_id,
            chunks=len(prepared.chunks),
        )

    def _embed_chunks(self, prepared: Prepared) -> list[ChunkVectors]:
        """Chunk and sentence vectors, reusing stored ones for chunks with the same text hash."""
        hashes = [chunk_hash(c.text) for c in prepared.chunks]
        cached = self.store.cached_vectors(hashes, self.embedder.dim)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        spans = {i: sentence_spans(prepared.chunks[i].text) for i in todo}
        texts = [prepared.chunks[i].text for i in todo]
        sentences = [prepared.chunks[i].text[a:b] for i in todo for a, b in spans[i]]
        # One embedding call for chunks and sentences: batches stay full.
        vectors = self.embedder.embed(texts + sentences, "passage", self.settings.embed_batch_size)
        fresh: dict[int, ChunkVectors] = {}
        k = len(texts)
        for j, i in enumerate(todo):
            n = len(spans[i])
            fresh[i] = ChunkVectors(vectors[j], spans[i], vectors[k : k + n])
            k += n
        return [cached[h] if h in cached else fresh[i] for i, h in enumerate(hashes)]

    def delete(self, doc_id: str) -> None:
        """Remove a document; `NotFound` if absent."""
        with self._write_lock:
            self.store.delete_document(doc_id)
            self.refresh()

    def documents(self) -> list[DocumentInfo]:
        """All stored documents."""
        return self.store.documents()

    def document(self, doc_id: str) -> DocumentInfo:
        """One stored document; `NotFound` if absent."""
        return self.store.document(doc_id)

    # --- reads ------------------------------------------------------------------------------
    def _check_query(self, text: str, top_k: int | None) -> int:
        if not text or not text.strip():
            raise InputError("the query is empty")
        if len(text) > self.settings.max_query_chars:
            raise InputError(
                f"the query is {len(text)} characters; the limit is {self.settings.max_query_chars}"
            )
        k = self.settings.top_k if top_k is None else top_k
        if not 1 <= k <= self.settings.max_top_k:
            raise InputError(f"top_k must be between 1 and {self.settings.max_top_k}, not {k}")
        return k

    @staticmethod
    def _filter_rows(
        snap: Snapshot,
        sources: Iterable[str] | None,
        doc_ids: Iterable[str] | None,
        where: MetadataFilter | None = None,
    ) -> np.ndarray | None:
        """Rows a filtered search may return (None: all). Named sources and doc_ids add up; a
        metadata filter then keeps those of their documents (or of all) that match it."""
        if not sources and not doc_ids and where is None:
            return None
        wanted: list[str] = []
        if sources:
            by_source = {src: d for d, (src, _) in snap.sources.items()}
            wanted += [by_source[s] for s in sources if s in by_source]
        if doc_ids:
            wanted += list(doc_ids)
        if not sources and not doc_ids:
            wanted = list(snap.rows_by_doc)
        if where is not None:
            wanted = [d for d in wanted if where.matches(snap.metadata.get(d, {}))]
        return snap.rows_for(list(dict.fromkeys(wanted)))  # a document named twice counts once

    def search(
        self,
        query: str,
        top_k: int | None = None,
        *,
        sources: Iterable[str] | None = None,
        doc_ids: Iterable[str] | None = None,
        where: MetadataFilter | None = None,
    ) -> SearchResult:
        """Hybrid search; `sources`/`doc_ids` restrict it to those documents, `where` to the
        documents whose metadata matches."""
        k = self._check_query(query, top_k)
        snap = self._current()
        analysed = analyse(query.strip(), self._queries, snap.lexical)
        rows = self._filter_rows(snap, sources, doc_ids, where)
        reranker = load_reranker() if self.settings.rerank else None
        depth = 2 * k  # touching chunks merge into one passage: rank enough to still fill k
        while True:
            hits = retrieve(
                snap,
                analysed,
                depth,
                candidates=self.settings.candidates,
                rows=rows,
                reranker=reranker,
            )
            merged = merge_hits(snap, hits, k)
            if len(merged) >= k or len(hits) < depth:
                break
            depth *= 2
        return SearchResult(
            query=query,
            passages=tuple(self._passage(snap, m) for m in merged),
            hits=tuple(m.hit for m in merged),
            analysed=analysed,
            idf=snap.lexical.idf(analysed.terms),
            generation=snap.generation,
        )

    @staticmethod
    def _passage(snap: Snapshot, m: Merged) -> Passage:
        doc_id = snap.doc_ids[m.hit.row]
        source, title = snap.sources.get(doc_id, ("", ""))
        pages = snap.pages.get(doc_id, ())
        return Passage(
            chunk_id=snap.chunk_id(m.hit.row),
            doc_id=doc_id,
            source=source,
            title=title,
            text=m.text,
            score=round(m.hit.score, 6),
            start=m.start,
            end=m.end,
            metadata=snap.metadata.get(doc_id, {}),
            page=page_at(pages, m.start),
            page_spans=pages_within(pages, m.start, m.end),
        )

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: str = "auto",
        sources: Iterable[str] | None = None,
        doc_ids: Iterable[str] | None = None,
        where: MetadataFilter | None = None,
    ) -> Answer:
        """A cited answer: extractive, or from the LLM (`mode` auto/llm) with checked citations.

        Below the relevance floor the answer is "not found" and the LLM is not called; if the LLM
        fails in any way the answer is extractive, with a warning saying why.
        """
        events = list(
            self.ask_stream(
                question, top_k, mode=mode, sources=sources, doc_ids=doc_ids, where=where
            )
        )
        final = events[-1]
        assert isinstance(final, FinalEvent)
        return final.answer

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: str = "auto",
        sources: Iterable[str] | None = None,
        doc_ids: Iterable[str] | None = None,
        where: MetadataFilter | None = None,
    ) -> Iterator[AnswerEvent]:
        """`ask`, as events: passages, answer text deltas, then the final answer."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not '{mode}'")
        result = self.search(question, top_k, sources=sources, doc_ids=doc_ids, where=where)
        extractive = self._compose(result)
        if (
            mode == "extractive"
            or not extractive.answerable
            or (self.llm is None and mode == "auto")
        ):
            yield from replay(extractive)
            return
        if self.llm is None:
            yield from replay(
                _warn(
                    extractive,
                    "llm_not_configured",
                    "no LLM is configured (RAG_LLM_BASE_URL); answered extractively",
                )
            )
            return
        yield from generate(
            self.llm, extractive, self.embedder, drop_unsupported=self.settings.drop_unsupported
        )

    def _compose(self, result: SearchResult) -> Answer:
        return compose_answer(
            result.analysed,
            result.passages,
            result.hits,
            idf=result.idf,
            floor=self.settings.relevance_floor,
        )


def open_engine(settings: Settings) -> Engine:
    """Open an engine, turning low-level failures into `RagError`s with a clear message."""
    try:
        return Engine(settings)
    except RagError:
        raise
    except OSError as exc:
        raise RagError(f"cannot open the index at {settings.index_dir}: {exc}") from exc
