"""A `SegmentSet` (segments + tombstones + merges) searches exactly like one segment built from
scratch from the live rows; changes are copy-on-write; the manifest persists the set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from index.segdata import VOCAB, Chunk, make_chunk, rows_of, unit

from rag.index.bm25 import CollectionStats
from rag.index.persist import StaleOrCorrupt
from rag.index.segment import Segment, segment_path
from rag.index.segments import (
    MANIFEST_FILE,
    SegmentSet,
    pick_merge,
    weighted_median,
)

DIM = 8
K = 6


class Store:
    """The SQLite side of the model: live chunks by id, ids handed out as SQLite does for an
    `INTEGER PRIMARY KEY` without AUTOINCREMENT (max live id + 1: a deleted top id is reused)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.chunks: dict[int, Chunk] = {}
        self.docs = 0

    def next_id(self) -> int:
        return max(self.chunks, default=0) + 1

    def write_doc(self, doc_id: str) -> list[Chunk]:
        out = []
        for ord_ in range(int(self.rng.integers(1, 5))):
            c = make_chunk(self.rng, self.next_id(), doc_id, ord_, DIM)
            self.chunks[c.chunk_id] = c
            out.append(c)
        return out

    def new_doc(self) -> list[Chunk]:
        self.docs += 1
        return self.write_doc(f"d{self.docs}")

    def delete_doc(self, doc_id: str) -> list[int]:
        ids = [cid for cid, c in self.chunks.items() if c.doc_id == doc_id]
        for cid in ids:
            del self.chunks[cid]
        return ids

    def doc_ids(self) -> list[str]:
        return sorted({c.doc_id for c in self.chunks.values()})


def same_ranking(ids_a: np.ndarray, sc_a: np.ndarray, ids_b: np.ndarray, sc_b: np.ndarray) -> None:
    """Equal within 1e-5; ids may differ only between scores that tie within 1e-5."""
    np.testing.assert_allclose(sc_a, sc_b, atol=1e-5)
    assert len(ids_a) == len(ids_b)
    for i in np.flatnonzero(ids_a != ids_b):
        near = np.abs(sc_b - sc_b[i]) <= 1e-5
        assert ids_a[i] in set(ids_b[near].tolist()), "different rows, not a tie"


def check_equivalent(sset: SegmentSet, store: Store, rng: np.random.Generator) -> None:
    """Search results over `sset` equal those of one segment built from the live rows."""
    live = sorted(store.chunks.values(), key=lambda c: c.chunk_id)
    ref = Segment.build(rows_of(live, DIM), DIM)
    ref_stats = CollectionStats.of([(ref.postings, None)])
    stats = sset.stats
    assert len(sset) == stats.n_docs == len(live)
    assert stats.total_len == ref_stats.total_len
    np.testing.assert_array_equal(
        stats.doc_freq([*VOCAB, "nope"]), ref_stats.doc_freq([*VOCAB, "nope"])
    )
    assert stats.doc_freq_table() == ref_stats.doc_freq_table()
    segs, rows = sset.locate(ref.chunk_ids)
    assert (segs >= 0).all()
    for c, s, r in zip(live, segs, rows, strict=True):
        assert sset.entries[s].segment.text(r) == c.text
    docs = store.doc_ids()
    picked = docs[::2]
    masks = [e.segment.rows_of_docs(picked) for e in sset.entries]
    ref_mask = ref.rows_of_docs(picked)
    for _ in range(3):
        query = list(rng.choice([*VOCAB, "nope"], size=int(rng.integers(1, 5))))
        for m, ref_allowed in ((None, None), (masks, ref_mask)):
            hits = sset.search_lexical(query, K, m)
            ref_rows, ref_scores = ref.bm25_top(query, K, ref_stats, ref_allowed)
            # same statistics, same arithmetic: the same bits, so ties break the same way
            np.testing.assert_array_equal(hits.chunk_ids, ref.chunk_ids[ref_rows])
            np.testing.assert_array_equal(hits.scores, ref_scores)
        np.testing.assert_array_equal(
            sset.bm25_scores(query, segs, rows),
            ref.bm25_scores(query, np.arange(len(ref)), ref_stats),
        )
        q = unit(rng, 1, DIM)[0]
        for m, ref_allowed in ((None, None), (masks, ref_mask)):
            hits = sset.search_dense(q, K, m)
            ref_rows, ref_cos = ref.dense_top(q, K, ref_allowed)
            same_ranking(hits.chunk_ids, hits.scores, ref.chunk_ids[ref_rows], ref_cos)
            if len(hits):
                sent = sset.entries[hits.segments[0]].segment.best_sentence(q, hits.rows[:1])
                ref_sent = ref.best_sentence(q, ref_rows[:1])
                if hits.chunk_ids[0] == ref.chunk_ids[ref_rows[0]]:
                    np.testing.assert_allclose(sent.cos, ref_sent.cos, atol=1e-6)
        np.testing.assert_allclose(
            sset.chunk_cosines(q, segs, rows), ref.chunk_cosines(q, np.arange(len(ref))), atol=1e-6
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_segment_set_equals_one_segment_of_the_live_rows(seed: int, data: st.DataObject) -> None:
    store = Store(seed)
    rng = np.random.default_rng(seed + 1)
    sset = SegmentSet()
    ops = data.draw(
        st.lists(
            st.sampled_from(["add", "add", "update", "delete", "merge", "merge_racing"]),
            min_size=1,
            max_size=12,
        )
    )
    for op in ops:
        docs = store.doc_ids()
        if op == "add" or not docs:
            new = [c for _ in range(int(rng.integers(1, 4))) for c in store.new_doc()]
            sset = sset.with_added(Segment.build(rows_of(new, DIM), DIM))
        elif op in ("update", "delete"):
            doc = docs[int(rng.integers(len(docs)))]
            sset = sset.with_deleted(store.delete_doc(doc))
            if op == "update":  # new chunk ids, possibly reusing the deleted top id
                sset = sset.with_added(Segment.build(rows_of(store.write_doc(doc), DIM), DIM))
        else:
            ids = list(sset.seg_ids)
            chosen = data.draw(
                st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True)
            )
            merged = sset.merged_segment(chosen)
            before = sset
            if op == "merge_racing":
                # a delete lands between the merge reading the segments and its commit
                doc = docs[int(rng.integers(len(docs)))]
                sset = sset.with_deleted(store.delete_doc(doc))
            sset = sset.with_merged(chosen, merged)
            assert len(sset.entries) == len(before.entries) - len(chosen) + (len(merged) > 0)
        check_equivalent(sset, store, rng)


