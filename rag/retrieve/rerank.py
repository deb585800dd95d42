"""A light feature reranker over the fused candidates (no extra model).

Features of each candidate chunk: its fused score (relative to the best), blended dense cosine,
BM25 (relative to the best), the share of the question's IDF-weighted terms in the chunk, the same
share within its best single sentence (term proximity: the answer sentence of a factoid question
holds most of its terms), and its best sentence's cosine. The weights are fitted, not chosen:
`python benchmarks/train_reranker.py` learns them with a pairwise logistic loss on CMRC 2018
questions (answering chunk above the others of the same question) and writes `rerank.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.index.tokenize import fold

WEIGHTS_FILE = Path(__file__).with_name("rerank.json")
FEATURES = ("fused", "dense", "bm25", "coverage", "sentence_coverage", "sentence_cosine")


@dataclass(frozen=True)
class Candidate:
    """What the reranker reads about one fused candidate."""

    fused: float
    dense: float
    lexical: float
    coverage: float | None
    sentences: tuple[tuple[str, float], ...]  # (sentence text, cosine to the question)


def features(cands: Sequence[Candidate], idf: dict[str, float]) -> list[list[float]]:
    """The feature vector (in `FEATURES` order) of every candidate."""
    total = sum(idf.values())
    top_fused = max((c.fused for c in cands), default=1.0) or 1.0
    top_lex = max((c.lexical for c in cands), default=1.0) or 1.0
    rows = []
    for c in cands:
        best_cov = 0.0
        if total > 0:
            for text, _ in c.sentences:
                folded = fold(text)
                best_cov = max(best_cov, sum(w for t, w in idf.items() if t in folded) / total)
        best_cos = max((cos for _, cos in c.sentences), default=c.dense)
        rows.append(
            [
                c.fused / top_fused,
                c.dense,
                c.lexical / top_lex,
                c.coverage or 0.0,
                best_cov,
                best_cos,
            ]
        )
    return rows


@dataclass(frozen=True)
class Reranker:
    """A linear scorer over `FEATURES`; `score` maps into (0, 1)."""

    weights: tuple[float, ...]
    bias: float = 0.0

    def scores(self, cands: Sequence[Candidate], idf: dict[str, float]) -> list[float]:
        """Relevance of each candidate, in (0, 1)."""
        out = []
        for f in features(cands, idf):
            z = self.bias + sum(w * x for w, x in zip(self.weights, f, strict=True))
            out.append(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))))
        return out


@lru_cache(maxsize=1)
def load_reranker(path: Path = WEIGHTS_FILE) -> Reranker:
    """The fitted reranker shipped with the package."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path}: fitted for features {data['features']}, code has {FEATURES}")
    return Reranker(tuple(float(w) for w in data["weights"]), float(data.get("bias", 0.0)))
