"""Pool-only dense scoring: sentence vectors read for the candidates alone, and a sampled median.

A small synthetic snapshot (random unit vectors, no model): the blended dense score computed from
the pool's own sentence rows must equal the one computed over every sentence, and the median
sample must be fixed and bounded.
"""

from __future__ import annotations

import numpy as np

from rag.index.dense import DenseIndex
from rag.index.lexical import LexicalIndex
from rag.retrieve.hybrid import (
    MEDIAN_SAMPLE,
    SENTENCE_BLEND,
    Query,
    _blended,
    median_sample,
    retrieve,
)
from rag.retrieve.snapshot import Snapshot


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def snapshot(rng: np.random.Generator, sentences_per_chunk: list[int]) -> Snapshot:
    """Chunks with the given numbers of sentences (0: a chunk without an answer-sized one)."""
    n = len(sentences_per_chunk)
    owner = np.repeat(np.arange(n), sentences_per_chunk).astype(np.int64)
    texts = [f"第{i}段 文本 内容" for i in range(n)]
    return Snapshot(
        generation=1,
        doc_ids=[f"d{i}" for i in range(n)],
        ords=[0] * n,
        starts=[0] * n,
        ends=[len(t) for t in texts],
        texts=texts,
        sources={f"d{i}": (f"{i}.txt", "") for i in range(n)},
        dense=DenseIndex.build(unit(rng, n)),
        lexical=LexicalIndex.build(texts),
        sentences=DenseIndex.build(unit(rng, len(owner))),
        sent_owner=owner,
        sent_starts=np.zeros(len(owner), dtype=np.int64),
        sent_ends=np.ones(len(owner), dtype=np.int64),
        folded_texts=texts,
    )


def exhaustive(snap: Snapshot, q: np.ndarray) -> np.ndarray:
    """Today's reference: every sentence scored, the best per chunk blended with the chunk's."""
    chunk = snap.dense.scores(q)
    best = np.full(len(snap), -np.inf, dtype=np.float32)
    np.maximum.at(best, snap.sent_owner, snap.sentences.scores(q))
    best = np.where(np.isinf(best), chunk, best)
    return SENTENCE_BLEND * best + (1 - SENTENCE_BLEND) * chunk


def test_pool_scores_equal_exhaustive_scores() -> None:
    rng = np.random.default_rng(1)
    snap = snapshot(rng, [3, 0, 1, 5, 2, 0, 4])
    q = unit(rng, 1)[0]
    rows = np.array([6, 1, 3, 0], dtype=np.int64)  # any order, chunks without sentences too
    dense, sent_rows, cosines = _blended(snap, q, rows, snap.dense.scores(q))
    assert np.allclose(dense, exhaustive(snap, q)[rows], atol=1e-6)
    wanted = np.concatenate([snap.sentences_of(int(r)) for r in rows])
    assert sent_rows.tolist() == wanted.tolist()  # exactly the pool's sentences were read
    assert np.allclose(cosines, snap.sentences.scores(q)[wanted], atol=1e-6)


def test_float16_sentence_rows_are_scored_in_float32() -> None:
    rng = np.random.default_rng(2)
    vectors = unit(rng, 8)
    q = unit(rng, 1)[0]
    half = DenseIndex.build(vectors)
    half._matrix = vectors.astype(np.float16)  # a compact store of the same rows
    got = half.scores_of(q, np.array([5, 2]))
    assert got.dtype == np.float32
    assert np.allclose(got, vectors[[5, 2]] @ q, atol=2e-3)


def test_median_sample_is_fixed_and_bounded() -> None:
    assert np.array_equal(median_sample(10), np.arange(10))
    big = median_sample(50_000)
    assert len(big) == MEDIAN_SAMPLE == len(np.unique(big))
    assert np.array_equal(big, median_sample(50_000))  # the same rows for every query
    rows = np.arange(0, 9000, 3, dtype=np.int64)  # a filtered search samples its own rows
    sub = median_sample(rows)
    assert len(sub) == MEDIAN_SAMPLE and set(sub.tolist()) <= set(rows.tolist())
    assert np.array_equal(sub, median_sample(rows))
    assert np.array_equal(median_sample(rows[:5]), rows[:5])


def test_hits_carry_exact_dense_scores_and_gap() -> None:
    rng = np.random.default_rng(3)
    snap = snapshot(rng, [2, 3, 0, 1, 4, 2])
    q = unit(rng, 1)[0]
    hits = retrieve(snap, Query("文本", q, ["文本"]), 3, candidates=2)
    reference = exhaustive(snap, q)
    median = float(np.median(reference))  # fewer rows than the sample: the median of all
    assert hits
    for h in hits:
        assert abs(h.dense - reference[h.row]) < 1e-6
        assert abs(h.gap - (reference[h.row] - median)) < 1e-6
        assert len(h.sentences) == len(snap.sentences_of(h.row))