def build(store: Store, n_docs: int) -> Segment:
    return Segment.build(rows_of([c for _ in range(n_docs) for c in store.new_doc()], DIM), DIM)


def test_changes_are_copy_on_write() -> None:
    store = Store(1)
    s1 = SegmentSet().with_added(build(store, 3), "a")
    s2 = s1.with_added(build(store, 2), "b")
    victim = min(store.chunks)
    s3 = s2.with_deleted([victim])
    merged = s3.merged_segment(["a", "b"])
    s4 = s3.with_merged(["a", "b"], merged, "m")
    assert (len(s1.entries), len(s2.entries), len(s3.entries), len(s4.entries)) == (1, 2, 2, 1)
    assert s2.entries[0].dead is None and s3.entries[0].n_dead == 1
    assert s2.locate([victim])[0][0] == 0 and s3.locate([victim])[0][0] == -1
    assert len(s2) == len(s3) + 1 == len(s4) + 1
    assert s2.stats.n_docs == len(s2)  # the old set's statistics did not move either
    with pytest.raises(ValueError, match="already in the set"):
        s2.with_added(build(store, 1), "a")
    with pytest.raises(ValueError, match="live already"):
        s2.with_added(s2.entries[0].segment)
    with pytest.raises(ValueError, match="unknown segments"):
        s2.with_merged(["zz"], merged)
    with pytest.raises(ValueError, match="lack"):
        s1.with_merged(["a"], merged)  # holds b's chunks too
    with pytest.raises(ValueError, match="already in the set"):
        s3.with_merged(["a", "b"], merged, "a")  # the file seg-a.seg holds a's rows


def test_merge_commit_carries_over_deletes_and_reused_ids() -> None:
    store = Store(2)
    sset = SegmentSet().with_added(build(store, 2), "a").with_added(build(store, 2), "b")
    merged = sset.merged_segment(["a", "b"])
    top = max(store.chunks)
    top_doc = store.chunks[top].doc_id
    sset = sset.with_deleted(store.delete_doc(top_doc))  # racing the merge
    readded = store.write_doc(top_doc)  # SQLite hands out the deleted ids again
    assert top in {c.chunk_id for c in readded}
    sset = sset.with_added(Segment.build(rows_of(readded, DIM), DIM), "c")
    sset = sset.with_merged(["a", "b"], merged, "m")
    assert sset.seg_ids == ("m", "c")
    segs, _ = sset.locate([top])
    assert segs.tolist() == [1]  # the new chunk with the reused id, not the merged old one
    check_equivalent(sset, store, np.random.default_rng(0))


