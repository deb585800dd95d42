"""BM25 over stored token ids: equal to bm25s's default scoring (the engine's `LexicalIndex`), and
collection statistics with tombstones equal to statistics over the live rows alone."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.index.bm25 import CollectionStats, Postings, encode_tokens, merge_postings

TERMS = ["a", "b", "c", "d", "e", "f", "数据", "模型", "x1", "long-term"]

docs_st = st.lists(st.lists(st.sampled_from(TERMS), max_size=15), min_size=1, max_size=40)
query_st = st.lists(st.sampled_from([*TERMS, "absent"]), min_size=1, max_size=6)


def bm25s_scores(docs: list[list[str]], query: list[str]) -> np.ndarray:
    """bm25s's scores exactly as `LexicalIndex` drives it (ids + vocab, default method)."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in docs]
    model = bm25s.BM25()
    assert (model.method, model.k1, model.b) == ("lucene", 1.5, 0.75)
    model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    known = [vocab[t] for t in query if t in vocab]
    if not known:
        return np.zeros(len(docs), dtype=np.float32)
    return np.asarray(model.get_scores(known), dtype=np.float32)


@settings(max_examples=150, deadline=None)
@given(docs=docs_st, queries=st.lists(query_st, min_size=1, max_size=4))
def test_scores_equal_bm25s(docs: list[list[str]], queries: list[list[str]]) -> None:
    if not any(docs):
        return  # bm25s cannot index a corpus without a single token
    postings = Postings.build(encode_tokens(docs))
    stats = CollectionStats.of([(postings, None)])
    every_row = np.arange(len(docs))
    for query in queries:
        want = bm25s_scores(docs, query)
        got = postings.scores(query, every_row, stats)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        rows, top = postings.top(query, 5, stats)
        assert (top > 0).all()
        # the top-n are the best positive rows of the full scoring, ties by row
        positive = np.flatnonzero(got > 0)
        order = positive[np.lexsort((positive, -got[positive]))][:5]
        np.testing.assert_array_equal(rows, order)
        np.testing.assert_array_equal(top, got[order])  # same bits from both code paths


def test_idf_and_doc_freq_match_the_lexical_formula() -> None:
    docs = [["a", "a", "b"], ["b"], [], ["c", "a"]]
    postings = Postings.build(encode_tokens(docs))
    stats = CollectionStats.of([(postings, None)])
    np.testing.assert_array_equal(stats.doc_freq(["a", "b", "c", "zz"]), [2, 2, 1, 0])
    assert stats.avgdl == pytest.approx(6 / 4)
    n = 4
    want = [np.log(1.0 + (n - df + 0.5) / (df + 0.5)) for df in (2, 2, 1, 0)]
    np.testing.assert_allclose(stats.idf(["a", "b", "c", "zz"]), want)
    assert stats.doc_freq_table() == {"a": 2, "b": 2, "c": 1}
    assert postings.row_terms(0) == {"a": 2, "b": 1}
    assert postings.row_terms(2) == {}


@settings(max_examples=100, deadline=None)
@given(docs=docs_st, data=st.data())
def test_tombstoned_stats_equal_stats_of_the_live_rows(
    docs: list[list[str]], data: st.DataObject
) -> None:
    dead = np.array(data.draw(st.lists(st.booleans(), min_size=len(docs), max_size=len(docs))))
    postings = Postings.build(encode_tokens(docs))
    stats = CollectionStats.of([(postings, dead)])
    live_docs = [d for d, x in zip(docs, dead, strict=True) if not x]
    fresh = CollectionStats.of([(Postings.build(encode_tokens(live_docs)), None)])
    assert (stats.n_docs, stats.total_len) == (fresh.n_docs, fresh.total_len)
    np.testing.assert_array_equal(stats.doc_freq(TERMS), fresh.doc_freq(TERMS))
    assert stats.doc_freq_table() == fresh.doc_freq_table()
    # scores of the live rows under either statistics are the same bits
    live_rows = np.flatnonzero(~dead)
    other = Postings.build(encode_tokens(live_docs))
    for query in (["a"], ["b", "c", "b"], ["数据", "absent"]):
        np.testing.assert_array_equal(
            postings.scores(query, live_rows, stats),
            other.scores(query, np.arange(len(live_docs)), fresh),
        )


