"""Fitting helpers shared by the training scripts: a listwise (softmax) linear ranker."""

from __future__ import annotations

import numpy as np


def fit(
    x: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    l2: float = 1e-3,
    steps: int = 3000,
    lr: float = 0.5,
) -> np.ndarray:
    """Listwise (softmax) regression: maximise the probability mass each question's softmax over
    its candidates puts on its positive sentences. Questions without a positive are skipped.
    Returns raw-scale weights (a bias cancels in the softmax)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    groups, idx = np.unique(g, return_inverse=True)
    keep = np.bincount(idx, weights=y, minlength=len(groups))[idx] > 0
    z, y, idx = z[keep], y[keep], idx[keep]
    target = y / np.bincount(idx, weights=y, minlength=len(groups))[idx]
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        s = z @ w
        top = np.full(len(groups), -np.inf)
        np.maximum.at(top, idx, s)
        e = np.exp(s - top[idx])
        p = e / np.bincount(idx, weights=e, minlength=len(groups))[idx]
        w -= lr * (z.T @ (p - target) / len(groups) + l2 * w)
    return w / sd


def top_accuracy(y: np.ndarray, g: np.ndarray, s: np.ndarray) -> float:
    """Share of groups (questions) whose best-scored item is positive (groups without any count)."""
    qs = np.unique(g)
    return float(np.mean([y[g == q][np.argmax(s[g == q])] for q in qs]))
