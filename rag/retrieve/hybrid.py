"""Hybrid retrieval over a `Snapshot`: dense (FAISS) ∪ lexical (BM25) candidates, fused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.index.lexical import LexicalIndex
from rag.index.tokenize import fold, tokenize
from rag.retrieve.fusion import score_fusion, top_rows
from rag.retrieve.rerank import Candidate, Reranker
from rag.retrieve.snapshot import Snapshot

SENTENCE_BLEND = 0.5


@dataclass(frozen=True)
class Hit:
    """One fused result with the signals behind it (used by the answerer and abstention)."""

    row: int
    score: float
    dense: float  # cosine of query and chunk
    gap: float  # cosine above the median cosine of the query to the searched chunks
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

    Candidates are the dense top-`candidates` ∪ the lexical top-`candidates`; they are ranked by
    a weighted sum of max-normalised dense and BM25 scores (measured better than equal-weight RRF,
    which ranks below BM25 alone on CMRC: see README). The lexical weight is scaled by the share
    of the question's IDF mass that can match the corpus at all: an English question over
    Chinese text matches only its numbers, which must not outvote the dense channel.
    """
    if len(snap) == 0 or (rows is not None and len(rows) == 0):
        return []
    chunk_cos = snap.dense.scores(query.vector)
    sent_cos = snap.sentences.scores(query.vector)
    # A chunk's dense score: the mean of its own cosine and its best sentence's cosine. Whole
    # chunks carry topic; single sentences match short questions far more sharply.
    best_sent = np.full(len(snap), -np.inf, dtype=np.float32)
    if len(sent_cos):
        np.maximum.at(best_sent, snap.sent_owner, sent_cos)
    best_sent = np.where(np.isinf(best_sent), chunk_cos, best_sent)  # a chunk without sentences
    dense_all = SENTENCE_BLEND * best_sent + (1.0 - SENTENCE_BLEND) * chunk_cos
    lex_all = snap.lexical.scores(query.terms)
    median = float(np.median(dense_all if rows is None else dense_all[rows]))
    dense_top = top_rows(dense_all, candidates, rows)
    lex_top = [r for r in top_rows(lex_all, candidates, rows) if lex_all[r] > 0]
    pool = list(dict.fromkeys(dense_top + lex_top))
    idf = evidence_idf(snap.lexical, query)
    total = sum(idf.values())
    # Translations are weaker evidence than the question's own words: the share of the question
    # that can match (which weights BM25 and picks the abstention model) counts only its own.
    own = snap.lexical.idf(snap.lexical.evidence_tokens(query.tokens))
    share = sum(own.values()) / (sum(snap.lexical.idf(query.tokens).values()) or 1.0)
    w_lex = lexical_weight * share
    fused = score_fusion(
        [{r: float(dense_all[r]) for r in pool}, {r: float(lex_all[r]) for r in pool}],
        [1.0 - w_lex, w_lex],
    )
    depth = max(k, rerank_depth) if reranker is not None else k
    best = sorted(pool, key=lambda r: -fused.get(r, 0.0))[:depth]
    hits = []
    for r in best:
        folded = snap.folded(r)
        cov = sum(w for t, w in idf.items() if t in folded) / total if total > 0 else None
        sents = tuple(
            (int(snap.sent_starts[j]), int(snap.sent_ends[j]), float(sent_cos[j]))
            for j in snap.sentences_of(r)
        )
        hits.append(
            Hit(
                row=r,
                score=fused.get(r, 0.0),
                dense=float(dense_all[r]),
                gap=float(dense_all[r]) - median,
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
