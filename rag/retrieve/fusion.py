"""Rank fusion of dense and lexical candidate lists.

A weighted sum of max-normalised scores. Equal-weight reciprocal-rank fusion was measured and
dropped: on CMRC it ranks below BM25 alone (docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


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