def test_merge_postings_keeps_live_rows_terms_and_frequencies() -> None:
    a = Postings.build(encode_tokens([["a", "b", "b"], ["c"], ["d", "a"]]))
    b = Postings.build(encode_tokens([["e"], ["b", "f", "f", "f"]]))
    # a's row 1 dropped (its only term "c" leaves the vocabulary); rows interleave
    merged = merge_postings([(a, np.array([0, -1, 3])), (b, np.array([1, 2]))], n_rows=4)
    assert [merged.row_terms(r) for r in range(4)] == [
        {"a": 1, "b": 2},
        {"e": 1},
        {"b": 1, "f": 3},
        {"d": 1, "a": 1},
    ]
    assert "c" not in merged.vocab
    np.testing.assert_array_equal(merged.doc_len, [3, 1, 4, 2])
    stats = CollectionStats.of([(merged, None)])
    assert stats.doc_freq_table() == {"a": 2, "b": 2, "d": 1, "e": 1, "f": 1}


def test_large_term_frequencies_do_not_overflow() -> None:
    postings = Postings.build(encode_tokens([["a"] * 70_000, ["a", "b"]]))
    assert postings.post_tf.dtype == np.int32
    assert postings.row_terms(0) == {"a": 70_000}
    small = Postings.build(encode_tokens([["a"] * 3]))
    assert small.post_tf.dtype == np.uint16


def full_ranking(
    postings: Postings,
    query: list[str],
    stats: CollectionStats,
    n: int,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-n by scoring every row (the reference the pruned search must equal)."""
    scores = postings.scores(query, np.arange(postings.n_rows), stats)
    ok = scores > 0 if allowed is None else (scores > 0) & allowed
    rows = np.flatnonzero(ok)
    order = rows[np.lexsort((rows, -scores[rows]))][:n]
    return order, scores[order]


def test_queries_with_very_common_terms_skip_their_postings_and_stay_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    docs = []
    for _ in range(3000):
        doc = ["common"] * int(rng.integers(1, 4)) + ["filler"] * int(rng.integers(0, 20))
        doc += ["mid"] * int(rng.integers(1, 3)) if rng.random() < 0.04 else []
        doc += ["rare"] if rng.random() < 0.015 else []
        doc += ["semi"] * int(rng.integers(1, 6)) if rng.random() < 0.08 else []
        docs.append(doc)
    postings = Postings.build(encode_tokens(docs))
    stats = CollectionStats.of([(postings, None)])
    full_calls: list[int] = []
    full = Postings._top_full

    def counted(self: Postings, *args: object) -> tuple[np.ndarray, np.ndarray]:
        full_calls.append(1)
        return full(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Postings, "_top_full", counted)
    allowed = rng.random(len(docs)) < 0.7
    for query, n, mask, pruned in [
        (["mid", "common"], 10, None, True),
        (["rare", "common", "filler", "rare"], 10, None, True),
        (["common", "mid", "filler"], 20, allowed, True),
        (["rare", "common"], 100, None, False),  # fewer rare rows than n: common-only rows count
        (["common", "filler"], 10, None, False),  # nothing light to start from
        # "semi" is heavy but weighty: its bound reaches the rare rows' scores, so it is read
        (["rare", "semi"], 25, None, False),
    ]:
        full_calls.clear()
        rows, scores = postings.top(query, n, stats, mask)
        want_rows, want_scores = full_ranking(postings, query, stats, n, mask)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(scores, want_scores)
        assert (not full_calls) == pruned, query
