"""Fitting helpers shared by the training scripts: a listwise (softmax) linear ranker."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize


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


def fit_exact(x: np.ndarray, y: np.ndarray, g: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """The same listwise model and loss as `fit`, minimised to convergence by L-BFGS.

    `fit`'s fixed 3,000 gradient steps stop short of the optimum when features are correlated or
    rarely non-zero (a per-language copy of a feature): held out, such a feature then looked
    harmful although the converged fit gains from it. Returns raw-scale weights."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    groups, idx = np.unique(g, return_inverse=True)
    positives = np.bincount(idx, weights=y, minlength=len(groups))
    keep = positives[idx] > 0
    z, y, idx = z[keep], y[keep], idx[keep]
    target = y / positives[idx]
    used = positives > 0
    n = int(used.sum())

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ w
        top = np.full(len(groups), -np.inf)
        np.maximum.at(top, idx, s)
        e = np.exp(s - top[idx])
        total = np.bincount(idx, weights=e, minlength=len(groups))
        p = e / total[idx]
        # mean over questions of -log(mass on the positives), target-weighted as in `fit`
        value = (np.log(total[used]) + top[used]).sum() - (target * s).sum()
        return value / n + 0.5 * l2 * float(w @ w), z.T @ (p - target) / n + l2 * w

    result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x) / sd


def top_accuracy(y: np.ndarray, g: np.ndarray, s: np.ndarray) -> float:
    """Share of groups (questions) whose best-scored item is positive (groups without any count)."""
    qs = np.unique(g)
    return float(np.mean([y[g == q][np.argmax(s[g == q])] for q in qs]))
