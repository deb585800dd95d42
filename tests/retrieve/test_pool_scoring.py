"""Pool-only dense scoring: sentence vectors read for the candidates alone, and a sampled median.

A small synthetic snapshot over segments (random unit vectors, no model): the blended dense score
computed from the pool's own sentence rows must equal the one computed over every sentence, and
the median sample must be fixed and bounded, also across segments and under a filter.
"""

from __future__ import annotations

import numpy as np

from rag.index.segment import Segment, SegmentRows
from rag.index.segments import SegmentSet
from rag.index.snapshot import Snapshot
from rag.retrieve.hybrid import (
    MEDIAN_SAMPLE,
    SENTENCE_BLEND,
    Query,
    _blended,
    median_sample,
    retrieve,
)

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def segment(rng: np.random.Generator, first_id: int, sentences_per_chunk: list[int]) -> Segment:
    """Chunks with the given numbers of sentences (0: a chunk without an answer-sized one)."""
    n = len(sentences_per_chunk)
    owner = np.repeat(np.arange(n), sentences_per_chunk).astype(np.int64)
    texts = [f"第{first_id + i}段 文本 内容" for i in range(n)]
    return Segment.build(
        SegmentRows(
            chunk_ids=np.arange(first_id, first_id + n, dtype=np.int64),
            doc_ids=[f"d{first_id + i}" for i in range(n)],
            ords=np.zeros(n, dtype=np.int64),
            starts=np.zeros(n, dtype=np.int64),
            ends=np.array([len(t) for t in texts], dtype=np.int64),
            texts=texts,
            tokens=[["文本", "内容", f"第{first_id + i}段"] for i in range(n)],
            vectors=unit(rng, n),
            sent_vectors=unit(rng, len(owner)),
            sent_owner=owner,
            sent_starts=np.zeros(len(owner), dtype=np.int64),
            sent_ends=np.ones(len(owner), dtype=np.int64),
        ),
        DIM,
    )


def snapshot(rng: np.random.Generator, *parts: list[int]) -> Snapshot:
    """A snapshot of one segment per part."""
    segs = SegmentSet()
    first = 1
    for p in parts:
        segs = segs.with_added(segment(rng, first, p))
        first += len(p)
    sources = {f"d{i}": (f"{i}.txt", "") for i in range(1, first)}
    return Snapshot.of(1, segs, sources)


def exhaustive(snap: Snapshot, q: np.ndarray) -> np.ndarray:
    """The reference: every sentence scored, the best per chunk blended with the chunk's; by
    global row."""
    out = []
    for e in snap.segments.entries:
        seg = e.segment
        chunk = seg.vectors @ q
        best = np.full(seg.n_rows, -np.inf, dtype=np.float32)
        np.maximum.at(best, seg.sent_owner, seg.sent_vectors.astype(np.float32) @ q)
        best = np.where(np.isinf(best), chunk, best)
        out.append(SENTENCE_BLEND * best + (1 - SENTENCE_BLEND) * chunk)
    return np.concatenate(out)


def test_pool_scores_equal_exhaustive_scores() -> None:
    rng = np.random.default_rng(1)
    snap = snapshot(rng, [3, 0, 1, 5], [2, 0, 4])
    q = unit(rng, 1)[0]
    rows = np.array([6, 1, 3, 0, 4], dtype=np.int64)  # any order, both segments, no sentences too
    segs, local = snap.split_rows(rows)
    dense, sents = _blended(snap, q, segs, local)
    assert np.allclose(dense, exhaustive(snap, q)[rows], atol=1e-6)
    for r in rows.tolist():  # exactly each pool row's sentences were read
        starts, _ = snap.sentences(r)
        assert len(sents[r]) == len(starts)


def test_float16_sentence_rows_are_scored_in_float32() -> None:
    rng = np.random.default_rng(2)
    snap = snapshot(rng, [2, 3, 1])
    seg = snap.segments.entries[0].segment
    assert seg.sent_vectors.dtype == np.float16  # a compact store of the rows
    q = unit(rng, 1)[0]
    got = seg.best_sentence(q, np.array([1, 0]))
    assert got.cos.dtype == np.float32
    assert np.allclose(got.cos, seg.sent_vectors.astype(np.float32)[[2, 3, 4, 0, 1]] @ q, atol=1e-6)


def test_median_sample_is_fixed_and_bounded() -> None:
    rng = np.random.default_rng(4)
    small = snapshot(rng, [1] * 10)
    ((_, rows, weight),) = median_sample(small)
    assert rows.tolist() == list(range(10)) and weight == 1.0
    big = snapshot(rng, [1] * 3000, [1] * 1500)
    sample = median_sample(big)
    drawn = sum(len(r) for _, r, _ in sample)
    assert abs(drawn - MEDIAN_SAMPLE) <= len(sample)  # rounded per segment
    assert all(len(np.unique(r)) == len(r) for _, r, _ in sample)
    assert [(i, r.tolist()) for i, r, _ in median_sample(big)] == [
        (i, r.tolist()) for i, r, _ in sample
    ]  # the same rows for every query
    weights = {i: w for i, _, w in sample}
    assert abs(weights[0] * len(sample[0][1]) - 3000) < 1e-6  # each row stands for its share
    masks = [np.arange(3000) % 3 == 0, np.zeros(1500, dtype=bool)]  # a filtered search
    sub = median_sample(big, masks)
    assert [i for i, _, _ in sub] == [0] and set(sub[0][1].tolist()) <= set(range(0, 3000, 3))
    assert sum(len(r) for _, r, _ in sub) <= MEDIAN_SAMPLE + 1
    few = [np.arange(3000) < 5, np.zeros(1500, dtype=bool)]
    assert median_sample(big, few)[0][1].tolist() == [0, 1, 2, 3, 4]


def test_hits_carry_exact_dense_scores_and_gap() -> None:
    rng = np.random.default_rng(3)
    snap = snapshot(rng, [2, 3, 0], [1, 4, 2])
    q = unit(rng, 1)[0]
    hits = retrieve(snap, Query("文本", q, ["文本"]), 3, candidates=2)
    reference = exhaustive(snap, q)
    median = float(np.median(reference))  # fewer rows than the sample: the median of all
    assert hits
    for h in hits:
        assert abs(h.dense - reference[h.row]) < 1e-6
        assert abs(h.gap - (reference[h.row] - median)) < 1e-6
        assert len(h.sentences) == len(snap.sentences(h.row)[0])
