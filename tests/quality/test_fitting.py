"""The listwise fitting shared by the training scripts (`benchmarks/fitting.py`): the exact
(L-BFGS) fit finds the model's weights and a loss no worse than `fit`'s fixed gradient steps
(which stop short of the optimum on the selector's features). Synthetic data, no model or index."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fitting", ROOT / "benchmarks" / "fitting.py")
assert _spec is not None and _spec.loader is not None
fitting = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fitting)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """600 questions of 12 candidates; one positive each, drawn from a softmax over known
    weights; the second feature is correlated with the first, the third non-zero for 3% of the
    candidates only (like a feature only some questions have)."""
    rng = np.random.default_rng(seed)
    groups, size = 600, 12
    x = rng.normal(size=(groups * size, 3))
    x[:, 1] = 0.7 * x[:, 0] + 0.3 * x[:, 1]  # correlated with the first
    x[:, 2] = np.where(rng.random(groups * size) < 0.03, rng.normal(2.0, 1.0, groups * size), 0.0)
    true = np.array([1.5, -1.0, 2.0])
    g = np.repeat(np.arange(groups), size)
    y = np.zeros(len(g))
    for q in range(groups):
        s = x[g == q] @ true
        p = np.exp(s - s.max())
        y[np.flatnonzero(g == q)[rng.choice(size, p=p / p.sum())]] = 1.0
    return x, y, g, true


def _loss(x: np.ndarray, y: np.ndarray, g: np.ndarray, w: np.ndarray) -> float:
    """Mean -log(probability of the positive) over the questions."""
    s = x @ w
    out = []
    for q in np.unique(g):
        z = s[g == q]
        out.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[y[g == q] == 1].sum())
    return float(np.mean(out))


def test_exact_fit_recovers_the_weights_and_is_no_worse_than_gradient_steps() -> None:
    x, y, g, true = _data()
    exact = fitting.fit_exact(x, y, g)
    assert np.allclose(exact, true, atol=0.35)
    assert _loss(x, y, g, exact) <= _loss(x, y, g, fitting.fit(x, y, g)) + 1e-6
