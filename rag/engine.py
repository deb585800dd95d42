"""The engine: one object that owns the store, the embedder and the current index snapshot.

It is what the CLI and the HTTP app call. Writes are serialised by a lock and end by swapping in a
fresh snapshot; reads take the current snapshot once and use only it.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
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
from rag.embed.passages import chunk_vectors, vector_recipe
from rag.embed.registry import embedder_name, get_embedder
from rag.errors import (
    Cancelled,
    DocumentTooLarge,
    EmbedderMismatch,
    IndexError_,
    InputError,
    NotFound,
    RagError,
)
from rag.index.persist import sweep_temp_files
from rag.index.tokenize import warm_up
from rag.ingest.batch import FileJob, Stat, load_files, stat_of
from rag.ingest.dedup import Fingerprints, Match, from_bytes, signature, to_bytes
from rag.ingest.loaders import check_format_dependencies, supported_suffixes
from rag.ingest.metadata import check_user_metadata
from rag.ingest.pages import page_at, pages_within
from rag.ingest.pipeline import Prepared, content_hash, prepare
from rag.ingest.sandbox import Sandbox, SandboxLimits
from rag.llm.base import LLM
from rag.llm.registry import get_llm
from rag.retrieve.collapse import Group, collapse
from rag.retrieve.crosslingual import glossary
from rag.retrieve.filter import MetadataFilter
from rag.retrieve.hybrid import Hit, Query, analyse, retrieve
from rag.retrieve.merge import Merged, merge_hits
from rag.retrieve.rerank import load_reranker
from rag.retrieve.snapshot import Snapshot, load_snapshot
from rag.store.sqlite import ChunkVectors, Store, Stored, chunk_hash, doc_id_for
from rag.types import Answer, DocumentInfo, IngestResult, Passage

log = logging.getLogger(__name__)

MODES = ("auto", "extractive", "llm")
RECHECK_SECONDS = 1.0  # how stale a reader may be with respect to writes by other processes
GROUP_CHUNKS = 64  # a folder ingest embeds changed files in groups of about this many chunks
EMBED_SLICE_BATCHES = 8  # an upload's texts are embedded this many batches at a time, so that a
# cancelled upload stops within one slice (slices of whole batches: the same batches, same vectors)


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
    file_stat: tuple[int, int] | None = None  # (size, mtime_ns) of the file read, if trusted


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
        """Check every format's packages are installed, open the store, refuse a mismatched
        embedder before loading it, load the snapshot."""
        check_format_dependencies()  # a missing parser package: a clear error now, not a 500 later
        self.settings = settings
        sweep_temp_files(settings.index_dir)  # before anything needs room: leftovers can be large
        self._sandbox = (
            Sandbox(
                SandboxLimits(
                    settings.parse_memory_mb,
                    settings.parse_timeout,
                    max(1, settings.ingest_workers),
                )
            )
            if settings.parse_sandbox
            else None
        )
        self.store = Store(settings.db_path)
        try:  # refuse a mismatched embedder before spending time loading it
            self.store.check_embedder(
                embedder.name if embedder is not None else embedder_name(settings.embedder)
            )
        except EmbedderMismatch:
            self.store.close()
            raise
        self.embedder = embedder if embedder is not None else get_embedder(settings.embedder)
        try:  # vectors made another way (`rag/embed/passages.py`) are refused too
            self.store.bind_embedder(
                self.embedder.name, self.embedder.dim, vector_recipe(self.embedder)
            )
        except EmbedderMismatch:
            self.store.close()
            raise
        warm_up()
        # The cross-lingual glossary takes ~2 s to parse: do it now, off the request path.
        threading.Thread(target=glossary, name="glossary", daemon=True).start()
        self._queries = QueryBatcher(self.embedder)
        self.llm = llm if llm is not None else get_llm(settings)
        self._write_lock = threading.Lock()
        self._fingerprint_index: Fingerprints | None = None  # loaded on the first write
        self._fingerprints_generation = -1
        self._snapshot = self._load_snapshot()
        self._checked_at = time.monotonic()

    def warm_parser(self) -> None:
        """Start a parse worker in the background (it loads the parsers, ~2 s in its own
        process), so that the first upload does not wait for it; nothing without the sandbox."""
        if self._sandbox is not None:
            threading.Thread(target=self._sandbox.start, name="parse-warm-up", daemon=True).start()

    def close(self) -> None:
        """Stop the query batcher and the idle parse workers; release the database connection."""
        self._queries.close()
        if self._sandbox is not None:
            self._sandbox.close()
        self.store.close()

    # --- state ------------------------------------------------------------------------------
    def _load_snapshot(self) -> Snapshot:
        snap = load_snapshot(
            self.store, self.settings.index_dir, self.embedder.name, self.embedder.dim
        )
        # The romanised vocabulary for English questions is built now, once per snapshot and off
        # the request path, not by the first English readers of every new snapshot.
        threading.Thread(target=snap.lexical.warm_pinyin, name="pinyin", daemon=True).start()
        return snap

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

        `metadata` is the user's, given to every file. A file whose size and mtime are the ones
        stored for its source is unchanged without being read; any other is read and compared by
        content hash. Changed files are parsed (in sandbox processes, `ingest_workers` at once,
        unless `parse_sandbox` is off) and embedded in groups across files, so the embedder's
        batches stay full. Results are in `expand` order; `progress` sees each one as
        it is decided. Missing paths (`NotFound`) and unusable metadata (`InputError`) are refused
        before anything is written.
        """
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise NotFound(f"no such file or directory: {', '.join(missing)}")
        check_user_metadata(metadata)
        files = self.expand(paths)
        stored = self.store.file_states()
        results: list[IngestResult | None] = [None] * len(files)

        def report(i: int, result: IngestResult) -> None:
            results[i] = result
            if progress:
                progress(result)

        jobs: list[FileJob] = []
        at: list[tuple[int, Stat]] = []  # position and stat of each job
        for i, (path, source) in enumerate(files):
            state = stored.get(source)
            try:
                stat = stat_of(path)
            except OSError as exc:
                report(i, _failed(source, f"{path}: cannot be read ({exc.strerror or exc})"))
                continue
            # with user metadata given, the file is read: the metadata may be what changed
            if not metadata and state is not None and (state.size, state.mtime_ns) == stat.key:
                report(i, _unchanged(source, state.chunks))  # the fast path: not even opened
                continue
            jobs.append(
                FileJob(
                    path,
                    source,
                    state.content_hash if state else None,
                    self.settings.chunk_size,
                    self.settings.chunk_overlap,
                    self.settings.max_file_bytes,
                    dict(metadata or {}),
                    self.settings.parse_limits,
                )
            )
            at.append((i, stat))
        group: list[tuple[int, _Plan]] = []
        for (i, stat), loaded in zip(
            at, load_files(jobs, self.settings.ingest_workers, self._sandbox), strict=True
        ):
            source = loaded.job.source
            trusted = stat.key if stat.trusted else None
            if loaded.error:
                report(i, _failed(source, loaded.error))
            elif loaded.prepared is None:  # same content (touched, copied, checked out again)
                self.store.set_file_stat(source, trusted)
                report(i, _unchanged(source, stored[source].chunks))
            else:
                group.append((i, _Plan(source, loaded.job.previous, loaded.prepared, trusted)))
                if sum(len(p.prepared.chunks) for _, p in group if p.prepared) >= GROUP_CHUNKS:
                    self._commit_reporting(group, report)
                    group = []
        self._commit_reporting(group, report)
        with self._write_lock:
            self.refresh()
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _commit_reporting(
        self, group: list[tuple[int, _Plan]], report: Callable[[int, IngestResult], None]
    ) -> None:
        """Commit a group of planned files and report each result."""
        if group:
            for (i, _), result in zip(
                group, self._commit_group([p for _, p in group]), strict=True
            ):
                report(i, result)

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

    def ingest_documents(
        self, uploads: Sequence[Upload], *, cancelled: Callable[[], bool] | None = None
    ) -> list[IngestResult]:
        """Ingest several documents: all are validated and parsed before any is written.

        A bad one raises its `DocumentError` (naming it) and nothing is stored; so do documents
        holding more than `max_document_chars` characters together (`DocumentTooLarge`: they
        are all held in memory until stored). Documents are parsed in the sandbox unless
        `parse_sandbox` is off. `cancelled` (e.g. "the HTTP client disconnected") is polled
        while they are parsed and embedded; once it returns true, before anything is stored,
        the work stops (a parse process is killed) and `Cancelled` is raised: nothing is stored.
        """
        plans: list[_Plan] = []
        chars = 0
        for upload in uploads:
            plan = self._plan(upload, cancelled)
            plans.append(plan)
            chars += len(plan.prepared.document.text) if plan.prepared else 0
            if chars > self.settings.max_document_chars:
                raise DocumentTooLarge(
                    f"the documents of this request hold more than "
                    f"{self.settings.max_document_chars} characters together "
                    "(RAG_MAX_DOCUMENT_CHARS); send them in several requests"
                )
        results = self._commit_group(plans, cancelled, atomic=True)
        with self._write_lock:
            self.refresh()
        return results

    def _plan(self, upload: Upload, cancelled: Callable[[], bool] | None = None) -> _Plan:
        """Decide what an upload needs: nothing (unchanged), or a parsed, chunked document."""
        digest = content_hash(upload.data, upload.metadata)
        previous = self.store.content_hash(upload.source)
        if previous == digest:
            return _Plan(upload.source, previous, None)
        call = functools.partial(
            prepare,
            upload.source,
            upload.data,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            max_bytes=self.settings.max_file_bytes,
            metadata=upload.metadata,
            as_type=upload.as_type,
            limits=self.settings.parse_limits,
        )
        if self._sandbox is None:
            prepared = call()
        else:
            prepared = self._sandbox.run(upload.source, call, cancelled=cancelled)
        return _Plan(upload.source, previous, prepared)

    def _commit_group(
        self,
        plans: Sequence[_Plan],
        cancelled: Callable[[], bool] | None = None,
        atomic: bool = False,
    ) -> list[IngestResult]:
        """Embed the planned documents together (outside the write lock: searches go on), then
        store them, marking near-duplicates of stored documents: each in its own transaction, or
        (`atomic`, an upload) all in one, so that a write failing half-way (a full disk) leaves
        none stored. Added, updated or unchanged is what the store found at commit time.
        `Cancelled` when `cancelled()` turns true before the first is stored."""
        todo = [p.prepared for p in plans if p.prepared is not None]
        vectors = iter(self._embed_many(todo, cancelled))
        if cancelled is not None and cancelled():
            raise Cancelled("ingestion cancelled before anything was stored")
        results: list[IngestResult] = []
        with self._write_lock, self._writing(atomic):
            for plan in plans:
                doc_id = doc_id_for(plan.source)
                if plan.prepared is None:
                    chunks = self.store.document(doc_id).chunks
                    results.append(_unchanged(plan.source, chunks))
                    continue
                stored, match = self._store_document(plan, plan.prepared, next(vectors))
                results.append(
                    IngestResult(
                        source=plan.source,
                        status=stored.status,
                        doc_id=doc_id,
                        chunks=stored.chunks,
                        duplicate_of=match.source if match else "",
                    )
                )
        return results

    @contextmanager
    def _writing(self, atomic: bool) -> Iterator[None]:
        """Around the writes of `_commit_group`: one store transaction when `atomic`; after a
        failure, the signatures are reloaded (they may name documents that were rolled back)."""
        try:
            with self.store.batch() if atomic else nullcontext():
                yield
        except BaseException:
            self._fingerprint_index = None
            raise

    def _store_document(
        self, plan: _Plan, prepared: Prepared, vectors: list[ChunkVectors]
    ) -> tuple[Stored, Match | None]:
        """Store one document (caller holds the write lock); returns what the store did, and the
        stored document it nearly duplicates, if any, which its metadata then names as
        `duplicate_of` (None when the same content was stored already)."""
        doc_id = doc_id_for(plan.source)
        fingerprints = self._fingerprints()
        sig = from_bytes(prepared.fingerprint)
        match = fingerprints.find(sig, exclude=doc_id) if sig is not None else None
        metadata = dict(prepared.document.metadata)
        if match is not None:
            metadata["duplicate_of"] = match.source
        before = self._fingerprints_generation
        stored = self.store.put_document(
            source=plan.source,
            title=prepared.document.title,
            text=prepared.document.text,
            content_hash=prepared.content_hash,
            encoding=prepared.encoding,
            metadata=metadata,
            chunks=prepared.chunks,
            vectors=vectors,
            fingerprint=prepared.fingerprint,
            file_stat=plan.file_stat,
        )
        if stored.status == "unchanged":  # stored meanwhile by another upload: nothing written
            return stored, None
        if sig is not None:
            fingerprints.add(doc_id, plan.source, sig, original=match is None)
        # Still current only if no other process wrote in between (then: reload next time).
        after = self.store.generation()
        self._fingerprints_generation = after if after == before + 1 else -1
        return stored, match

    def _fingerprints(self) -> Fingerprints:
        """Signatures of the stored documents (caller holds the write lock), loaded once and kept
        while the store's generation is the one they were loaded at. Documents stored before
        signatures existed get theirs computed from the stored text, and saved."""
        generation = self.store.generation()
        if self._fingerprint_index is None or self._fingerprints_generation != generation:
            index = Fingerprints()
            missing: list[tuple[str, bytes]] = []
            for doc_id, source, blob, original in self.store.fingerprints():
                sig = from_bytes(blob)
                if sig is None:
                    sig = signature(self.store.document_text(doc_id))
                    missing.append((doc_id, to_bytes(sig)))
                index.add(doc_id, source, sig, original=original)
            if missing:
                log.info("computed near-duplicate signatures of %d documents", len(missing))
                self.store.set_fingerprints(missing)
            self._fingerprint_index = index
            self._fingerprints_generation = generation
        return self._fingerprint_index

    def _embed_many(
        self, prepared: Sequence[Prepared], cancelled: Callable[[], bool] | None = None
    ) -> list[list[ChunkVectors]]:
        """Chunk and sentence vectors of several documents, each text embedded once
        (`rag/embed/passages.py`).

        Chunks whose text hash is stored reuse their vectors; a text that occurs several times
        (two copies of an article) is embedded once. With `cancelled`, the texts are embedded a
        slice of batches at a time and `Cancelled` is raised between slices once it returns true.
        """
        hashes = [[chunk_hash(c.text) for c in p.chunks] for p in prepared]
        cached = self.store.cached_vectors([h for hs in hashes for h in hs], self.embedder.dim)
        texts: dict[str, str] = {}  # hash → text, first occurrence, not cached
        for p, hs in zip(prepared, hashes, strict=True):
            for c, h in zip(p.chunks, hs, strict=True):
                if h not in cached:
                    texts.setdefault(h, c.text)

        def between() -> None:
            if cancelled is not None and cancelled():
                raise Cancelled("ingestion cancelled before anything was stored")

        batch = self.settings.embed_batch_size
        vectors = chunk_vectors(
            self.embedder,
            list(texts.values()),
            batch,
            batch * EMBED_SLICE_BATCHES if cancelled is not None else None,
            between,
        )
        cached.update(zip(texts, vectors, strict=True))
        return [[cached[h] for h in hs] for hs in hashes]

    def delete(self, doc_id: str) -> None:
        """Remove a document; `NotFound` if absent."""
        with self._write_lock:
            self.store.delete_document(doc_id)
            # the store re-pointed the deleted original's copies: reload the signatures with them
            self._fingerprint_index = None
            self.refresh()

    def documents(self) -> list[DocumentInfo]:
        """All stored documents."""
        return self.store.documents()

    def document(self, doc_id: str) -> DocumentInfo:
        """One stored document; `NotFound` if absent."""
        return self.store.document(doc_id)

    # --- reads ------------------------------------------------------------------------------
    def _check_query(self, text: str, top_k: int | None) -> int:
        """The one check of every query and question (search, ask, chat, CLI): `InputError` for
        text the retrievers cannot take; returns the effective top_k (RAG_TOP_K when None)."""
        if not text or not text.strip():
            raise InputError("the query is empty")
        if len(text) > self.settings.max_query_chars:
            raise InputError(
                f"the query is {len(text)} characters; the limit is {self.settings.max_query_chars}"
            )
        if "\x00" in text:
            raise InputError("the query contains a NUL character")
        try:  # a lone surrogate (JSON "\ud800") is no text: the embedder's tokenizer raises on it
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"the query is not valid Unicode: lone surrogate at character {exc.start}"
            ) from None
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
            merged, groups = _distinct(snap, hits, k)
            if len(groups) >= k or len(hits) < depth:
                break
            depth *= 2
        return SearchResult(
            query=query,
            passages=tuple(self._passage(snap, merged, g) for g in groups),
            hits=tuple(merged[g.kept].hit for g in groups),
            analysed=analysed,
            idf=snap.lexical.idf(analysed.terms),
            generation=snap.generation,
        )

    @staticmethod
    def _passage(snap: Snapshot, merged: Sequence[Merged], group: Group) -> Passage:
        m = merged[group.kept]
        doc_id = snap.doc_ids[m.hit.row]
        source, title = snap.sources.get(doc_id, ("", ""))
        pages = snap.pages.get(doc_id, ())
        others = (
            snap.sources.get(snap.doc_ids[merged[i].hit.row], ("", ""))[0] for i in group.absorbed
        )
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
            also_in=tuple(dict.fromkeys(o for o in others if o and o != source)),
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


