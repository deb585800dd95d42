"""Score fusion and top-n selection."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.retrieve.fusion import score_fusion, top_rows


def test_score_fusion_normalises_each_list_by_its_max() -> None:
    fused = score_fusion([{1: 0.8, 2: 0.4}, {2: 12.0, 3: 6.0}], [0.5, 0.5])
    assert fused == {1: 0.5, 2: 0.25 + 0.5, 3: 0.25}


def test_score_fusion_ignores_empty_and_non_positive_lists() -> None:
    assert score_fusion([{}, {1: 0.0, 2: -1.0}], [0.5, 0.5]) == {}
    assert score_fusion([{1: 2.0, 2: -1.0}], [1.0]) == {1: 1.0, 2: 0.0}


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(-10, 10, allow_nan=False), min_size=0, max_size=60),
    n=st.integers(0, 70),
    data=st.data(),
)
def test_top_rows_matches_a_full_sort(scores: list[float], n: int, data: st.DataObject) -> None:
    arr = np.array(scores, dtype=np.float32)
    subset = data.draw(st.none() | st.lists(st.integers(0, max(len(scores) - 1, 0)), unique=True))
    rows = None if subset is None or not scores else np.array(subset, dtype=np.int64)
    got = top_rows(arr, n, rows)
    pool = list(range(len(scores))) if rows is None else [int(r) for r in rows]
    expected = sorted(pool, key=lambda r: -arr[r])[: min(n, len(pool))]
    assert (
        sorted(arr[got].tolist(), reverse=True) == arr[expected].tolist() if got else expected == []
    )
    assert set(got) <= set(pool) and len(got) == len(expected)
