"""The set of segments a search reads: live segments, their tombstones and the collection's BM25
statistics, changed only by building a new set (copy-on-write).

A writer adds a segment for new chunks (`with_added`), tombstones deleted chunks
(`with_deleted`: an update is a delete plus an add) and swaps a merged segment in for the ones it
was built from (`with_merged`). Each returns a new `SegmentSet` sharing the unchanged segments and
masks; a reader holding the old set keeps seeing exactly the old state. Tombstones are boolean
masks per segment rather than a set of chunk ids because SQLite may hand a deleted chunk's id
(`INTEGER PRIMARY KEY`, no AUTOINCREMENT) to a new chunk: a mask kills the old row only.

Searches run per segment with the collection-wide statistics and merge per-segment top-n lists;
with a fixed tie-break (score, then chunk id) the result equals a search over one segment
holding every live row. `pick_merge` is a tiered merge policy; `save`/`load` persist the set as a
manifest (segment ids and checksums, tombstone bitmaps, the SQLite generation it reflects)
written with the same stamped, checksummed, atomic container files as the segments.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.index.arrays import top_n
from rag.index.bm25 import CollectionStats, TermStats
from rag.index.container import read_container, read_header, write_container
from rag.index.persist import StaleOrCorrupt
from rag.index.segment import HNSW_MIN_ROWS, Segment, ef_for, merge, segment_path

MANIFEST_FILE = "segments.manifest"
MANIFEST_KIND = "segment-manifest"
MANIFEST_FORMAT = 1

# Tiered merge policy defaults: merge when this many segments share a size tier…
MERGE_MIN_SEGMENTS = 8
# …tiers being powers of this factor above…
MERGE_TIER_FACTOR = 10
# …this floor (every segment this small or smaller is in the lowest tier).
MERGE_FLOOR_ROWS = 1_000
# A segment with at least this share of its rows tombstoned is rewritten on its own.
MERGE_MAX_DEAD_SHARE = 0.5
# No merge makes a segment larger than this: one HNSW graph's recall@10 falls with its size
# (benchmarks/bench_segments.py data, M=16, efConstruction=80, efSearch=128: 0.996 at 100k rows,
# 0.988 at 200k, 0.952 at 300k, 0.60 at 1M), while searching several graphs costs ~1-2 ms each.
MERGE_MAX_ROWS = 200_000


def new_segment_id() -> str:
    """A fresh segment id: random, so a crash between writing a segment and its manifest can
    never leave a file that a later, different segment would be mistaken for."""
    return uuid.uuid4().hex


@dataclass(frozen=True, eq=False)
class SegmentEntry:
    """One live segment of a set and its tombstones (all arrays read-only, shared between sets)."""

    seg_id: str
    segment: Segment
    dead: np.ndarray | None = None  # bool (n,): tombstoned rows; None when there are none
    dead_df: np.ndarray | None = None  # int32 (terms,): document frequency the dead rows carry
    n_dead: int = 0
    dead_len: int = 0  # tokens in the dead rows

    live: np.ndarray | None = field(init=False, repr=False)  # bool: rows not tombstoned (None: all)

    def __post_init__(self) -> None:
        """Compute the live mask once, at construction (searches read it every time)."""
        object.__setattr__(self, "live", None if self.dead is None else ~self.dead)

    @property
    def n_live(self) -> int:
        """Rows not tombstoned."""
        return self.segment.n_rows - self.n_dead

    def with_dead_rows(self, rows: np.ndarray) -> SegmentEntry:
        """This entry with `rows` (local, currently live) tombstoned too."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if not len(rows):
            return self
        dead = np.zeros(self.segment.n_rows, bool) if self.dead is None else self.dead.copy()
        dead[rows] = True
        dead.flags.writeable = False
        added = self.segment.postings.dead_df(rows)
        dead_df = added if self.dead_df is None else self.dead_df + added
        dead_df.flags.writeable = False
        return SegmentEntry(
            seg_id=self.seg_id,
            segment=self.segment,
            dead=dead,
            dead_df=dead_df,
            n_dead=self.n_dead + len(rows),
            dead_len=self.dead_len + int(self.segment.postings.doc_len[rows].sum(dtype=np.int64)),
        )