def _distinct(snap: Snapshot, hits: Sequence[Hit], k: int) -> tuple[list[Merged], list[Group]]:
    """Merged passages of `hits` and up to `k` groups of them, near-identical texts (copies of one
    article) collapsed into the best-ranked one. Merges deeper while collapsing left fewer than `k`
    and the hits hold more; without duplicates this is exactly `merge_hits(snap, hits, k)`."""
    limit = k
    while True:
        merged = merge_hits(snap, hits, limit)
        groups = collapse([m.text for m in merged], k)
        if len(groups) >= k or len(merged) < limit:
            return merged, groups
        limit += k - len(groups)


def _unchanged(source: str, chunks: int) -> IngestResult:
    return IngestResult(source=source, status="unchanged", doc_id=doc_id_for(source), chunks=chunks)


def _failed(source: str, reason: str) -> IngestResult:
    return IngestResult(source=source, status="failed", reason=reason)


def open_engine(settings: Settings) -> Engine:
    """Open an engine, turning low-level failures into `RagError`s with a clear message."""
    try:
        return Engine(settings)
    except RagError:
        raise
    except OSError as exc:
        raise RagError(f"cannot open the index at {settings.index_dir}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # what the store did not name more precisely
        raise IndexError_(f"cannot open the index at {settings.index_dir}: {exc}") from exc
