"""Hybrid retrieval over a `Snapshot`: dense (FAISS, per segment) ∪ lexical (BM25 with
collection-wide statistics) candidates, fused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.index.segments import weighted_median
from rag.index.snapshot import MEDIAN_SAMPLE, DenseSample, Snapshot, sample_rows
from rag.index.tokenize import fold, tokenize
from rag.retrieve.fusion import score_fusion
from rag.retrieve.lexicon import Lexicon, lexicon
from rag.retrieve.rerank import Candidate, Reranker

Masks = list[np.ndarray]  # per segment entry: the rows a filtered search may return

SENTENCE_BLEND = 0.5


@dataclass(frozen=True)
class Hit:
    """One fused result with the signals behind it (used by the answerer and abstention)."""

    row: int
    score: float
    dense: float  # mean of the chunk's cosine and its best sentence's cosine to the query
    gap: float  # dense score above its median over (a fixed sample of) the searched chunks
    lexical: float  # BM25 score
    coverage: float | None  # share of the query's IDF mass (evidence tokens) found in the chunk
    evidence: float = 1.0  # share of the query's IDF mass that can match the corpus at all
    sentences: tuple[tuple[int, int, float], ...] = ()  # (doc start, doc end, cosine) per sentence


@dataclass(frozen=True)
class Query:
    """A query analysed once: its text, vector and lexical tokens."""

    text: str
    vector: np.ndarray
    tokens: list[str]
    translated: tuple[str, ...] = ()  # the collection's Chinese words an English question names

    @property
    def terms(self) -> list[str]:
        """All lexical terms: the question's own tokens and its translations."""
        return self.tokens + list(self.translated)


class QueryEncoder(Protocol):
    """Anything that embeds one query (an `Embedder`, or a `QueryBatcher` in front of one)."""

    def embed_query(self, text: str) -> np.ndarray:
        """The query's vector."""
        ...


def analyse(text: str, encoder: QueryEncoder, lex: Lexicon | None = None) -> Query:
    """Embed and tokenise the query; with the collection's `lex`, an English question over a
    Chinese collection also gets the Chinese words it names (`crosslingual`)."""
    tokens = tokenize(text)
    translated: tuple[str, ...] = ()
    if lex is not None:
        translated = tuple(dict.fromkeys(lex.cross_lingual_terms(text) + lex.synonym_terms(tokens)))
    return Query(text, encoder.embed_query(text), tokens, translated)


def evidence_idf(lex: Lexicon, query: Query) -> dict[str, float]:
    """IDF of the terms whose presence in a chunk is evidence: the question's matchable tokens
    and its translations."""
    return lex.idf(lex.evidence_tokens(query.tokens) + list(query.translated))


def retrieve(
    snap: Snapshot,
    query: Query,
    k: int,
    *,
    candidates: int = 50,
    masks: Masks | None = None,
    lexical_weight: float = 0.5,
    reranker: Reranker | None = None,
    rerank_depth: int = 20,
    lex: Lexicon | None = None,
) -> list[Hit]:
    """Top-`k` hits for `query`, optionally only among the rows `masks` allow (one boolean mask
    per segment entry).

    Candidates are the top-`candidates` chunks by chunk cosine (FAISS per segment: exact for
    small segments, HNSW for large ones) ∪ the lexical top-`candidates` (BM25 over every
    segment's postings with collection-wide statistics); only they get the blended dense score
    (chunk cosine and best sentence cosine), so sentence vectors are read for the pool alone.
    They are ranked by a weighted sum of max-normalised dense and BM25 scores (measured better
    than equal-weight RRF, which ranks below BM25 alone on CMRC: see docs/quality.md). The lexical weight
    is scaled by the share of the question's IDF mass that can match the corpus at all: an
    English question over Chinese text matches only its numbers, which must not outvote the
    dense channel. `lex` gives the vocabulary's statistics (default: the snapshot's own; the
    PostgreSQL search passes the database's, its snapshot holding only the candidate pool).
    """
    segs = snap.segments
    if len(snap) == 0 or (masks is not None and not any(m.any() for m in masks)):
        return []
    lex = lex if lex is not None else lexicon(segs)
    dense_hits = segs.search_dense(query.vector, candidates, masks)
    lex_hits = segs.search_lexical(query.terms, candidates, masks)
    pool_seg = np.concatenate([dense_hits.segments, lex_hits.segments])
    pool_row = np.concatenate([dense_hits.rows, lex_hits.rows])
    keys = snap.global_rows(pool_seg, pool_row)
    _, first = np.unique(keys, return_index=True)
    keep = np.sort(first)  # dense order, then the lexical rows not among them
    pool_seg, pool_row, pool = pool_seg[keep], pool_row[keep], keys[keep]
    dense, sents = _blended(snap, query.vector, pool_seg, pool_row)
    lex_scores = segs.bm25_scores(query.terms, pool_seg, pool_row)
    # `gap` compares with the collection's typical chunk: a fixed sample stands for all rows.
    median = _median(snap, query.vector, masks)
    pool_dense = {int(r): float(d) for r, d in zip(pool.tolist(), dense.tolist(), strict=True)}
    lex_of = {int(r): float(s) for r, s in zip(pool.tolist(), lex_scores.tolist(), strict=True)}
    idf = evidence_idf(lex, query)
    total = sum(idf.values())
    # Translations are weaker evidence than the question's own words: the share of the question
    # that can match (which weights BM25 and picks the abstention model) counts only its own.
    own = lex.idf(lex.evidence_tokens(query.tokens))
    share = sum(own.values()) / (sum(lex.idf(query.tokens).values()) or 1.0)
    w_lex = lexical_weight * share
    fused = score_fusion([pool_dense, lex_of], [1.0 - w_lex, w_lex])
    depth = max(k, rerank_depth) if reranker is not None else k
    best = sorted(pool_dense, key=lambda r: -fused.get(r, 0.0))[:depth]
    hits = []
    for r in best:
        folded = snap.folded(r)
        cov = sum(w for t, w in idf.items() if t in folded) / total if total > 0 else None
        hits.append(
            Hit(
                row=r,
                score=fused.get(r, 0.0),
                dense=pool_dense[r],
                gap=pool_dense[r] - median,
                lexical=lex_of[r],
                coverage=cov,
                evidence=share,
                sentences=sents[r],
            )
        )
    if reranker is not None and hits:
        head, tail = hits[:rerank_depth], hits[rerank_depth:]
        scores = reranker.scores(candidates_of(snap, head), idf, query.text)
        head = [dataclasses.replace(h, score=sc) for h, sc in zip(head, scores, strict=True)]
        head.sort(key=lambda h: -h.score)
        # Below the reranked head the fused order stands, scaled under the head's last score.
        if tail:
            scale = 0.99 * head[-1].score / (tail[0].score or 1.0)
            tail = [dataclasses.replace(h, score=h.score * scale) for h in tail]
        hits = head + tail
    return hits[:k]


