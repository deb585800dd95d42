"""Search run in PostgreSQL (`RAG_STORE_URL`): no segment files, one read transaction.

The database finds the candidates — the top-`candidates` chunks by cosine through pgvector's
HNSW index, and the top-`candidates` by BM25 computed in SQL with the exact statistics kept in
its tables (`rag.store.postgres.PgView`) — and the pool's rows (texts, tokens, chunk and
sentence vectors) are read in the same REPEATABLE READ transaction. They are then ranked by the
very code that ranks a local search (`rag.retrieve.search.ranked`) over a snapshot holding only
the pool, scored with the collection's statistics (`SegmentSet.pooled` + `LookupStats`): a chunk
gets the same BM25 score, the same blended dense score, the same fusion, reranking, merging and
collapsing as in the local backend. The median a hit's `gap` is measured against comes from a
fixed sample of stored chunks (the smallest stored random keys), whose vectors a process keeps
between searches.

An English question over Chinese text names Chinese words by pinyin: each process romanises the
database's vocabulary once, then only the terms new since it last looked (`rag_terms.id`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from rag.config import Settings
from rag.index.arrays import csr_pointer
from rag.index.bm25 import K1, B, LookupStats, TermLookup
from rag.index.segments import SegmentSet
from rag.index.snapshot import MEDIAN_SAMPLE, DenseSample, Snapshot, _doc_maps, segment_of
from rag.retrieve.crosslingual import PinyinIndex
from rag.retrieve.filter import MetadataFilter
from rag.retrieve.hybrid import Query, QueryEncoder, analyse
from rag.retrieve.lexicon import Lexicon, _LiveDocFreq
from rag.retrieve.search import SearchResult, check_query, ranked
from rag.store.postgres import PgStore, PgView, metadata_condition

EF_SEARCH_MIN = 100  # HNSW candidate list: at least this, and twice the candidates asked for
SAMPLE_CACHE_ROWS = 4 * MEDIAN_SAMPLE  # sample vectors a process keeps between searches


class _StatsOnly:
    """What `Lexicon` reads of a segment set when the statistics are a database's."""

    def __init__(self, stats: LookupStats) -> None:
        self.stats = stats
        self.entries = ()


class PgLexicon(Lexicon):
    """`Lexicon` over the database's statistics: IDF and evidence from `rag_terms` and
    `rag_stats`, pinyin from the process's romanised vocabulary."""

    def __init__(
        self, stats: LookupStats, latin_share: float, romanised: _Romanised, view: PgView
    ) -> None:
        """Wrap the view's statistics (no scan: the Latin-script share is kept in `rag_stats`)."""
        self.segments = cast(SegmentSet, _StatsOnly(stats))
        self.doc_freq = _LiveDocFreq(self.segments)
        self.latin_share = latin_share
        self._romanised = romanised
        self._view = view

    def pinyin_terms(self, question: str) -> list[str]:
        """Vocabulary words the question's romanised words read as (terms new since the last
        look are romanised first; their live df is checked by the caller)."""
        self._romanised.catch_up(self._view)
        return self._romanised.terms(question)


@dataclass
class _Romanised:
    """A process's romanised vocabulary of one database, grown by the terms new since."""

    indexes: list[PinyinIndex] = field(default_factory=list)
    last_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self, view: PgView) -> None:
        """Romanise the terms added since the last look (their df is checked later, live)."""
        with self.lock:
            terms, last = view.terms_after(self.last_id)
            if terms:
                self.indexes.append(PinyinIndex(terms))
            self.last_id = last

    def terms(self, question: str) -> list[str]:
        """Words of every romanised batch that the question names."""
        found: list[str] = []
        for index in list(self.indexes):
            found += index.terms(question)
        return found


@dataclass
class _SampleCache:
    """Vectors of sampled chunks, kept between searches (a write changes few of them), and the
    unfiltered sample assembled for the generation it was drawn at."""

    vectors: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    assembled: tuple[int, DenseSample] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_ROMANISED: dict[str, _Romanised] = {}
_SAMPLES: dict[str, _SampleCache] = {}
_CACHES_LOCK = threading.Lock()


def _caches(url: str) -> tuple[_Romanised, _SampleCache]:
    with _CACHES_LOCK:
        return _ROMANISED.setdefault(url, _Romanised()), _SAMPLES.setdefault(url, _SampleCache())


def warm(store: PgStore) -> None:
    """Romanise the database's vocabulary now (off the request path), for English questions."""
    romanised, _ = _caches(store.url)
    with store.read_view() as view:
        romanised.catch_up(view)


