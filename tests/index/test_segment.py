"""One segment: build, searches against brute force, save/load (memory-mapped, checksummed,
atomic), and merge (tombstoned rows dropped, everything else identical)."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import pytest
from index.segdata import Chunk, make_chunk, rows_of, unit

from rag.index import container
from rag.index.bm25 import CollectionStats
from rag.index.persist import StaleOrCorrupt
from rag.index.segment import Segment, merge, segment_path

DIM = 8


def chunks(rng: np.random.Generator, ids: list[int], per_doc: int = 3) -> list[Chunk]:
    return [make_chunk(rng, cid, f"doc{cid // per_doc}", cid % per_doc, DIM) for cid in ids]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_build_keeps_every_column(rng: np.random.Generator) -> None:
    cs = chunks(rng, list(range(1, 31)))
    seg = Segment.build(rows_of(cs, DIM), DIM)
    assert len(seg) == 30 and not seg.is_hnsw
    for row, c in enumerate(cs):
        assert seg.chunk_ids[row] == c.chunk_id
        assert seg.doc_id(row) == c.doc_id
        assert seg.text(row) == c.text
        assert seg.row_terms(row) == {t: c.tokens.count(t) for t in set(c.tokens)}
        np.testing.assert_array_equal(seg.vectors[row], c.vector)
        sents = seg.sentences_of(row)
        assert [(int(seg.sent_starts[j]), int(seg.sent_ends[j])) for j in sents] == list(
            c.sent_spans
        )
        np.testing.assert_array_equal(seg.sent_vectors[sents], c.sent_vectors.astype(np.float16))
    assert not seg.vectors.flags.writeable  # a view of FAISS's storage, never written through
    mask = seg.rows_of_docs(["doc2", "doc5", "nope"])
    assert [seg.doc_id(r) for r in np.flatnonzero(mask)] == ["doc2"] * 3 + ["doc5"] * 3
    np.testing.assert_array_equal(seg.rows_of_chunks(np.array([5, 99, 1, 0])), [4, -1, 0, -1])


def test_build_rejects_inconsistent_rows(rng: np.random.Generator) -> None:
    rows = rows_of(chunks(rng, [1, 2, 3]), DIM)
    with pytest.raises(ValueError, match="strictly increasing"):
        Segment.build(rows.__class__(**{**rows.__dict__, "chunk_ids": np.array([1, 3, 3])}), DIM)
    with pytest.raises(ValueError, match="texts"):
        Segment.build(rows.__class__(**{**rows.__dict__, "texts": ["x"]}), DIM)


def test_searches_match_brute_force(rng: np.random.Generator) -> None:
    cs = chunks(rng, list(range(100, 160)))
    seg = Segment.build(rows_of(cs, DIM), DIM)
    matrix = np.stack([c.vector for c in cs])
    for q in unit(rng, 5, DIM):
        want = matrix @ q
        rows, cos = seg.dense_top(q, 7)
        np.testing.assert_array_equal(rows, np.argsort(-want)[:7])
        np.testing.assert_allclose(cos, want[rows], atol=1e-6)
        allowed = rng.random(len(cs)) < 0.3
        rows, cos = seg.dense_top(q, 7, allowed)
        assert allowed[rows].all()
        ok = np.flatnonzero(allowed)
        np.testing.assert_array_equal(rows, ok[np.argsort(-want[ok])][:7])
        pick = np.array([3, 0, 59, 3])
        np.testing.assert_allclose(seg.chunk_cosines(q, pick), want[pick], atol=1e-6)
        sent = seg.best_sentence(q, pick)
        for i, r in enumerate(pick):
            exp = cs[r].sent_vectors.astype(np.float16).astype(np.float32) @ q
            np.testing.assert_allclose(sent.cos[sent.ptr[i] : sent.ptr[i + 1]], exp, atol=1e-6)
            assert sent.best[i] == (pytest.approx(exp.max(), abs=1e-6) if len(exp) else -np.inf)
            assert [
                tuple(x)
                for x in zip(
                    sent.starts[sent.ptr[i] : sent.ptr[i + 1]],
                    sent.ends[sent.ptr[i] : sent.ptr[i + 1]],
                    strict=True,
                )
            ] == list(cs[r].sent_spans)
    assert len(seg.dense_top(matrix[0], 5, np.zeros(len(cs), bool))[0]) == 0
    sample = seg.sample_rows(10, seed=3)
    assert len(sample) == 10 and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(sample, seg.sample_rows(10, seed=3))
    assert len(seg.sample_rows(1000)) == len(cs)


def loaded_is_mapped(seg: Segment) -> bool:
    """Every big array of `seg` (and FAISS's vector storage) lies inside its file mapping."""
    mapping = seg.keepalive[0]
    assert isinstance(mapping, mmap.mmap)
    base = np.frombuffer(mapping, np.uint8).ctypes.data
    end = base + len(mapping)
    arrays = [seg.vectors, seg.sent_vectors, seg.text_blob, seg.postings.post_rows, seg.chunk_ids]
    return all(base <= a.ctypes.data < end and not a.flags.writeable for a in arrays if a.size)


@pytest.mark.parametrize("hnsw_min_rows", [10_000, 40])
def test_save_load_round_trip_memory_mapped(
    tmp_path: Path, rng: np.random.Generator, hnsw_min_rows: int
) -> None:
    cs = chunks(rng, list(range(1, 81)))
    seg = Segment.build(rows_of(cs, DIM), DIM, hnsw_min_rows=hnsw_min_rows)
    assert seg.is_hnsw == (hnsw_min_rows == 40)
    head = seg.save(tmp_path, "s1")
    assert os.listdir(tmp_path) == ["seg-s1.seg"]
    back = Segment.load(tmp_path, "s1", dim=DIM)
    assert loaded_is_mapped(back)
    assert back.is_hnsw == seg.is_hnsw and head["sha256"]
    for name in (
        "chunk_ids",
        "doc_idx",
        "ords",
        "starts",
        "ends",
        "text_blob",
        "text_off",
        "vectors",
        "sent_vectors",
        "sent_owner",
        "sent_ptr",
        "sent_starts",
        "sent_ends",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(seg, name), err_msg=name)
    assert back.doc_table == seg.doc_table
    for name, arr in seg.postings.arrays().items():
        np.testing.assert_array_equal(getattr(back.postings, name), arr, err_msg=name)
    stats = CollectionStats.of([(seg.postings, None)])
    for q in unit(rng, 3, DIM):
        for a, b in zip(back.dense_top(q, 10), seg.dense_top(q, 10), strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(
            back.bm25_top(["w0", "w3"], 10, stats),
            seg.bm25_top(["w0", "w3"], 10, stats),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    assert [back.text(r) for r in range(len(cs))] == [c.text for c in cs]
    vectors = back.vectors
    del back  # the view keeps the mapping and the index alive on its own
    assert float(vectors[5] @ cs[5].vector) == pytest.approx(1.0, abs=1e-6)


def test_empty_segment_round_trip(tmp_path: Path) -> None:
    seg = Segment.build(rows_of([], DIM), DIM)
    seg.save(tmp_path, "empty")
    back = Segment.load(tmp_path, "empty", dim=DIM)
    assert len(back) == 0
    assert len(back.dense_top(np.ones(DIM, np.float32), 5)[0]) == 0
    assert len(back.bm25_top(["w1"], 5, CollectionStats.of([(back.postings, None)]))[0]) == 0


def corrupt(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_or_mismatched_files_are_stale(tmp_path: Path, rng: np.random.Generator) -> None:
    seg = Segment.build(rows_of(chunks(rng, list(range(1, 21))), DIM), DIM)
    seg.save(tmp_path, "good")
    path = segment_path(tmp_path, "good")
    size = path.stat().st_size
    with pytest.raises(StaleOrCorrupt, match="missing"):
        Segment.load(tmp_path, "other")
    with pytest.raises(StaleOrCorrupt, match="dim"):
        Segment.load(tmp_path, "good", dim=DIM + 1)
    os.link(path, segment_path(tmp_path, "copy"))
    with pytest.raises(StaleOrCorrupt, match="seg_id"):  # a file renamed to another id
        Segment.load(tmp_path, "copy")
    os.unlink(segment_path(tmp_path, "copy"))
    for at in (size - 1, size // 2, size - 4 * 20 * DIM):  # vectors, middle, last byte
        seg.save(tmp_path, "good")
        corrupt(path, at)
        with pytest.raises(StaleOrCorrupt, match="checksum"):
            Segment.load(tmp_path, "good")
    seg.save(tmp_path, "good")
    with open(path, "r+b") as fh:
        fh.truncate(size - 10)
    with pytest.raises(StaleOrCorrupt, match="truncated"):
        Segment.load(tmp_path, "good")
    path.write_bytes(b"not an index")
    with pytest.raises(StaleOrCorrupt, match="not an index"):
        Segment.load(tmp_path, "good")
    seg.save(tmp_path, "good")
    corrupt(path, 20)  # inside the JSON header
    with pytest.raises(StaleOrCorrupt):
        Segment.load(tmp_path, "good")


def boom(*_: object) -> None:
    raise OSError("disk on fire")


@pytest.mark.parametrize("where", ["fsync", "replace", "faiss"])
def test_failed_write_leaves_no_temp_file_and_the_old_file(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    old = Segment.build(rows_of(chunks(rng, [1, 2, 3]), DIM), DIM)
    old.save(tmp_path, "s")
    new = Segment.build(rows_of(chunks(rng, [4, 5]), DIM), DIM)
    if where == "faiss":
        monkeypatch.setattr(container, "_write_index", boom)
    else:
        monkeypatch.setattr(container.os, where, boom)
    with pytest.raises(OSError, match="disk on fire"):
        new.save(tmp_path, "s")
    with pytest.raises(OSError, match="disk on fire"):
        new.save(tmp_path, "fresh")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["seg-s.seg"]  # no temp file, no half-written target
    np.testing.assert_array_equal(Segment.load(tmp_path, "s").chunk_ids, [1, 2, 3])


def assert_same_segment(a: Segment, b: Segment) -> None:
    """Same rows with the same columns, terms, vectors and sentences (vocabulary ids may differ)."""
    np.testing.assert_array_equal(a.chunk_ids, b.chunk_ids)
    for name in (
        "ords",
        "starts",
        "ends",
        "vectors",
        "sent_vectors",
        "sent_owner",
        "sent_ptr",
        "sent_starts",
        "sent_ends",
        "text_off",
        "text_blob",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert [a.doc_id(r) for r in range(len(a))] == [b.doc_id(r) for r in range(len(b))]
    assert set(a.doc_table) == set(b.doc_table)
    assert [a.row_terms(r) for r in range(len(a))] == [b.row_terms(r) for r in range(len(b))]
    np.testing.assert_array_equal(a.postings.doc_len, b.postings.doc_len)
    assert sorted(a.postings.terms) == sorted(b.postings.terms)
    sa, sb = CollectionStats.of([(a.postings, None)]), CollectionStats.of([(b.postings, None)])
    assert sa.doc_freq_table() == sb.doc_freq_table()


@pytest.mark.parametrize("hnsw_min_rows", [10_000, 30])
def test_merge_drops_tombstoned_rows_and_keeps_the_rest(
    tmp_path: Path, rng: np.random.Generator, hnsw_min_rows: int
) -> None:
    # interleaved chunk ids across segments, and one segment loaded from disk (memory-mapped)
    a_chunks = chunks(rng, list(range(1, 60, 2)))
    b_chunks = chunks(rng, list(range(2, 40, 2)))
    c_chunks = chunks(rng, list(range(100, 110)))
    a = Segment.build(rows_of(a_chunks, DIM), DIM)
    b = Segment.build(rows_of(b_chunks, DIM), DIM)
    Segment.build(rows_of(c_chunks, DIM), DIM).save(tmp_path, "c")
    c = Segment.load(tmp_path, "c")
    dead_a = rng.random(len(a)) < 0.3
    dead_c = np.ones(len(c), bool)
    dead_c[3] = False
    merged = merge([a, b, c], [dead_a, None, dead_c], hnsw_min_rows=hnsw_min_rows)
    live = [ch for ch, d in zip(a_chunks, dead_a, strict=True) if not d] + b_chunks + [c_chunks[3]]
    fresh = Segment.build(rows_of(live, DIM), DIM)
    assert_same_segment(merged, fresh)
    assert merged.is_hnsw == (len(live) >= hnsw_min_rows)
    gone = {ch.chunk_id for ch, d in zip(a_chunks, dead_a, strict=True) if d}
    assert gone and not gone & set(merged.chunk_ids.tolist())
    # and the merged segment saves and loads like any other
    merged.save(tmp_path, "m")
    assert_same_segment(Segment.load(tmp_path, "m"), fresh)


def test_merge_of_only_dead_rows_is_empty_and_duplicates_are_refused(
    rng: np.random.Generator,
) -> None:
    a = Segment.build(rows_of(chunks(rng, [1, 2]), DIM), DIM)
    empty = merge([a], [np.ones(2, bool)])
    assert len(empty) == 0 and empty.doc_table == ()
    b = Segment.build(rows_of(chunks(rng, [2, 3]), DIM), DIM)
    with pytest.raises(ValueError, match="more than one segment"):
        merge([a, b], [None, None])
    np.testing.assert_array_equal(
        merge([a, b], [np.array([False, True]), None]).chunk_ids, [1, 2, 3]
    )