def _blended(
    snap: Snapshot, vector: np.ndarray, segments: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, dict[int, tuple[tuple[int, int, float], ...]]]:
    """The dense score of each (segment entry, local row) pair — the mean of its chunk cosine
    and its best sentence's cosine: whole chunks carry topic, single sentences match short
    questions far more sharply — and, per global row, its sentences as (doc start, doc end,
    cosine). Only these rows' vectors are read."""
    dense = np.zeros(len(rows), dtype=np.float32)
    sents: dict[int, tuple[tuple[int, int, float], ...]] = {}
    entries = snap.segments.entries
    for i in np.unique(segments).tolist():
        sel = np.flatnonzero(segments == i)
        seg = entries[i].segment
        local = rows[sel]
        own = seg.chunk_cosines(vector, local)
        sc = seg.best_sentence(vector, local)
        best = np.where(np.isinf(sc.best), own, sc.best)  # no sentences: its own cosine
        dense[sel] = SENTENCE_BLEND * best + (1.0 - SENTENCE_BLEND) * own
        ptr, cos = sc.ptr.tolist(), sc.cos.tolist()
        starts, ends = sc.starts.tolist(), sc.ends.tolist()
        base = int(snap.offsets[i])
        for j, r in enumerate(local.tolist()):
            a, b = ptr[j], ptr[j + 1]
            sents[base + r] = tuple((starts[x], ends[x], cos[x]) for x in range(a, b))
    return dense, sents


def median_sample(
    snap: Snapshot, masks: Masks | None = None
) -> list[tuple[int, np.ndarray, float]]:
    """The rows whose median dense score a search compares its hits with (`sample_rows`)."""
    return sample_rows(snap.segments, masks, MEDIAN_SAMPLE)


def _median(snap: Snapshot, vector: np.ndarray, masks: Masks | None) -> float:
    """The (weighted) median blended dense score of the sampled searchable rows: the
    snapshot's own sample, or (a filtered search) one drawn from the rows the filter allows."""
    sample = snap.sample if masks is None else DenseSample.of(snap.segments, masks)
    if not len(sample):
        return 0.0
    dense = sample.blended(vector, SENTENCE_BLEND)
    if (sample.weights == 1.0).all():
        return float(np.median(dense))
    return weighted_median(dense, sample.weights)


def candidates_of(snap: Snapshot, hits: Sequence[Hit]) -> list[Candidate]:
    """What the reranker reads about each hit (folded sentence texts sliced from the chunk)."""
    out = []
    for h in hits:
        text, folded, base = snap.text(h.row), snap.folded(h.row), snap.start(h.row)
        # Folding keeps offsets when it keeps the length (t2s almost always does): slice it.
        same = len(folded) == len(text)
        sents = tuple(
            (folded[a - base : b - base] if same else fold(text[a - base : b - base]), cos)
            for a, b, cos in h.sentences
        )
        out.append(
            Candidate(
                fused=h.score,
                dense=h.dense,
                lexical=h.lexical,
                coverage=h.coverage,
                sentences=sents,
                title=snap.sources.get(snap.doc_id(h.row), ("", ""))[1],
            )
        )
    return out
