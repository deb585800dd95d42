"""The engine: the one object the CLI and the HTTP app call, a thin facade.

It opens the store and the embedder and hands the work to the parts that do it: writes and the
index state to `rag.write.indexer.Indexer` (plan, embed, commit, apply to segments, merge),
searches to `rag.retrieve.search`, answers to `rag.answer`. Writes are serialised by the
indexer's lock and end by swapping in a new snapshot; reads take the current snapshot once and
use only it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.answer.abstain import caveat, load_model
from rag.answer.constraints import check_answer, question_places
from rag.answer.credits import with_closing_credit
from rag.answer.extractive import compose_answer
from rag.answer.gazetteer import Gazetteer
from rag.answer.generate import generate
from rag.answer.generate import warn as _warn
from rag.answer.nonquestion import is_non_question, non_question_answer
from rag.answer.stream import AnswerEvent, FinalEvent, replay
from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.batcher import QueryBatcher
from rag.embed.passages import vector_recipe
from rag.embed.registry import embedder_name, get_embedder
from rag.errors import ConfigError, EmbedderMismatch, IndexError_, InputError, NotFound, RagError
from rag.index.persist import sweep_temp_files
from rag.index.snapshot import Snapshot
from rag.index.tokenize import warm_up
from rag.ingest.loaders import check_format_dependencies
from rag.ingest.sandbox import Sandbox, SandboxLimits
from rag.llm.base import LLM
from rag.llm.registry import get_llm
from rag.retrieve.crosslingual import glossary
from rag.retrieve.filter import MetadataFilter
from rag.retrieve.pg import pg_search
from rag.retrieve.pg import warm as pg_warm
from rag.retrieve.search import SearchResult, check_query, search
from rag.store.postgres import PgStore, is_postgres_url, redacted
from rag.store.sqlite import Store
from rag.types import Answer, DocumentInfo, IngestResult
from rag.write.indexer import RECHECK_SECONDS, DatabaseIndexer, Indexer, Upload

__all__ = ["RECHECK_SECONDS", "Engine", "SearchResult", "Upload", "open_engine"]

log = logging.getLogger(__name__)

MODES = ("auto", "extractive", "llm")


class Engine:
    """Ingest, search and answer over one index directory."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        llm: LLM | None = None,
        *,
        background_merge: bool = True,
    ) -> None:
        """Check every format's packages are installed, open the store, refuse a mismatched
        embedder before loading it, load the snapshot (`background_merge`: start the thread
        that merges small segments; without it, `merge` runs them)."""
        check_format_dependencies()  # a missing parser package: a clear error now, not a 500 later
        self.settings = settings
        # PostgreSQL (RAG_STORE_URL): documents, vectors and statistics in the database, searched
        # there; this process keeps no index files (a stateless replica).
        self.in_database = is_postgres_url(settings.store_url)
        if settings.store_url and not self.in_database:
            raise ConfigError(
                f"RAG_STORE_URL must be a postgresql:// URL (or empty), not '{settings.store_url}'"
            )
        if not self.in_database:
            sweep_temp_files(settings.index_dir)  # before anything needs room: can be large
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
        self.store: Store | PgStore = (
            PgStore(settings.store_url) if self.in_database else Store(settings.db_path)
        )
        try:  # refuse a mismatched embedder before spending time loading it
            self.store.check_embedder(
                embedder.name if embedder is not None else embedder_name(settings.embedder)
            )
        except EmbedderMismatch:
            self.store.close()
            raise
        self.embedder = embedder if embedder is not None else get_embedder(settings.embedder)
        # An index keeps the recipe its vectors were made with (an index made before chunk
        # vectors were composed keeps embedding chunk and sentences apart): never two in one.
        self.recipe = self.store.vector_recipe() or vector_recipe(self.embedder)
        self.store.bind_embedder(self.embedder.name, self.embedder.dim, self.recipe)
        warm_up()
        # The cross-lingual glossary takes ~2 s to parse: do it now, off the request path.
        threading.Thread(target=glossary, name="glossary", daemon=True).start()
        self._queries = QueryBatcher(self.embedder)
        self.llm = llm if llm is not None else get_llm(settings)
        try:
            if self.in_database:
                assert isinstance(self.store, PgStore)
                self.indexer: Indexer = DatabaseIndexer(
                    settings, self.store, self.embedder, self._sandbox, recipe=self.recipe
                )
                # the vocabulary's pinyin for English questions, off the request path
                threading.Thread(
                    target=pg_warm, args=(self.store,), name="pinyin", daemon=True
                ).start()
            else:
                self.indexer = Indexer(
                    settings,
                    self.store,
                    self.embedder,
                    self._sandbox,
                    recipe=self.recipe,
                    background_merge=background_merge,
                )
        except BaseException:
            self._queries.close()
            self.store.close()
            raise

    @property
    def warming(self) -> bool:
        """Whether the loaded index's search helpers are still being built in the background."""
        return self.indexer.warming

    def warm_parser(self) -> None:
        """Start a parse worker in the background (it loads the parsers, ~2 s in its own
        process), so that the first upload does not wait for it; nothing without the sandbox."""
        if self._sandbox is not None:
            threading.Thread(target=self._sandbox.start, name="parse-warm-up", daemon=True).start()

    def close(self) -> None:
        """Stop the merge thread, the query batcher and the idle parse workers; release the
        database connection and the LLM's connections (an LLM handed in is owned from then on)."""
        self.indexer.close()
        self._queries.close()
        if self.llm is not None:
            self.llm.close()
        if self._sandbox is not None:
            self._sandbox.close()
        self.store.close()

    # --- state ------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The current consistent index state."""
        return self.indexer.snapshot

    def refresh(self) -> None:
        """Pick up writes made by another process now (apply their changes, or rebuild)."""
        self.indexer.locked_refresh()

    def merge(self) -> int:
        """Run the segment merges the policy asks for now, synchronously; returns how many."""
        return self.indexer.merge_all()

    def counts(self) -> tuple[int, int, int]:
        """`(documents, chunks, generation)` searched now (readiness, metrics): the snapshot's,
        or the database's."""
        if self.in_database:
            m = self.store.manifest()
            return self.store.count_documents(), self.store.count_chunks(), m.generation
        snap = self.indexer.snapshot
        return len(snap.sources), len(snap), snap.generation

    def info(self) -> dict[str, Any]:
        """Counts, embedder and paths, for `rag info` and readiness checks."""
        m = self.store.manifest()
        snap = self.indexer.snapshot
        return {
            "store": redacted(self.settings.store_url) if self.in_database else "local",
            "index_dir": str(self.settings.index_dir),
            "embedder": m.embedder,
            "dim": m.dim,
            "schema_version": m.schema_version,
            "generation": m.generation,
            "documents": self.store.count_documents(),
            "chunks": self.store.count_chunks(),
            "segments": len(snap.segments.entries),
            "rebuilt_on_load": list(snap.rebuilt),
        }

    # --- writes -----------------------------------------------------------------------------
    def ingest_paths(
        self,
        paths: Sequence[Path],
        progress: Callable[[IngestResult], None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[IngestResult]:
        """Ingest files and folders (see `Indexer.ingest_paths`). Bad files fail alone."""
        return self.indexer.ingest_paths(paths, progress, metadata)

    @staticmethod
    def expand(paths: Sequence[Path]) -> list[tuple[Path, str]]:
        """`(file, source)` pairs: a folder contributes its supported files, named relative to it."""
        return Indexer.expand(paths)

    def ingest_bytes(
        self,
        source: str,
        data: bytes,
        metadata: dict[str, Any] | None = None,
        *,
        as_type: str | None = None,
    ) -> IngestResult:
        """Ingest one document given as bytes; raises `DocumentError` on bad input (index untouched)."""
        return self.indexer.ingest_bytes(source, data, metadata, as_type=as_type)

    def ingest_documents(
        self, uploads: Sequence[Upload], *, cancelled: Callable[[], bool] | None = None
    ) -> list[IngestResult]:
        """Ingest several documents atomically (see `Indexer.ingest_documents`)."""
        return self.indexer.ingest_documents(uploads, cancelled=cancelled)

    def delete(self, doc_id: str) -> None:
        """Remove a document; `NotFound` if absent."""
        self.indexer.delete(doc_id)

    def documents(self) -> list[DocumentInfo]:
        """All stored documents."""
        return self.store.documents()

    def document(self, doc_id: str) -> DocumentInfo:
        """One stored document; `NotFound` if absent."""
        return self.store.document(doc_id)

    def document_text(self, doc_id: str) -> str:
        """A document's stored text, which passage and citation offsets index; `NotFound`."""
        return self.store.document_text(doc_id)

    # --- reads ------------------------------------------------------------------------------
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
        if self.in_database:
            assert isinstance(self.store, PgStore)
            return pg_search(
                self.settings,
                self.store,
                self._queries,
                self.embedder.dim,
                query,
                top_k,
                sources=sources,
                doc_ids=doc_ids,
                where=where,
            )
        return search(
            self.settings,
            self.indexer.current(),
            self._queries,
            query,
            top_k,
            sources=sources,
            doc_ids=doc_ids,
            where=where,
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

        Below the relevance floor the extractive answer is "not found"; the LLM is then called
        only when the confidence lies in the uncertain band (at or above the answerability
        model's `llm_floor`), where the prompt's not-found rule lets it refuse. If the LLM fails
        in any way the answer is extractive, with a warning saying why.
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
        """`ask`, as events: passages, answer text deltas, then the final answer.

        A non-question (a greeting, a lone character, punctuation or emoji) gets a fixed reply and
        no search; a final answer whose quotes contradict what the question states (another year,
        place, unit…) gets a `constraint_mismatch` warning (`rag.answer.constraints`), and one
        given with a confidence below the answerability model's `confident_floor` a
        `low_confidence` warning (`rag.answer.abstain.caveat`).
        """
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not '{mode}'")
        check_query(self.settings, question, top_k)  # bad input is an error, greeting or not
        if is_non_question(question):
            yield from replay(non_question_answer(question))
            return
        places = self.places(question)
        for event in self._answer_events(question, top_k, mode, sources, doc_ids, where, places):
            # the checks read the final answer's own quotes and confidence: extractive and LLM
            # answers alike
            if isinstance(event, FinalEvent):
                yield FinalEvent(check_answer(caveat(event.answer), places))
            else:
                yield event

    def _answer_events(
        self,
        question: str,
        top_k: int | None,
        mode: str,
        sources: Iterable[str] | None,
        doc_ids: Iterable[str] | None,
        where: MetadataFilter | None,
        places: Gazetteer,
    ) -> Iterator[AnswerEvent]:
        result = self.search(question, top_k, sources=sources, doc_ids=doc_ids, where=where)
        extractive = self._compose(result, places)
        if (
            mode == "extractive"
            or not (extractive.answerable or self._uncertain(extractive))
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

    def _uncertain(self, extractive: Answer) -> bool:
        """A refusal whose confidence lies in the uncertain band (at or above the fitted
        `llm_floor`): with an LLM configured, it decides, with the prompt's not-found rule,
        instead of being refused before it (a false refusal must not block the LLM)."""
        return (
            self.llm is not None
            and bool(extractive.passages)
            and extractive.confidence >= load_model().llm_floor
        )

    def places(self, question: str) -> Gazetteer:
        """What the whole collection (not only the passages found) and the question say lies
        within the places the question names (`rag.answer.gazetteer`): the answer's checks read
        it, so a quote on 张江 answers a question on 浦东 where a document says 张江 is there."""
        store = self.store
        lookup = (
            store.texts_with if isinstance(store, PgStore) else self.indexer.current().texts_with
        )
        return question_places(question, lookup)

    def _compose(self, result: SearchResult, places: Gazetteer) -> Answer:
        answer = compose_answer(
            result.analysed,
            result.passages,
            result.hits,
            idf=result.idf,
            floor=self.settings.relevance_floor,
            places=places,
        )
        # who wrote it: the article's closing credit may lie chunks below the passages found
        return with_closing_credit(answer, self._document_text, self.store.chunk_at)

    def _document_text(self, doc_id: str) -> str:
        try:
            return self.store.document_text(doc_id)
        except NotFound:  # deleted since the search: nothing to read on in
            return ""


def open_engine(settings: Settings, *, background_merge: bool = True) -> Engine:
    """Open an engine, turning low-level failures into `RagError`s with a clear message."""
    try:
        return Engine(settings, background_merge=background_merge)
    except RagError:
        raise
    except OSError as exc:
        raise RagError(f"cannot open the index at {settings.index_dir}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # what the store did not name more precisely
        raise IndexError_(f"cannot open the index at {settings.index_dir}: {exc}") from exc
