"""Hybrid retrieval over a `Snapshot`: dense (FAISS) ∪ lexical (BM25) candidates, fused."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.embed.base import Embedder
from rag.index.tokenize import tokenize
from rag.retrieve.fusion import score_fusion, top_rows
from rag.retrieve.snapshot import Snapshot


@dataclass(frozen=True)
class Hit:
    """One fused result with the signals behind it (used by the answerer and abstention)."""

    row: int
    score: float
    dense: float  # cosine of query and chunk
    gap: float  # cosine above the median cosine of the query to the searched chunks
    lexical: float  # BM25 score
    coverage: float | None  # share of the query's IDF mass (evidence tokens) found in the chunk


@dataclass(frozen=True)
class Query:
    """A query analysed once: its text, vector and lexical tokens."""

    text: str
    vector: np.ndarray
    tokens: list[str]


def analyse(text: str, embedder: Embedder) -> Query:
    """Embed and tokenise the query."""
    return Query(text=text, vector=embedder.embed_query(text), tokens=tokenize(text))


def retrieve(
    snap: Snapshot,
    query: Query,
    k: int,
    *,
    candidates: int = 50,
    rows: np.ndarray | None = None,
    dense_weight: float = 0.5,
) -> list[Hit]:
    """Top-`k` hits for `query`, optionally only among `rows`."""
    if len(snap) == 0 or (rows is not None and len(rows) == 0):
        return []
    dense_all = snap.dense.scores(query.vector)
    median = float(np.median(dense_all if rows is None else dense_all[rows]))
    lex_all = snap.lexical.scores(query.tokens)
    dense_top = top_rows(dense_all, candidates, rows)
    lex_top = [r for r in top_rows(lex_all, candidates, rows) if lex_all[r] > 0]
    pool = list(dict.fromkeys(dense_top + lex_top))
    fused = score_fusion(
        [{r: float(dense_all[r]) for r in pool}, {r: float(lex_all[r]) for r in pool}],
        [dense_weight, 1.0 - dense_weight],
    )
    best = sorted(pool, key=lambda r: -fused.get(r, 0.0))[:k]
    idf = snap.lexical.idf(snap.lexical.evidence_tokens(query.tokens))
    total = sum(idf.values())
    hits = []
    for r in best:
        folded = snap.folded(r)
        cov = sum(w for t, w in idf.items() if t in folded) / total if total > 0 else None
        hits.append(Hit(row=r, score=fused.get(r, 0.0), dense=float(dense_all[r]),
                        gap=float(dense_all[r]) - median, lexical=float(lex_all[r]), coverage=cov))
    return hits
