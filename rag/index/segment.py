"""An immutable index segment: chunk rows with their texts, BM25 postings, chunk vectors (FAISS)
and sentence vectors (float16), built once and then only searched, saved, loaded and merged.

Rows are ordered by SQLite chunk id (`chunk_ids`, int64, strictly increasing); a row's number
inside the segment is its *local row*. Nothing here knows about tombstones: every search takes an
optional boolean `allowed` mask over the segment's rows, which the caller (`SegmentSet`) builds
from its tombstones and any filter.

Scale decisions (a segment may hold a million chunks):
- texts are one UTF-8 blob plus offsets, decoded per row on demand — never a million `str`s;
  document ids are a small table plus an int32 index per row;
- chunk vectors live once, inside the FAISS index (`vectors` is a read-only zero-copy view of its
  storage); below `HNSW_MIN_ROWS` rows the index is exact (`IndexFlatIP`), above it is
  `IndexHNSWFlat` (inner product on L2-normalised vectors, i.e. cosine);
- sentence vectors are float16 (half the bytes; cosines computed in float32);
- a saved segment is one container file (`rag.index.container`): loading verifies its checksum in
  blocks and maps it read-only, FAISS included (`ZeroCopyIOReader` + `IO_FLAG_MMAP_IFC` make the
  index's vector storage point into the mapping), so RSS stays low and processes share pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.index.arrays import concat_ranges, csr_pointer, decode_strings, encode_strings, top_n
from rag.index.bm25 import (
    BM25Query,
    EncodedTokens,
    Postings,
    TermStats,
    encode_tokens,
    merge_postings,
)
from rag.index.container import FaissPart, read_container, write_container
from rag.index.persist import StaleOrCorrupt

# FAISS's bundled type stubs lack its IO, selector and search-parameter classes: reach them untyped.
_faiss: Any = faiss

SEGMENT_FORMAT = 1
SEGMENT_KIND = "segment"

# Exact search below this many rows (a flat scan of 20k × 512 floats is about a millisecond),
# HNSW above. Build-time settings, passed to `build`/`merge` to override.
HNSW_MIN_ROWS = 20_000
# Graph degree and build/search beam widths: recall@10 vs exact ≥ 0.98 on clustered 512-d
# vectors up to 200k rows (1.0 at 30k in tests/index/test_hnsw.py; 0.996 at 100k and 0.988 at
# 200k on benchmarks/bench_segments.py's data, but 0.95 at 300k and 0.60 at 1M: the merge policy
# caps segments at `segments.MERGE_MAX_ROWS`). M=32 reached the same recall at 30k but built ~3x
# slower, and every merge into an HNSW segment rebuilds its graph.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 80
# Real embeddings are harder than bench_segments' clustered vectors: on 100k chunks embedded by
# the default embedder with CMRC questions (benchmarks/bench_scale.py), recall@10 vs exact was
# 0.917 at efSearch 128, 0.956 at 256, 0.978 at 512, 0.983 at 640 (4.3 ms), 0.993 at 1024 (6.8 ms).
HNSW_EF_SEARCH = 640
# Searched over several HNSW segments, each holds fewer of the true top-k, so each walk can be
# narrower for the same recall of the merged result: efSearch / (HNSW segments)^(1/4). On 1M
# chunks in 8 HNSW segments (bench_scale.py's index): recall@10 vs exact 0.977 at ef 256 (9.6 ms
# for the 8 walks), 0.986 at 384 (13.6 ms), 0.991 at 640 (23.1 ms); the rule gives 381.
HNSW_EF_SEGMENTS_POWER = 0.25
# A filtered HNSW search widens its beam by 1 / (allowed share), up to this (a wider beam costs
# more than scoring the allowed rows exactly: see `Segment.dense_top`).
HNSW_EF_FILTERED_MAX = 1_024

_SEG_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")


@dataclass(frozen=True, eq=False)
class SegmentRows:
    """The columns a segment is built from, one entry per chunk, rows ordered by chunk id."""

    chunk_ids: np.ndarray  # int64 (n,), strictly increasing (SQLite `chunks.id`)
    doc_ids: Sequence[str]
    ords: np.ndarray  # int (n,)
    starts: np.ndarray  # int (n,): document offsets of each chunk
    ends: np.ndarray
    texts: Sequence[str]
    tokens: Sequence[Sequence[str]] | EncodedTokens  # BM25 tokens of each chunk
    vectors: np.ndarray  # float32 (n, dim), L2-normalised
    sent_vectors: np.ndarray  # (m, dim), L2-normalised; stored as float16
    sent_owner: np.ndarray  # int (m,): row of each sentence, non-decreasing
    sent_starts: np.ndarray  # int (m,): document offsets of each sentence
    sent_ends: np.ndarray


@dataclass(frozen=True, eq=False)
class SentenceScores:
    """Cosines of a query to the sentences of some rows (`Segment.best_sentence`)."""

    best: np.ndarray  # float32 (rows,): best sentence cosine per row; −inf for a row without any
    ptr: np.ndarray  # int64 (rows + 1,): sentences of the i-th row are [ptr[i], ptr[i + 1])
    cos: np.ndarray  # float32: cosine of each of those sentences
    starts: np.ndarray  # int64: document offsets of each of those sentences
    ends: np.ndarray


@dataclass(frozen=True, eq=False)
class Segment:
    """An immutable, searchable set of chunk rows (see the module docstring)."""

    dim: int
    chunk_ids: np.ndarray  # int64 (n,), strictly increasing
    doc_idx: np.ndarray  # int32 (n,): index into doc_table
    doc_table: tuple[str, ...]  # the distinct document ids of the segment
    ords: np.ndarray  # int64 (n,)
    starts: np.ndarray  # int64 (n,)
    ends: np.ndarray  # int64 (n,)
    text_blob: np.ndarray  # uint8: all texts' UTF-8
    text_off: np.ndarray  # int64 (n + 1,): byte range of each row's text
    postings: Postings
    index: faiss.Index  # IndexFlatIP or IndexHNSWFlat; valid only while this segment lives
    vectors: np.ndarray  # float32 (n, dim), read-only view of the index's own storage
    sent_vectors: np.ndarray  # float16 (m, dim)
    sent_owner: np.ndarray  # int32 (m,): local row of each sentence, non-decreasing
    sent_ptr: np.ndarray  # int64 (n + 1,): sentences of row r are [sent_ptr[r], sent_ptr[r + 1])
    sent_starts: np.ndarray  # int64 (m,): document offsets
    sent_ends: np.ndarray
    keepalive: tuple[object, ...] = ()  # file mapping / FAISS reader the arrays point into

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, rows: SegmentRows, dim: int, *, hnsw_min_rows: int = HNSW_MIN_ROWS) -> Segment:
        """Build a segment from plain columns (tokenised and embedded already)."""
        n = len(rows.chunk_ids)
        chunk_ids = np.asarray(rows.chunk_ids, dtype=np.int64)
        vectors = np.ascontiguousarray(rows.vectors, dtype=np.float32).reshape(-1, dim)
        sent_owner = np.asarray(rows.sent_owner, dtype=np.int64)
        m = len(sent_owner)
        for name, size, want in (
            ("doc_ids", len(rows.doc_ids), n),
            ("ords", len(rows.ords), n),
            ("starts", len(rows.starts), n),
            ("ends", len(rows.ends), n),
            ("texts", len(rows.texts), n),
            ("tokens", len(rows.tokens), n),
            ("vectors", len(vectors), n),
            ("sent_vectors", len(rows.sent_vectors), m),
            ("sent_starts", len(rows.sent_starts), m),
            ("sent_ends", len(rows.sent_ends), m),
        ):
            if size != want:
                raise ValueError(f"SegmentRows.{name} has {size} entries, expected {want}")
        if n > 1 and not (np.diff(chunk_ids) > 0).all():
            raise ValueError("SegmentRows.chunk_ids must be strictly increasing")
        if m and (sent_owner[0] < 0 or sent_owner[-1] >= n or (np.diff(sent_owner) < 0).any()):
            raise ValueError("SegmentRows.sent_owner must be non-decreasing rows of the segment")
        tokens = (
            rows.tokens if isinstance(rows.tokens, EncodedTokens) else encode_tokens(rows.tokens)
        )
        table = list(dict.fromkeys(rows.doc_ids))
        position = {d: i for i, d in enumerate(table)}
        doc_idx = np.fromiter((position[d] for d in rows.doc_ids), dtype=np.int32, count=n)
        text_blob, text_off = encode_strings(rows.texts)
        return cls._assemble(
            dim=dim,
            chunk_ids=chunk_ids,
            doc_idx=doc_idx,
            doc_table=tuple(table),
            ords=np.asarray(rows.ords, dtype=np.int64),
            starts=np.asarray(rows.starts, dtype=np.int64),
            ends=np.asarray(rows.ends, dtype=np.int64),
            text_blob=text_blob,
            text_off=text_off,
            postings=Postings.build(tokens),
            index=build_index(vectors, dim, hnsw_min_rows),
            sent_vectors=np.ascontiguousarray(rows.sent_vectors, dtype=np.float16).reshape(-1, dim),
            sent_owner=sent_owner.astype(np.int32),
            sent_ptr=csr_pointer(np.bincount(sent_owner, minlength=n)),
            sent_starts=np.asarray(rows.sent_starts, dtype=np.int64),
            sent_ends=np.asarray(rows.sent_ends, dtype=np.int64),
        )

    @classmethod
    def _assemble(
        cls, *, index: faiss.Index, keepalive: tuple[object, ...] = (), **cols: Any
    ) -> Segment:
        """A segment around a FAISS index; `vectors` becomes a view of the index's storage."""
        n, dim = int(index.ntotal), int(index.d)
        return cls(
            index=index,
            vectors=_storage_view(index, n, dim, keepalive),
            keepalive=keepalive,
            **cols,
        )

    # ---- persistence ----------------------------------------------------------------------

    def save(self, directory: Path, seg_id: str) -> dict[str, Any]:
        """Write the segment atomically to `directory` as `segment_path(directory, seg_id)`;
        returns the file's header (its `sha256` identifies the content)."""
        parts: dict[str, np.ndarray | FaissPart] = {
            "chunk_ids": self.chunk_ids,
            "doc_idx": self.doc_idx,
            "ords": self.ords,
            "starts": self.starts,
            "ends": self.ends,
            "text_off": self.text_off,
            "sent_owner": self.sent_owner,
            "sent_ptr": self.sent_ptr,
            "sent_starts": self.sent_starts,
            "sent_ends": self.sent_ends,
        }
        doc_blob, doc_off = encode_strings(self.doc_table)
        parts.update(doc_blob=doc_blob, doc_off=doc_off)
        parts.update({f"lex.{k}": v for k, v in self.postings.arrays().items()})
        # big parts last; the index's vector storage ends the file, aligned
        parts["text_blob"] = self.text_blob
        parts["sent_vectors"] = self.sent_vectors
        parts["index"] = FaissPart(self.index, tail=4 * self.n_rows * self.dim)
        header = {
            "kind": SEGMENT_KIND,
            "format": SEGMENT_FORMAT,
            "seg_id": seg_id,
            "dim": self.dim,
            "rows": self.n_rows,
            "sentences": len(self.sent_owner),
            "index": "hnsw" if self.is_hnsw else "flat",
        }
        return write_container(segment_path(directory, seg_id), header, parts)

    @classmethod
    def load(cls, directory: Path, seg_id: str, *, dim: int | None = None) -> Segment:
        """Load a saved segment, memory-mapped; `StaleOrCorrupt` if it is missing, damaged, or
        not segment `seg_id` (of dimension `dim`, if given)."""
        path = segment_path(directory, seg_id)
        expect: dict[str, Any] = {"kind": SEGMENT_KIND, "format": SEGMENT_FORMAT, "seg_id": seg_id}
        if dim is not None:
            expect["dim"] = dim
        box = read_container(path, expect)
        a, head = box.arrays, box.header
        try:
            n, m, d = int(head["rows"]), int(head["sentences"]), int(head["dim"])
            postings = Postings.from_arrays({k: a[f"lex.{k}"] for k in Postings.ARRAYS})
            blob = a["index"]
            reader = _faiss.ZeroCopyIOReader(faiss.swig_ptr(blob), blob.nbytes)
            index = faiss.read_index(reader, faiss.IO_FLAG_MMAP_IFC)
            doc_table = tuple(decode_strings(a["doc_blob"], a["doc_off"]))
        except (KeyError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
            raise StaleOrCorrupt(f"{path.name}: unreadable segment ({exc})") from exc
        shapes_ok = (
            int(index.ntotal) == n
            and int(index.d) == d
            and all(len(a[k]) == n for k in ("chunk_ids", "doc_idx", "ords", "starts", "ends"))
            and len(a["text_off"]) == len(a["sent_ptr"]) == n + 1
            and a["sent_vectors"].shape == (m, d)
            and all(len(a[k]) == m for k in ("sent_owner", "sent_starts", "sent_ends"))
            and postings.n_rows == n
        )
        if not shapes_ok:
            raise StaleOrCorrupt(f"{path.name}: inconsistent segment arrays")
        return cls._assemble(
            dim=d,
            chunk_ids=a["chunk_ids"],
            doc_idx=a["doc_idx"],
            doc_table=doc_table,
            ords=a["ords"],
            starts=a["starts"],
            ends=a["ends"],
            text_blob=a["text_blob"],
            text_off=a["text_off"],
            postings=postings,
            index=index,
            sent_vectors=a["sent_vectors"],
            sent_owner=a["sent_owner"],
            sent_ptr=a["sent_ptr"],
            sent_starts=a["sent_starts"],
            sent_ends=a["sent_ends"],
            # the index's storage points into the mapping: both must outlive every view
            keepalive=(box.mapping, reader),
        )

    # ---- rows -----------------------------------------------------------------------------

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.chunk_ids)

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.chunk_ids)

    @property
    def is_hnsw(self) -> bool:
        """Whether chunk vectors are searched through an HNSW graph (else exactly)."""
        return isinstance(self.index, faiss.IndexHNSW)

    def text(self, row: int) -> str:
        """The text of one row (decoded from the blob)."""
        return bytes(self.text_blob[self.text_off[row] : self.text_off[row + 1]]).decode()

    def texts(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """The texts of some rows."""
        return [self.text(int(r)) for r in rows]

    def doc_id(self, row: int) -> str:
        """The document id of one row."""
        return self.doc_table[int(self.doc_idx[row])]

    def rows_of_docs(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Boolean mask of the rows belonging to any of `doc_ids` (a filter's `allowed`)."""
        wanted = {d for d in doc_ids}
        picked = np.array([i for i, d in enumerate(self.doc_table) if d in wanted], dtype=np.int32)
        return np.isin(self.doc_idx, picked)

    def rows_of_chunks(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Local row of each chunk id (int64), −1 where this segment has no such chunk."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        if not self.n_rows:
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.chunk_ids, ids), self.n_rows - 1)
        return np.where(self.chunk_ids[pos] == ids, pos, -1).astype(np.int64)

    def sentences_of(self, row: int) -> range:
        """Indices of the sentences of one row (into `sent_vectors`, `sent_starts`, …)."""
        return range(int(self.sent_ptr[row]), int(self.sent_ptr[row + 1]))

    def sample_rows(self, k: int, seed: int = 0) -> np.ndarray:
        """A fixed random sample of up to `k` rows (sorted): the same for the same `seed`, so a
        statistic estimated from it (the median cosine) is stable for this segment."""
        rng = np.random.default_rng(seed)
        if k >= self.n_rows:
            return np.arange(self.n_rows, dtype=np.int64)
        return np.sort(rng.choice(self.n_rows, size=k, replace=False)).astype(np.int64)

    # ---- dense search ---------------------------------------------------------------------

    def dense_top(
        self,
        query: np.ndarray,
        n: int,
        allowed: np.ndarray | None = None,
        *,
        exact: bool = False,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `n` rows whose vectors have the highest cosine with `query` (int64 rows and float32
        cosines, best first, ties by row), among the `allowed` rows if a mask is given; an HNSW
        walk's beam is `ef_search` wide (default `HNSW_EF_SEARCH`; at least `n`).

        Flat segments, and HNSW segments with `exact`, are scored exactly. A filtered HNSW search
        widens its beam by 1 / (allowed share) and falls back to exact scoring when that is
        cheaper (few allowed rows) or when the walk finds fewer rows than it should.
        """
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        total = self.n_rows if allowed is None else int(np.count_nonzero(allowed))
        k = min(n, total)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if not self.is_hnsw or exact:
            return self._exact_top(q, k, allowed)
        ef = max(HNSW_EF_SEARCH if ef_search is None else ef_search, k)
        params = _faiss.SearchParametersHNSW(efSearch=ef)
        if allowed is not None:
            ef = min(max(ef, ef * self.n_rows // total), max(HNSW_EF_FILTERED_MAX, k))
            # a graph walk computes about ef · 2M distances (level 0 has 2M links a node): when
            # the allowed rows are fewer, scoring just them is cheaper, and exact
            if total <= ef * 2 * HNSW_M:
                return self._exact_top(q, k, allowed)
            params = _faiss.SearchParametersHNSW(efSearch=ef, sel=_selector(allowed))
        dist, ids = self.index.search(q, k, params=params)
        found = ids[0] >= 0
        rows, cos = ids[0][found].astype(np.int64), dist[0][found].astype(np.float32)
        if len(rows) < k:
            return self._exact_top(q, k, allowed)
        pick = top_n(cos, rows, k)
        return rows[pick], cos[pick]

    def _exact_top(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of the allowed rows (all rows without a mask).

        Without a mask: one matrix-vector product over the stored vectors. With one: FAISS's flat
        scan of the index's own storage through a bitmap selector, which computes only the
        allowed rows' cosines and copies no vectors. (FAISS's unfiltered flat search is avoided
        for single queries: it fans one query out over OpenMP threads, and on busy cores that
        costs 20–30 ms where the product takes one.)
        """
        if allowed is None:
            cos = self.vectors @ q[0]
            rows = np.arange(self.n_rows, dtype=np.int64)
        else:
            params = _faiss.SearchParameters(sel=_selector(allowed))
            dist, ids = _flat_storage(self.index).search(q, k, params=params)
            found = ids[0] >= 0
            rows, cos = ids[0][found].astype(np.int64), dist[0][found]
        pick = top_n(cos, rows, k)
        return rows[pick], cos[pick].astype(np.float32)

    def chunk_cosines(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine (float32) of `query` with the vectors of the given rows."""
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        return (self.vectors[np.asarray(rows, dtype=np.int64)] @ q).astype(np.float32)

    def best_sentence(self, query: np.ndarray, rows: np.ndarray) -> SentenceScores:
        """Cosines of `query` with the sentences of the given rows (float32 math on their float16
        vectors, those rows only) and the best per row."""
        rows = np.asarray(rows, dtype=np.int64)
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        lo, hi = self.sent_ptr[rows], self.sent_ptr[rows + 1]
        idx = concat_ranges(lo, hi)
        cos = (self.sent_vectors[idx].astype(np.float32) @ q).astype(np.float32)
        ptr = csr_pointer(hi - lo)
        best = np.full(len(rows), -np.inf, dtype=np.float32)
        has = hi > lo
        if has.any():
            # maxima over consecutive ranges: empty ranges left out leave the others contiguous
            best[has] = np.maximum.reduceat(cos, ptr[:-1][has])
        return SentenceScores(
            best=best, ptr=ptr, cos=cos, starts=self.sent_starts[idx], ends=self.sent_ends[idx]
        )

    # ---- lexical search -------------------------------------------------------------------

    def bm25_top(
        self,
        query_terms: Sequence[str] | BM25Query,
        n: int,
        stats: TermStats,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `n` best rows by BM25 under the collection's `stats` (positive scores only), best
        first, ties by row. `query_terms` may be `stats.query(terms)`, weighed once for all
        segments of a search."""
        return self.postings.top(query_terms, n, stats, allowed)

    def bm25_scores(
        self, query_terms: Sequence[str] | BM25Query, rows: np.ndarray, stats: TermStats
    ) -> np.ndarray:
        """BM25 scores (float32) of the given rows under the collection's `stats`."""
        return self.postings.scores(query_terms, rows, stats)

    def row_terms(self, row: int) -> dict[str, int]:
        """The BM25 terms of one row with their frequencies."""
        return self.postings.row_terms(row)


def segment_path(directory: Path, seg_id: str) -> Path:
    """Where segment `seg_id` is saved in `directory`."""
    if not _SEG_ID.fullmatch(seg_id):
        raise ValueError(f"bad segment id {seg_id!r}")
    return directory / f"seg-{seg_id}.seg"


def ef_for(hnsw_segments: int) -> int:
    """The HNSW beam width for each of `hnsw_segments` walks whose results are merged."""
    return round(HNSW_EF_SEARCH / max(1, hnsw_segments) ** HNSW_EF_SEGMENTS_POWER)


def build_index(vectors: np.ndarray, dim: int, hnsw_min_rows: int = HNSW_MIN_ROWS) -> faiss.Index:
    """An inner-product FAISS index over `vectors`: exact below `hnsw_min_rows` rows, HNSW above."""
    index: faiss.Index
    if len(vectors) < hnsw_min_rows:
        index = faiss.IndexFlatIP(dim)
    else:
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        index = hnsw
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def merge(
    segments: Sequence[Segment],
    tombstones: Sequence[np.ndarray | None],
    *,
    hnsw_min_rows: int = HNSW_MIN_ROWS,
) -> Segment:
    """Fold `segments` into one, dropping the rows their `tombstones` (bool masks, or None for
    none) mark; nothing is re-tokenised or re-embedded — postings, vectors and texts are copied,
    and only the FAISS index is rebuilt over the merged vectors (HNSW above `hnsw_min_rows`).

    Rows are ordered by chunk id; a chunk id live in two of the segments is an error.
    """
    if not segments or len(segments) != len(tombstones):
        raise ValueError("merge needs segments and one tombstone mask (or None) per segment")
    dim = segments[0].dim
    if any(s.dim != dim for s in segments):
        raise ValueError("cannot merge segments of different dimensions")
    live = [
        np.arange(s.n_rows, dtype=np.int64)
        if dead is None
        else np.flatnonzero(~np.asarray(dead, dtype=bool)).astype(np.int64)
        for s, dead in zip(segments, tombstones, strict=True)
    ]
    ids = np.concatenate([s.chunk_ids[rows] for s, rows in zip(segments, live, strict=True)])
    order = np.argsort(ids, kind="stable")
    n = len(order)
    chunk_ids = ids[order]
    if n > 1 and not (np.diff(chunk_ids) > 0).all():
        raise ValueError("merge: a chunk id is live in more than one segment")
    src_seg = np.concatenate([np.full(len(r), i, np.int64) for i, r in enumerate(live)])[order]
    src_row = np.concatenate(live)[order]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    new_of, at = [], 0
    for s, rows in zip(segments, live, strict=True):
        mapping = np.full(s.n_rows, -1, dtype=np.int64)
        mapping[rows] = position[at : at + len(rows)]
        new_of.append(mapping)
        at += len(rows)

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(s, name)[r] for s, r in zip(segments, live, strict=True)])[
            order
        ]

    # document table: the union of the tables, restricted to documents with a live row
    table: dict[str, int] = {}
    doc_idx = np.concatenate(
        [
            np.array([table.setdefault(d, len(table)) for d in s.doc_table], dtype=np.int32)[
                s.doc_idx[r]
            ]
            if len(r)
            else np.zeros(0, np.int32)
            for s, r in zip(segments, live, strict=True)
        ]
    )[order]
    used = np.unique(doc_idx)
    names = list(table)
    compact = np.zeros(len(names), dtype=np.int32)
    compact[used] = np.arange(len(used), dtype=np.int32)
    # runs of merged rows that are consecutive rows of one source: each is copied as one slice
    # (disjoint chunk-id ranges, the usual case, make one run per source segment)
    brk = np.flatnonzero((np.diff(src_seg) != 0) | (np.diff(src_row) != 1)) + 1
    run_lo = np.concatenate([[0], brk]).astype(np.int64) if n else np.zeros(0, np.int64)
    run_hi = np.concatenate([brk, [n]]).astype(np.int64) if n else np.zeros(0, np.int64)
    texts, vectors, sent_vecs, sent_starts, sent_ends, sent_counts, text_lens = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    for a, b in zip(run_lo.tolist(), run_hi.tolist(), strict=True):
        s = segments[int(src_seg[a])]
        r0, r1 = int(src_row[a]), int(src_row[b - 1]) + 1
        texts.append(s.text_blob[s.text_off[r0] : s.text_off[r1]])
        text_lens.append(np.diff(s.text_off[r0 : r1 + 1]))
        vectors.append(s.vectors[r0:r1])
        s0, s1 = int(s.sent_ptr[r0]), int(s.sent_ptr[r1])
        sent_vecs.append(s.sent_vectors[s0:s1])
        sent_starts.append(s.sent_starts[s0:s1])
        sent_ends.append(s.sent_ends[s0:s1])
        sent_counts.append(np.diff(s.sent_ptr[r0 : r1 + 1]))

    def cat(parts: list[np.ndarray], dtype: type, width: int = 0) -> np.ndarray:
        if parts:
            return np.concatenate(parts).astype(dtype, copy=False)
        return np.zeros((0, width) if width else 0, dtype=dtype)

    counts = cat(sent_counts, np.int64)
    merged_vectors = cat(vectors, np.float32, dim)
    return Segment._assemble(
        dim=dim,
        chunk_ids=chunk_ids,
        doc_idx=compact[doc_idx],
        doc_table=tuple(names[i] for i in used.tolist()),
        ords=column("ords"),
        starts=column("starts"),
        ends=column("ends"),
        text_blob=cat(texts, np.uint8),
        text_off=csr_pointer(cat(text_lens, np.int64)),
        postings=merge_postings(
            [(s.postings, m) for s, m in zip(segments, new_of, strict=True)], n
        ),
        index=build_index(merged_vectors, dim, hnsw_min_rows),
        sent_vectors=cat(sent_vecs, np.float16, dim),
        sent_owner=np.repeat(np.arange(n, dtype=np.int32), counts),
        sent_ptr=csr_pointer(counts),
        sent_starts=cat(sent_starts, np.int64),
        sent_ends=cat(sent_ends, np.int64),
    )


class _Pinned:
    """Exposes memory owned by FAISS (or a file mapping) to numpy, holding its owners alive:
    an array made from it keeps the index and mapping alive for as long as it exists."""

    def __init__(self, address: int, shape: tuple[int, int], owners: tuple[object, ...]) -> None:
        self.owners = owners
        self.__array_interface__ = {
            "data": (address, True),  # read-only: a mapped file must never be written through
            "shape": shape,
            "typestr": "<f4",
            "version": 3,
        }


def _flat_storage(index: faiss.Index) -> Any:
    """The flat index holding the vectors: the index itself, or an HNSW index's storage."""
    return faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index


def _selector(allowed: np.ndarray) -> Any:
    """A FAISS bitmap selector of the allowed rows (one bit per row, little-endian in each byte)."""
    bitmap = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
    sel = _faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
    sel.referenced_objects = [bitmap]  # FAISS keeps a raw pointer: the selector holds the array
    return sel


def _storage_view(
    index: faiss.Index, n: int, dim: int, keepalive: tuple[object, ...]
) -> np.ndarray:
    """The float32 (n, dim) vectors inside a flat or HNSW-flat index, without copying them."""
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    storage: Any = (
        faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    )
    address = faiss.rev_swig_ptr(storage.get_xb(), 1).ctypes.data
    return np.asarray(_Pinned(address, (n, dim), (index, storage, *keepalive)))
