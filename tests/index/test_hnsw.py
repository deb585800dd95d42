"""HNSW segments: recall@10 against exact search on clustered 512-d vectors, filtered searches
that never return a disallowed row, and a memory-mapped round trip of the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index.segdata import clustered

from rag.index import segment as segment_module
from rag.index.segment import Segment, SegmentRows

N, DIM, QUERIES = 30_000, 512, 200


@pytest.fixture(scope="module")
def data() -> tuple[Segment, np.ndarray]:
    rng = np.random.default_rng(11)
    # 300 gaussian clusters; a point's cosine to its centre is about 0.45 (spread 2.0)
    x = clustered(rng, N + QUERIES, DIM, clusters=300, spread=2.0)
    rows = SegmentRows(
        chunk_ids=np.arange(1, N + 1, dtype=np.int64),
        doc_ids=[f"d{i // 10}" for i in range(N)],
        ords=np.zeros(N, np.int64),
        starts=np.zeros(N, np.int64),
        ends=np.zeros(N, np.int64),
        texts=[""] * N,
        tokens=[[]] * N,
        vectors=x[:N],
        sent_vectors=np.zeros((0, DIM), np.float32),
        sent_owner=np.zeros(0, np.int64),
        sent_starts=np.zeros(0, np.int64),
        sent_ends=np.zeros(0, np.int64),
    )
    seg = Segment.build(rows, DIM)  # 30k rows ≥ HNSW_MIN_ROWS: an HNSW segment
    assert seg.is_hnsw
    return seg, x[N:]


def recall(seg: Segment, queries: np.ndarray, allowed: np.ndarray | None) -> float:
    found = 0
    for q in queries:
        got = seg.dense_top(q, 10, allowed)[0]
        want = seg.dense_top(q, 10, allowed, exact=True)[0]
        if allowed is not None:
            assert allowed[got].all(), "a disallowed row came back"
        found += len(set(got.tolist()) & set(want.tolist()))
    return found / (10 * len(queries))


def test_recall_at_10_against_exact(data: tuple[Segment, np.ndarray]) -> None:
    seg, queries = data
    r = recall(seg, queries, None)
    print(
        f"HNSW recall@10 = {r:.4f} (M={segment_module.HNSW_M}, "
        f"efConstruction={segment_module.HNSW_EF_CONSTRUCTION}, efSearch={segment_module.HNSW_EF_SEARCH})"
    )
    assert r >= 0.98


@pytest.mark.parametrize("share", [0.9, 0.6, 0.4])
def test_filtered_graph_search_returns_only_allowed_rows(
    data: tuple[Segment, np.ndarray], share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    seg, queries = data
    # a beam narrow enough for this 30k-row segment that the graph is walked (at the default
    # beam, rows this few are scored exactly: the walk would go untested)
    monkeypatch.setattr(segment_module, "HNSW_EF_SEARCH", 128)
    allowed = np.random.default_rng(3).random(N) < share
    # enough allowed rows that the graph is walked (not the exact fallback): the beam widens
    ef = min(
        segment_module.HNSW_EF_SEARCH * N // int(allowed.sum()), segment_module.HNSW_EF_FILTERED_MAX
    )
    assert allowed.sum() > ef * 2 * segment_module.HNSW_M
    r = recall(seg, queries[:100], allowed)
    print(f"filtered HNSW recall@10 = {r:.4f} with {share:.0%} of the rows allowed (efSearch {ef})")
    assert r >= 0.98


def test_selective_filter_is_exact(data: tuple[Segment, np.ndarray]) -> None:
    seg, queries = data
    allowed = np.random.default_rng(4).random(N) < 0.05  # cheaper to score exactly than to walk
    for q in queries[:20]:
        rows, _ = seg.dense_top(q, 10, allowed)
        ok = np.flatnonzero(allowed)
        want = ok[np.argsort(-(seg.vectors[ok] @ q))[:10]]
        np.testing.assert_array_equal(rows, want)
    few = seg.rows_of_docs(["d7"])  # one document's 10 rows
    rows, _ = seg.dense_top(queries[0], 50, few)
    assert sorted(rows.tolist()) == list(range(70, 80))


def test_hnsw_round_trip_is_mapped(data: tuple[Segment, np.ndarray], tmp_path: Path) -> None:
    seg, queries = data
    seg.save(tmp_path, "h")
    back = Segment.load(tmp_path, "h", dim=DIM)
    assert back.is_hnsw
    mapping = back.keepalive[0]
    base = np.frombuffer(mapping, np.uint8).ctypes.data  # type: ignore[call-overload]
    assert base <= back.vectors.ctypes.data < base + len(mapping)  # type: ignore[arg-type]
    assert back.vectors.ctypes.data % 64 == 0  # FAISS reads the vectors in place, aligned
    for q in queries[:20]:
        for a, b in zip(back.dense_top(q, 10), seg.dense_top(q, 10), strict=True):
            np.testing.assert_array_equal(a, b)


def test_recall_over_several_hnsw_segments(data: tuple[Segment, np.ndarray]) -> None:
    """Searched as a set, each HNSW segment walks a narrower beam (`ef_for`): the merged top 10
    must still hold ≥ 0.98 of the exact top 10."""
    from rag.index.segment import ef_for
    from rag.index.segments import SegmentSet

    seg, queries = data
    vectors = np.asarray(seg.vectors, dtype=np.float32)
    parts = 4
    step = N // parts
    segs = SegmentSet()
    for lo in range(0, N, step):
        n = min(step, N - lo)
        rows = SegmentRows(
            chunk_ids=np.arange(lo + 1, lo + n + 1, dtype=np.int64),
            doc_ids=[f"d{i // 10}" for i in range(lo, lo + n)],
            ords=np.zeros(n, np.int64),
            starts=np.zeros(n, np.int64),
            ends=np.zeros(n, np.int64),
            texts=[""] * n,
            tokens=[[]] * n,
            vectors=vectors[lo : lo + n],
            sent_vectors=np.zeros((0, DIM), np.float32),
            sent_owner=np.zeros(0, np.int64),
            sent_starts=np.zeros(0, np.int64),
            sent_ends=np.zeros(0, np.int64),
        )
        segs = segs.with_added(Segment.build(rows, DIM, hnsw_min_rows=1_000))
    assert all(e.segment.is_hnsw for e in segs.entries)
    assert ef_for(parts) < segment_module.HNSW_EF_SEARCH
    found = 0
    for q in queries:
        got = segs.search_dense(q, 10).chunk_ids
        want = segs.search_dense(q, 10, exact=True).chunk_ids
        found += len(set(got.tolist()) & set(want.tolist()))
    r = found / (10 * len(queries))
    print(f"recall@10 over {parts} HNSW segments = {r:.4f} (efSearch {ef_for(parts)} each)")
    assert r >= 0.98
