"""Hybrid retrieval over a `Snapshot`: dense (FAISS) ∪ lexical (BM25) candidates, fused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from rag.index.lexical import LexicalIndex
from rag.index.tokenize import fold, tokenize
from rag.retrieve.fusion import score_fusion, top_rows
from rag.retrieve.rerank import Candidate, Reranker
from rag.retrieve.snapshot import Snapshot

SENTENCE_BLEND = 0.5
MEDIAN_SAMPLE = 1024  # chunks whose median dense score stands for the collection's (`gap`)


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


def analyse(text: str, encoder: QueryEncoder, lexical: LexicalIndex | None = None) -> Query:
    """Embed and tokenise the query; with the collection's `lexical` index, an English question
    over a Chinese collection also gets the Chinese words it names (`crosslingual`)."""
    translated = tuple(lexical.cross_lingual_terms(text)) if lexical is not None else ()
    return Query(text, encoder.embed_query(text), tokenize(text), translated)


def evidence_idf(lexical: LexicalIndex, query: Query) -> dict[str, float]:
    """IDF of the terms whose presence in a chunk is evidence: the question's matchable tokens
    and its translations."""
    return lexical.idf(lexical.evidence_tokens(query.tokens) + list(query.translated))


def retrieve(
    snap: Snapshot,
    query: Query,
    k: int,
    *,
    candidates: int = 50,
    rows: np.ndarray | None = None,
    lexical_weight: float = 0.5,
    reranker: Reranker | None = None,
    rerank_depth: int = 20,
) -> list[Hit]:
    """Top-`k` hits for `query`, optionally only among `rows`.

    Candidates are the top-`candidates` chunks by chunk cosine ∪ the lexical top-`candidates`;
    only they get the blended dense score (chunk cosine and best sentence cosine), so sentence
    vectors are read for the pool alone, never searched. They are ranked by a weighted sum of
    max-normalised dense and BM25 scores (measured better than equal-weight RRF, which ranks
    below BM25 alone on CMRC: see README). The lexical weight is scaled by the share of the
    question's IDF mass that can match the corpus at all: an English question over Chinese text
    matches only its numbers, which must not outvote the dense channel.
    """
    if len(snap) == 0 or (rows is not None and len(rows) == 0):
        return []
    # The chunk-level dense search (an exact scan here; an ANN index approximates its top rows).
    chunk_cos = snap.dense.scores(query.vector)
    lex_all = snap.lexical.scores(query.terms)
    dense_top = top_rows(chunk_cos, candidates, rows)
    lex_top = [r for r in top_rows(lex_all, candidates, rows) if lex_all[r] > 0]
    pool = np.array(list(dict.fromkeys(dense_top + lex_top)), dtype=np.int64)
    dense, sent_rows, sent_cos = _blended(snap, query.vector, pool, chunk_cos)
    cosine_of = dict(zip(sent_rows.tolist(), sent_cos.tolist(), strict=True))
    # `gap` compares with the collection's typical chunk: a fixed sample stands for all rows.
    sample = median_sample(len(snap) if rows is None else rows)
    median = float(np.median(_blended(snap, query.vector, sample, chunk_cos)[0]))
    pool_dense = {int(r): float(d) for r, d in zip(pool, dense, strict=True)}
    idf = evidence_idf(snap.lexical, query)
    total = sum(idf.values())
    # Translations are weaker evidence than the question's own words: the share of the question
    # that can match (which weights BM25 and picks the abstention model) counts only its own.
    own = snap.lexical.idf(snap.lexical.evidence_tokens(query.tokens))
    share = sum(own.values()) / (sum(snap.lexical.idf(query.tokens).values()) or 1.0)
    w_lex = lexical_weight * share
    fused = score_fusion(
        [pool_dense, {r: float(lex_all[r]) for r in pool_dense}], [1.0 - w_lex, w_lex]
    )
    depth = max(k, rerank_depth) if reranker is not None else k
    best = sorted(pool_dense, key=lambda r: -fused.get(r, 0.0))[:depth]
    hits = []
    for r in best:
        folded = snap.folded(r)
        cov = sum(w for t, w in idf.items() if t in folded) / total if total > 0 else None
        sents = tuple(
            (int(snap.sent_starts[j]), int(snap.sent_ends[j]), cosine_of[int(j)])
            for j in snap.sentences_of(r)
        )
        hits.append(
            Hit(
                row=r,
                score=fused.get(r, 0.0),
                dense=pool_dense[r],
                gap=pool_dense[r] - median,
                lexical=float(lex_all[r]),
                coverage=cov,
                evidence=share,
                sentences=sents,
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


def median_sample(population: int | np.ndarray) -> np.ndarray:
    """A fixed random sample of at most `MEDIAN_SAMPLE` rows: of `range(population)`, or of the
    given rows (all of them when there are no more). Seeded, so a query's `gap` does not move
    between two searches of one snapshot."""
    if isinstance(population, int):
        return _sample_of_all(population)
    if len(population) <= MEDIAN_SAMPLE:
        return np.asarray(population, dtype=np.int64)
    pick = np.random.default_rng(0).choice(len(population), MEDIAN_SAMPLE, replace=False)
    return np.asarray(population, dtype=np.int64)[np.sort(pick)]


@lru_cache(maxsize=4)
def _sample_of_all(n: int) -> np.ndarray:
    """`median_sample(n)`, kept: every unfiltered search of a snapshot draws the same rows."""
    if n <= MEDIAN_SAMPLE:
        sample = np.arange(n, dtype=np.int64)
    else:
        sample = np.sort(np.random.default_rng(0).choice(n, MEDIAN_SAMPLE, replace=False))
    sample.flags.writeable = False  # shared by every caller
    return sample


def _blended(
    snap: Snapshot, vector: np.ndarray, rows: np.ndarray, chunk_cos: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense score of each of `rows` (the mean of its chunk cosine and its best sentence's
    cosine: whole chunks carry topic, single sentences match short questions far more sharply),
    the indices of their sentences and those sentences' cosines. Only these rows' sentence
    vectors are read."""
    lo = np.searchsorted(snap.sent_owner, rows)
    hi = np.searchsorted(snap.sent_owner, rows + 1)
    counts = hi - lo
    # The sentence indices of all `rows`, in order: lo[i], ..., hi[i] - 1 for each row i.
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    idx = starts + np.arange(int(counts.sum()), dtype=np.int64)
    cos = snap.sentences.scores_of(vector, idx)
    best = np.full(len(rows), -np.inf, dtype=np.float32)
    np.maximum.at(best, np.repeat(np.arange(len(rows)), counts), cos)
    own = chunk_cos[rows]
    best = np.where(np.isinf(best), own, best)  # a chunk without sentences: its own cosine
    dense = SENTENCE_BLEND * best + (1.0 - SENTENCE_BLEND) * own
    return dense, idx, cos


def candidates_of(snap: Snapshot, hits: Sequence[Hit]) -> list[Candidate]:
    """What the reranker reads about each hit (folded sentence texts sliced from the chunk)."""
    out = []
    for h in hits:
        text, folded, base = snap.texts[h.row], snap.folded(h.row), snap.starts[h.row]
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
                title=snap.sources.get(snap.doc_ids[h.row], ("", ""))[1],
            )
        )
    return out
