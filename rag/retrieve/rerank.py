"""A light feature reranker over the fused candidates (no extra model).

Features of each candidate chunk: its fused score (relative to the best), blended dense cosine,
BM25 (relative to the best), the share of the question's IDF-weighted terms in the chunk, the same
share within its best single sentence (term proximity: the answer sentence of a factoid question
holds most of its terms), its best sentence's cosine, the best sentence's share of the question's
*focus* terms (those not in the document's title: within one article every chunk names its
subject, and only the rest of the question tells the chunks apart), and the best sentence's share
of the question's character bigrams (matching that does not depend on word segmentation). The weights are fitted, not chosen:
`python benchmarks/train_reranker.py` learns them with a listwise (softmax) loss on CMRC 2018
questions (answering chunk above the others of the same question) and writes `rerank.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.index.tokenize import bigrams, fold, strip_question_words

WEIGHTS_FILE = Path(__file__).with_name("rerank.json")
FEATURES = (
    "fused",
    "dense",
    "bm25",
    "coverage",
    "sentence_coverage",
    "sentence_cosine",
    "sentence_focus",
    "sentence_bigrams",
)


@dataclass(frozen=True)
class Candidate:
    """What the reranker reads about one fused candidate."""

    fused: float
    dense: float
    lexical: float
    coverage: float | None
    sentences: tuple[tuple[str, float], ...]  # (folded sentence text, cosine to the question)
    title: str = ""  # the document's title


def features(cands: Sequence[Candidate], idf: dict[str, float], question: str) -> list[list[float]]:
    """The feature vector (in `FEATURES` order) of every candidate."""
    q_bigrams = list(bigrams(strip_question_words(fold(question))))
    terms, weights = list(idf), list(idf.values())
    total = sum(weights)
    top_fused = max((c.fused for c in cands), default=1.0) or 1.0
    top_lex = max((c.lexical for c in cands), default=1.0) or 1.0
    rows = []
    for c in cands:
        title = fold(c.title)
        # Focus terms: those the title does not name (all of them if it names every one).
        focus = [0.0 if t in title else w for t, w in zip(terms, weights, strict=True)]
        focus_total = sum(focus)
        if focus_total == 0:
            focus, focus_total = weights, total
        termed = list(zip(terms, weights, focus, strict=True))
        best_cov = best_focus = 0.0
        best_hits = 0
        for folded, _ in c.sentences:
            # One pass over the terms per sentence, both sums at once: this loop is most of the
            # reranker's time. Sums accumulate in term order, as `sum` over them would.
            cov = foc = 0.0
            for t, w, f in termed:
                if t in folded:
                    cov += w
                    foc += f
            best_cov = max(best_cov, cov)
            best_focus = max(best_focus, foc)
            if q_bigrams:
                best_hits = max(best_hits, len([b for b in q_bigrams if b in folded]))
        if total <= 0:
            best_cov = best_focus = 0.0
        else:
            best_cov, best_focus = best_cov / total, best_focus / focus_total
        best_bigrams = best_hits / len(q_bigrams) if q_bigrams else 0.0
        best_cos = max((cos for _, cos in c.sentences), default=c.dense)
        rows.append(
            [
                c.fused / top_fused,
                c.dense,
                c.lexical / top_lex,
                c.coverage or 0.0,
                best_cov,
                best_cos,
                best_focus,
                best_bigrams,
            ]
        )
    return rows


@dataclass(frozen=True)
class Reranker:
    """A linear scorer over `FEATURES`; `score` maps into (0, 1)."""

    weights: tuple[float, ...]
    bias: float = 0.0

    def scores(
        self, cands: Sequence[Candidate], idf: dict[str, float], question: str
    ) -> list[float]:
        """Relevance of each candidate to `question`, in (0, 1)."""
        out = []
        for f in features(cands, idf, question):
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