def _sample(view: PgView, cache: _SampleCache, docs: list[str] | None, dim: int) -> DenseSample:
    """The fixed sample of the searchable chunks (`PgView.sample_ids`) as a `DenseSample`."""
    if docs is None:
        held = cache.assembled
        if held is not None and held[0] == view.generation:
            return held[1]
    ids = view.sample_ids(MEDIAN_SAMPLE, docs)
    with cache.lock:
        missing = [i for i in ids if i not in cache.vectors]
    fetched = view.vectors(missing, dim) if missing else {}
    with cache.lock:
        if len(cache.vectors) + len(fetched) > SAMPLE_CACHE_ROWS:
            cache.vectors.clear()
        cache.vectors.update(fetched)
        parts = [cache.vectors.get(i) or fetched[i] for i in ids]
    if not parts:
        empty = np.zeros((0, dim), np.float32)
        sample = DenseSample(empty, empty, np.zeros(1, np.int64), np.zeros(0))
    else:
        sample = DenseSample(
            chunk=np.ascontiguousarray(np.stack([c for c, _ in parts])),
            sent=np.ascontiguousarray(np.concatenate([s for _, s in parts])),
            sent_ptr=csr_pointer(np.array([len(s) for _, s in parts], dtype=np.int64)),
            # equal weights: the median of a uniform sample (all rows when there are no more)
            weights=np.ones(len(parts)),
        )
    if docs is None:
        cache.assembled = (view.generation, sample)
    return sample


def pg_search(
    settings: Settings,
    store: PgStore,
    encoder: QueryEncoder,
    dim: int,
    query: str,
    top_k: int | None = None,
    *,
    sources: Iterable[str] | None = None,
    doc_ids: Iterable[str] | None = None,
    where: MetadataFilter | None = None,
) -> SearchResult:
    """Hybrid search of the database, every read in one transaction (see the module
    docstring); `sources`/`doc_ids`/`where` restrict it as `rag.retrieve.search.search` does,
    the filter evaluated in SQL."""
    k = check_query(settings, query, top_k)
    romanised, samples = _caches(store.url)
    with store.read_view() as view:
        n_docs, total_len, mass, latin = view.stats()
        stats = LookupStats(n_docs=n_docs, total_len=total_len, lookup=TermLookup(view.doc_freq))
        lex = PgLexicon(stats, latin / (mass or 1), romanised, view)
        analysed = analyse(query.strip(), encoder, lex)
        condition = metadata_condition(
            sources,
            doc_ids,
            dict(where.equals) if where is not None else None,
            where.date_from if where is not None else None,
            where.date_to if where is not None else None,
        )
        docs = view.allowed_docs(condition)
        snap = _pool_snapshot(view, settings, analysed, stats, docs, samples, dim)
        return ranked(settings, snap, query, analysed, k, None, lex)


def _pool_snapshot(
    view: PgView,
    settings: Settings,
    analysed: Query,
    stats: LookupStats,
    docs: list[str] | None,
    samples: _SampleCache,
    dim: int,
) -> Snapshot:
    """A snapshot of the candidate pool: the database's dense and BM25 top-`candidates` (among
    `docs`' chunks when given), scored with the collection's `stats`."""
    n = settings.candidates
    ids: list[int] = []
    if stats.n_docs and docs != []:
        ids = view.dense_top(analysed.vector, n, docs, max(EF_SEARCH_MIN, 2 * n))
        q = stats.query(analysed.terms)
        weights = dict(zip(q.terms, q.weights.tolist(), strict=True))
        ids += [i for i, _ in view.bm25_top(weights, n, q.avgdl, docs, K1, B)]
    rows = view.rows(sorted(set(ids)), dim)
    segment = segment_of(rows, dim, [])
    sources, metadata, pages = _doc_maps(view.doc_rows(set(rows.doc_ids)))
    return Snapshot(
        generation=view.generation,
        segments=SegmentSet.pooled(segment, stats),
        sources=sources,
        metadata=metadata,
        pages=pages,
        rebuilt=(),
        offsets=np.array([0, segment.n_rows], dtype=np.int64),
        sample=_sample(view, samples, docs, dim) if len(rows) else _empty_sample(dim),
    )


def _empty_sample(dim: int) -> DenseSample:
    empty = np.zeros((0, dim), np.float32)
    return DenseSample(empty, empty, np.zeros(1, np.int64), np.zeros(0))


__all__: Sequence[str] = ("PgLexicon", "pg_search", "warm")