def test_manifest_round_trip(tmp_path: Path) -> None:
    store = Store(3)
    sset = SegmentSet().with_added(build(store, 3), "a").with_added(build(store, 3), "b")
    sset = sset.with_deleted(store.delete_doc("d2") + store.delete_doc("d5"))
    sset.save(tmp_path, generation=7)
    assert SegmentSet.generation_on_disk(tmp_path) == 7
    back = SegmentSet.load(tmp_path, 7, dim=DIM)
    assert back.seg_ids == ("a", "b")
    for e, f in zip(back.entries, sset.entries, strict=True):
        np.testing.assert_array_equal(e.dead, f.dead)
        assert (e.n_dead, e.dead_len) == (f.n_dead, f.dead_len)
        np.testing.assert_array_equal(e.dead_df, f.dead_df)
    check_equivalent(back, store, np.random.default_rng(1))
    with pytest.raises(StaleOrCorrupt, match="generation"):
        SegmentSet.load(tmp_path, 8)
    # a later state: "a" merged away; its file is left for a cleaner, "b" is not rewritten
    mtime = segment_path(tmp_path, "b").stat().st_mtime_ns
    merged = back.merged_segment(["a"])
    nxt = back.with_merged(["a"], merged, "m")
    nxt.save(tmp_path, generation=8)
    assert segment_path(tmp_path, "b").stat().st_mtime_ns == mtime
    assert SegmentSet.unreferenced_files(tmp_path) == [segment_path(tmp_path, "a")]
    assert SegmentSet.load(tmp_path).seg_ids == ("m", "b")
    # a segment file that is not the one the manifest lists
    Segment.build(rows_of(store.new_doc(), DIM), DIM).save(tmp_path, "b")
    with pytest.raises(StaleOrCorrupt, match="not the one"):
        SegmentSet.load(tmp_path)
    os.unlink(tmp_path / MANIFEST_FILE)
    with pytest.raises(StaleOrCorrupt, match="missing"):
        SegmentSet.load(tmp_path)
    assert SegmentSet.generation_on_disk(tmp_path) is None


def test_tiered_merge_policy() -> None:
    assert pick_merge([100] * 7) == ()
    assert pick_merge([100] * 8) == tuple(range(8))
    # the lowest full tier, its smallest members
    sizes = [5_000] * 9 + [50, 60, 70, 80, 90, 100, 110, 120, 130]
    assert pick_merge(sizes) == tuple(range(9, 17))
    assert pick_merge([5_000] * 8 + [500_000]) == tuple(range(8))
    assert pick_merge([5_000, 50_000, 500_000]) == ()
    # never past max_rows: fewer of the smallest, and full segments stay as they are
    assert pick_merge([60_000] * 8 + [20_000]) == (0, 1, 2, 8)  # 20k + 3 × 60k = 200k
    assert pick_merge([60_000] * 8, max_rows=150_000) == (0, 1)
    assert pick_merge([200_000] * 9 + [900_000]) == ()
    assert pick_merge([150_000] * 8, max_rows=200_000) == ()  # not even two fit
    # nothing tiered, but a mostly deleted segment is rewritten alone
    assert pick_merge([900, 10_000], dead=[100, 12_000]) == (1,)
    assert pick_merge([900, 10_000], dead=[100, 1_000]) == ()
    store = Store(4)
    sset = SegmentSet()
    for _ in range(8):
        sset = sset.with_added(build(store, 1))
    assert sset.merge_candidates() == sset.seg_ids


def test_sample_estimates_the_median() -> None:
    store = Store(5)
    sset = SegmentSet().with_added(build(store, 30)).with_added(build(store, 3))
    sset = sset.with_deleted(store.delete_doc("d1"))
    q = unit(np.random.default_rng(0), 1, DIM)[0]
    parts = sset.sample(k=10_000)
    values = np.concatenate([sset.entries[i].segment.chunk_cosines(q, r) for i, r, _ in parts])
    weights = np.concatenate([np.full(len(r), w) for _, r, w in parts])
    all_cos = np.array([c.vector @ q for c in store.chunks.values()])
    # a sample of everything, weight 1: the lower median of every live row
    assert weighted_median(values, weights) == pytest.approx(
        np.sort(all_cos)[(len(all_cos) - 1) // 2], abs=1e-6
    )
    small = sset.sample(k=5)
    assert all(len(r) <= 5 for _, r, _ in small)
    assert sum(w * len(r) for _, r, w in small) == pytest.approx(len(sset))


def test_empty_set_searches_and_round_trips(tmp_path: Path) -> None:
    empty = SegmentSet()
    assert len(empty.search_lexical(["w1"], 5)) == 0
    assert len(empty.search_dense(np.ones(DIM, np.float32), 5)) == 0
    empty.save(tmp_path, generation=0)
    assert SegmentSet.load(tmp_path, 0).seg_ids == ()


def test_segment_modules_import_nothing_above_the_index_layer() -> None:
    code = (
        "import sys, rag.index.segments, rag.index.segment, rag.index.bm25, rag.index.container\n"
        "bad = [m for m in sys.modules if m.startswith(('rag.retrieve', 'rag.engine', 'rag.answer'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
