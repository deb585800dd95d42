"""Answerability: how likely it is that the retrieved passages answer the question (0..1).

A logistic model over retrieval signals of the best hits: the top cosine, how far it stands
above the query's median cosine to the collection (`gap`), and the share of the question's
IDF-weighted evidence terms the best chunk contains (`coverage`). When less than half of the
question can match the corpus lexically (an English question over Chinese text matches only its
numbers), a dense-only model decides.

The coefficients are fitted, not chosen: `python benchmarks/calibrate_floor.py` fits them on
CMRC 2018 questions asked of their own contexts (answerable) and of the bundled corpus
(off-topic), and writes `calibration.json` beside this file. The dev set is not used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.retrieve.hybrid import Hit

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
MIN_EVIDENCE = 0.5  # below this share of lexically matchable question, coverage is not evidence


@dataclass(frozen=True)
class Logistic:
    """`σ(bias + Σ wᵢ·xᵢ)` over named features."""

    bias: float
    weights: dict[str, float]

    def __call__(self, features: dict[str, float]) -> float:
        """Probability for one feature vector."""
        z = self.bias + sum(w * features[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class AbstainModel:
    """One model for questions with lexical evidence, one for those without."""

    lexical: Logistic
    dense_only: Logistic

    def confidence(self, hits: Sequence[Hit]) -> float:
        """Probability that the hits answer the question; 0 without hits."""
        if not hits:
            return 0.0
        f = features(hits)
        return self.lexical(f) if "coverage" in f else self.dense_only(f)


def features(hits: Sequence[Hit]) -> dict[str, float]:
    """The signals the models read, from the best values among `hits`."""
    f = {"dense": max(h.dense for h in hits), "gap": max(h.gap for h in hits)}
    covs = [h.coverage for h in hits if h.coverage is not None]
    if covs and hits[0].evidence >= MIN_EVIDENCE:
        f["coverage"] = max(covs)
    return f


@lru_cache(maxsize=1)
def load_model(path: Path = CALIBRATION_FILE) -> AbstainModel:
    """The fitted model shipped with the package."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return AbstainModel(
        lexical=Logistic(data["lexical"]["bias"], data["lexical"]["weights"]),
        dense_only=Logistic(data["dense_only"]["bias"], data["dense_only"]["weights"]),
    )