@dataclass(frozen=True, eq=False)
class Hits:
    """Search results across segments, best first: parallel arrays."""

    chunk_ids: np.ndarray  # int64: the global key of each hit
    segments: np.ndarray  # int64: index into `SegmentSet.entries`
    rows: np.ndarray  # int64: local row in that segment
    scores: np.ndarray  # float32

    def __len__(self) -> int:
        """Number of hits."""
        return len(self.chunk_ids)


@dataclass(frozen=True, eq=False)
class SegmentSet:
    """An immutable set of live segments with tombstones (see the module docstring)."""

    entries: tuple[SegmentEntry, ...] = ()

    # ---- state ----------------------------------------------------------------------------

    stats: TermStats = field(init=False, repr=False)  # BM25 statistics over the live rows

    def __post_init__(self) -> None:
        """Compute the collection-wide BM25 statistics once, at construction (from counters kept
        per entry: no scan)."""
        object.__setattr__(
            self,
            "stats",
            CollectionStats(
                n_docs=sum(e.n_live for e in self.entries),
                total_len=sum(e.segment.postings.total_len - e.dead_len for e in self.entries),
                parts=tuple((e.segment.postings, e.dead_df) for e in self.entries),
            ),
        )

    @classmethod
    def pooled(cls, segment: Segment, stats: TermStats) -> SegmentSet:
        """A set of one segment searched with `stats` instead of its own: the candidate pool of
        a search run in a database (`rag.retrieve.pg`), its rows scored with the whole
        collection's statistics, so that they score exactly as in a set holding every row."""
        out = cls((SegmentEntry(new_segment_id(), segment),))
        object.__setattr__(out, "stats", stats)
        return out

    def __len__(self) -> int:
        """Number of live rows."""
        return sum(e.n_live for e in self.entries)

    @property
    def seg_ids(self) -> tuple[str, ...]:
        """The ids of the segments, in entry order."""
        return tuple(e.seg_id for e in self.entries)

    def entry(self, seg_id: str) -> SegmentEntry:
        """The entry of segment `seg_id` (KeyError if absent)."""
        for e in self.entries:
            if e.seg_id == seg_id:
                return e
        raise KeyError(seg_id)

    def locate(self, chunk_ids: Iterable[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment index and local row of each chunk id's *live* row (−1, −1 where none)."""
        ids = np.asarray(
            list(chunk_ids) if not isinstance(chunk_ids, np.ndarray) else chunk_ids, dtype=np.int64
        )
        segs = np.full(len(ids), -1, dtype=np.int64)
        rows = np.full(len(ids), -1, dtype=np.int64)
        for i, e in enumerate(self.entries):
            found = e.segment.rows_of_chunks(ids)
            ok = found >= 0
            if e.dead is not None:
                ok &= ~e.dead[np.maximum(found, 0)]
            segs[ok], rows[ok] = i, found[ok]
        return segs, rows

    # ---- copy-on-write changes --------------------------------------------------------------

    def with_added(self, segment: Segment, seg_id: str | None = None) -> SegmentSet:
        """A new set with `segment` added (its chunk ids must not be live in this set)."""
        seg_id = seg_id or new_segment_id()
        if seg_id in self.seg_ids:
            raise ValueError(f"segment id {seg_id} is already in the set")
        if (self.locate(segment.chunk_ids)[0] >= 0).any():
            raise ValueError("with_added: some chunk ids of the new segment are live already")
        return SegmentSet((*self.entries, SegmentEntry(seg_id, segment)))

    def with_deleted(self, chunk_ids: Iterable[int] | np.ndarray) -> SegmentSet:
        """A new set with the live rows of `chunk_ids` tombstoned (ids not live are ignored)."""
        segs, rows = self.locate(chunk_ids)
        if not (segs >= 0).any():
            return self
        return SegmentSet(
            tuple(
                e.with_dead_rows(rows[segs == i]) if (segs == i).any() else e
                for i, e in enumerate(self.entries)
            )
        )

    def with_merged(
        self, old_ids: Sequence[str], new_segment: Segment, seg_id: str | None = None
    ) -> SegmentSet:
        """A new set in which `new_segment` (merged from the segments `old_ids`) replaces them.

        Deletes that reached the old segments after the merge read them are carried over: a
        merged row stays live only if its chunk id is still live in one of the old segments.
        (Rows never come back to life, and a chunk id is live in at most one segment, so this
        identifies each merged row's source exactly.)
        """
        old = set(old_ids)
        if not old or not old <= set(self.seg_ids):
            raise ValueError(f"with_merged: unknown segments {sorted(old - set(self.seg_ids))}")
        seg_id = seg_id or new_segment_id()
        if seg_id in self.seg_ids:  # an old segment's id too: its file holds the old rows
            raise ValueError(f"segment id {seg_id} is already in the set")
        ids = new_segment.chunk_ids
        known = np.zeros(len(ids), dtype=bool)
        live = np.zeros(len(ids), dtype=bool)
        for e in self.entries:
            if e.seg_id in old:
                rows = e.segment.rows_of_chunks(ids)
                found = rows >= 0
                known |= found
                live[found] |= True if e.dead is None else ~e.dead[rows[found]]
        if not known.all():
            raise ValueError("with_merged: the new segment holds chunks the old segments lack")
        entry = SegmentEntry(seg_id, new_segment).with_dead_rows(np.flatnonzero(~live))
        out: list[SegmentEntry] = []
        placed = new_segment.n_rows == 0  # a merge of only dead rows just drops the old segments
        for e in self.entries:
            if e.seg_id not in old:
                out.append(e)
            elif not placed:  # the merged segment takes the first old one's place
                out.append(entry)
                placed = True
        return SegmentSet(tuple(out))

    def merged_segment(
        self, seg_ids: Sequence[str], *, hnsw_min_rows: int = HNSW_MIN_ROWS
    ) -> Segment:
        """Merge the given segments of this set, dropping their tombstoned rows (slow: run it
        off the request path, then commit with `with_merged`)."""
        entries = [self.entry(s) for s in seg_ids]
        return merge(
            [e.segment for e in entries], [e.dead for e in entries], hnsw_min_rows=hnsw_min_rows
        )

    def merge_candidates(self) -> tuple[str, ...]:
        """The segments the tiered policy (`pick_merge`) would merge now (empty: none)."""
        picked = pick_merge([e.n_live for e in self.entries], [e.n_dead for e in self.entries])
        return tuple(self.entries[i].seg_id for i in picked)

    # ---- search -----------------------------------------------------------------------------

    def allowed(self, i: int, mask: np.ndarray | None = None) -> np.ndarray | None:
        """The rows of entry `i` a search may return: live, and in `mask` if one is given."""
        live = self.entries[i].live
        if mask is None:
            return live
        return mask if live is None else live & mask

    def search_lexical(
        self,
        terms: Sequence[str],
        n: int,
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> Hits:
        """The `n` best live rows by BM25 over all segments (collection-wide statistics), best
        first, ties by chunk id; `masks` optionally restrict each entry's rows (a filter)."""
        stats = self.stats
        query = stats.query(terms)  # weighed once, not once per segment
        parts = [
            (i, *e.segment.bm25_top(query, n, stats, self.allowed(i, _mask(masks, i))))
            for i, e in enumerate(self.entries)
        ]
        return self._merge_hits(parts, n)

    def search_dense(
        self,
        query: np.ndarray,
        n: int,
        masks: Sequence[np.ndarray | None] | None = None,
        *,
        exact: bool = False,
    ) -> Hits:
        """The `n` live rows with the highest chunk cosine over all segments, best first, ties by
        chunk id (HNSW segments are approximate unless `exact`)."""
        ef = ef_for(sum(e.segment.is_hnsw for e in self.entries))
        parts = [
            (
                i,
                *e.segment.dense_top(
                    query, n, self.allowed(i, _mask(masks, i)), exact=exact, ef_search=ef
                ),
            )
            for i, e in enumerate(self.entries)
        ]
        return self._merge_hits(parts, n)

    def bm25_scores(
        self, terms: Sequence[str], segments: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """BM25 scores (float32) of given (segment index, local row) pairs."""
        stats = self.stats
        query = stats.query(terms)
        return self._per_segment(segments, rows, lambda seg, r: seg.bm25_scores(query, r, stats))

    def chunk_cosines(
        self, query: np.ndarray, segments: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """Exact chunk cosines (float32) of given (segment index, local row) pairs."""
        return self._per_segment(segments, rows, lambda seg, r: seg.chunk_cosines(query, r))

    def sample(self, k: int = 1024, seed: int = 0) -> list[tuple[int, np.ndarray, float]]:
        """A fixed random sample of each segment's rows (up to `k`, live ones kept), as
        (entry index, rows, weight): weight = live rows / sampled live rows, so a weighted
        statistic (`weighted_median`) estimates the collection's despite unequal segments."""
        out = []
        for i, e in enumerate(self.entries):
            rows = e.segment.sample_rows(k, seed)
            if e.dead is not None:
                rows = rows[~e.dead[rows]]
            if len(rows):
                out.append((i, rows, e.n_live / len(rows)))
        return out

    def _per_segment(
        self,
        segments: np.ndarray,
        rows: np.ndarray,
        fn: Callable[[Segment, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Apply `fn(segment, rows)` per segment to pairs grouped by segment; results in input order."""
        segments = np.asarray(segments, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        for i in np.unique(segments).tolist():
            sel = segments == i
            out[sel] = fn(self.entries[i].segment, rows[sel])
        return out

    def _merge_hits(self, parts: list[tuple[int, np.ndarray, np.ndarray]], n: int) -> Hits:
        """Global top-n of per-segment top-n lists (exact: the global top-n is in their union)."""
        segs = np.concatenate(
            [np.full(len(r), i, np.int64) for i, r, _ in parts] or [np.zeros(0, np.int64)]
        )
        rows = np.concatenate([r for _, r, _ in parts] or [np.zeros(0, np.int64)])
        scores = np.concatenate([s for _, _, s in parts] or [np.zeros(0, np.float32)])
        ids = np.concatenate(
            [self.entries[i].segment.chunk_ids[r] for i, r, _ in parts] or [np.zeros(0, np.int64)]
        )
        pick = top_n(scores, ids, n)
        return Hits(ids[pick], segs[pick], rows[pick], scores[pick].astype(np.float32))

    # ---- persistence ------------------------------------------------------------------------

    def save(self, directory: Path, generation: int) -> None:
        """Write every segment not yet on disk, then the manifest (atomically, last: a reader
        of the directory sees the old manifest and its files, or the new one and its files).

        A segment whose file exists is not rewritten (segments are immutable): segment ids must
        never be reused for other content, which `new_segment_id` guarantees."""
        listed = []
        parts: dict[str, np.ndarray] = {}
        for e in self.entries:
            path = segment_path(directory, e.seg_id)
            head = read_header(path) if path.exists() else e.segment.save(directory, e.seg_id)
            listed.append({"id": e.seg_id, "rows": e.segment.n_rows, "sha256": head.get("sha256")})
            if e.dead is not None:
                parts[f"dead.{e.seg_id}"] = np.packbits(e.dead, bitorder="little")
        write_container(
            directory / MANIFEST_FILE,
            {
                "kind": MANIFEST_KIND,
                "format": MANIFEST_FORMAT,
                "generation": generation,
                "segments": listed,
            },
            parts,
        )

    @classmethod
    def load(
        cls,
        directory: Path,
        generation: int | None = None,
        *,
        dim: int | None = None,
        known: Mapping[str, Segment] | None = None,
    ) -> SegmentSet:
        """Load the manifest and its segments (memory-mapped); `StaleOrCorrupt` if the manifest
        is missing, damaged or of another `generation`, or a segment is not the one it lists.
        Segments in `known` (by id) are taken as they are, not mapped and verified again:
        segments are immutable and their ids never reused."""
        path = directory / MANIFEST_FILE
        expect: dict[str, object] = {"kind": MANIFEST_KIND, "format": MANIFEST_FORMAT}
        if generation is not None:
            expect["generation"] = generation
        box = read_container(path, expect)
        entries = []
        for item in box.header.get("segments", []):
            seg_id = str(item["id"])
            segment = (known or {}).get(seg_id)
            if segment is None:
                head = read_header(segment_path(directory, seg_id))
                if head.get("sha256") != item.get("sha256"):
                    raise StaleOrCorrupt(f"segment {seg_id} is not the one the manifest lists")
                segment = Segment.load(directory, seg_id, dim=dim)
            entry = SegmentEntry(seg_id, segment)
            bits = box.arrays.get(f"dead.{seg_id}")
            if bits is not None:
                dead = np.unpackbits(bits, count=segment.n_rows, bitorder="little").astype(bool)
                entry = entry.with_dead_rows(np.flatnonzero(dead))
            entries.append(entry)
        return cls(tuple(entries))

    @staticmethod
    def generation_on_disk(directory: Path) -> int | None:
        """The SQLite generation the saved manifest reflects (None: no readable manifest)."""
        try:
            value = read_header(directory / MANIFEST_FILE).get("generation")
        except StaleOrCorrupt:
            return None
        return value if isinstance(value, int) else None

    @staticmethod
    def unreferenced_files(directory: Path) -> list[Path]:
        """Segment files the saved manifest does not list (left by merges or crashes): safe to
        delete once no process still has an older manifest's segments open."""
        try:
            listed = {
                str(s["id"]) for s in read_header(directory / MANIFEST_FILE).get("segments", [])
            }
        except StaleOrCorrupt:
            return []
        return sorted(p for p in directory.glob("seg-*.seg") if p.name[4:-4] not in listed)


def pick_merge(
    sizes: Sequence[int],
    dead: Sequence[int] | None = None,
    *,
    min_segments: int = MERGE_MIN_SEGMENTS,
    factor: int = MERGE_TIER_FACTOR,
    floor: int = MERGE_FLOOR_ROWS,
    max_rows: int = MERGE_MAX_ROWS,
    max_dead_share: float = MERGE_MAX_DEAD_SHARE,
) -> tuple[int, ...]:
    """Tiered merge policy: which segments (indices into `sizes`, live rows each) to merge now.

    Segments fall in tiers by size (≤ floor, ≤ floor·factor, …); the lowest tier holding at
    least `min_segments` segments has its `min_segments` smallest merged — so every row is
    rewritten about log_factor(N / floor) times over its life, not once per write. A merge never
    exceeds `max_rows` rows: it takes fewer of the smallest (at least two), and segments of
    `max_rows` or more are not merged again. Failing all that, the segment with the largest
    tombstoned share, if at least `max_dead_share`, is rewritten on its own (reclaims space and
    dead postings). Empty: nothing to do.
    """

    def tier(size: int) -> int:
        return 0 if size <= floor else 1 + int(math.log(size / floor, factor))

    by_tier: dict[int, list[int]] = {}
    for i, size in enumerate(sizes):
        if size < max_rows:
            by_tier.setdefault(tier(size), []).append(i)
    for t in sorted(by_tier):
        members = sorted(by_tier[t], key=lambda i: (sizes[i], i))
        if len(members) < min_segments:
            continue
        picked: list[int] = []
        total = 0
        for i in members[:min_segments]:
            if total + sizes[i] > max_rows:
                break
            picked.append(i)
            total += sizes[i]
        if len(picked) >= 2:
            return tuple(sorted(picked))
    if dead is not None:
        shares = [d / (s + d) if s + d else 0.0 for s, d in zip(sizes, dead, strict=True)]
        worst = max(range(len(shares)), key=lambda i: shares[i], default=None)
        if worst is not None and shares[worst] >= max_dead_share:
            return (worst,)
    return ()


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The weighted median of `values` (the smallest value whose cumulative weight reaches half)."""
    if not len(values):
        return 0.0
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cum, cum[-1] / 2.0)])


def _mask(masks: Sequence[np.ndarray | None] | None, i: int) -> np.ndarray | None:
    """The filter mask of entry `i`, if any."""
    return None if masks is None else masks[i]
