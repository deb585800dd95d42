"""Rank fusion of dense and lexical candidate lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def rrf(
    rankings: Sequence[Sequence[int]], weights: Sequence[float] | None = None, k: float = 60.0
) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: `Σ w / (k + rank)` over the lists each row appears in."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, row in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + w / (k + rank + 1)
    return fused


def score_fusion(
    scores: Sequence[Mapping[int, float]], weights: Sequence[float]
) -> dict[int, float]:
    """Weighted sum of per-list max-normalised scores (a row missing from a list scores 0 there)."""
    fused: dict[int, float] = {}
    for table, w in zip(scores, weights, strict=True):
        if not table:
            continue
        top = max(table.values())
        if top <= 0:
            continue
        for row, s in table.items():
            fused[row] = fused.get(row, 0.0) + w * max(s, 0.0) / top
    return fused


def top_rows(scores: np.ndarray, n: int, rows: np.ndarray | None = None) -> list[int]:
    """Indices of the `n` highest `scores` (within `rows` when given), best first."""
    if rows is not None:
        sub = scores[rows]
        n = min(n, len(sub))
        if n == 0:
            return []
        part = np.argpartition(-sub, n - 1)[:n]
        return [int(rows[i]) for i in part[np.argsort(-sub[part], kind="stable")]]
    n = min(n, len(scores))
    if n == 0:
        return []
    part = np.argpartition(-scores, n - 1)[:n]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")]]
