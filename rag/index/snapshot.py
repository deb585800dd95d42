"""An immutable view of the index at one SQLite generation: a `SegmentSet` plus document info.

Searches read one `Snapshot` from start to end; a write makes a new one (the old segments, a new
small segment for the chunks it added, tombstones for those it removed) and swaps it in, so a
response never mixes the state before and after a write.

Rows are addressed globally: entry `i`'s local row `r` is row `offsets[i] + r` (tombstoned rows
keep their numbers; a search never returns them). Per-row accessors decode what one hit needs,
on demand; nothing is computed for every row of the collection.

The segment files and their manifest are caches of SQLite: a snapshot is built in memory, and a
file that cannot be saved (a full or read-only disk, no permission) is logged and left to be
rebuilt by a later load; it never fails a load, nor the write that led to it.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import RagError
from rag.index.arrays import concat_ranges, csr_pointer
from rag.index.bm25 import TermStats
from rag.index.container import read_header
from rag.index.persist import StaleOrCorrupt
from rag.index.segment import HNSW_MIN_ROWS, Segment, SegmentRows, segment_path
from rag.index.segments import MANIFEST_FILE, SegmentSet, new_segment_id
from rag.index.tokenize import TOKENIZER_VERSION, fold_long, tokenize
from rag.ingest.pages import page_spans
from rag.store import faults
from rag.store.base import ReadView
from rag.store.view import DocRow, StoredRows
from rag.types import PageSpan

log = logging.getLogger(__name__)

# Files of the whole-collection indexes this replaced: removed when found.
OLD_FILES = ("dense.idx", "lexical.idx", "sentences.idx")
DERIVED = (MANIFEST_FILE,)
# A segment file no manifest lists is deleted at open only when older than this (another
# process may have written it a moment ago and not yet its manifest).
ORPHAN_AGE_SECONDS = 60.0
FOLDED_CACHE_ROWS = 20_000  # folded chunk texts remembered (the pool rows of recent searches)
MEDIAN_SAMPLE = 1024  # rows whose median dense score stands for the collection's (`gap`)


class TokenSink(Protocol):
    """Where tokens made for chunks stored without them are written back (the store)."""

    @property
    def writable(self) -> bool:
        """Whether the store can be written now."""
        ...

    def set_tokens(self, tokens: Sequence[tuple[int, Sequence[str]]], version: int) -> None:
        """Store `(chunk id, tokens)` pairs made by tokenizer `version`."""
        ...


def sample_rows(
    segments: SegmentSet, masks: Sequence[np.ndarray] | None = None, k: int = MEDIAN_SAMPLE
) -> list[tuple[int, np.ndarray, float]]:
    """A fixed sample of at most about `k` of the searchable rows (live, allowed by `masks`), as
    (entry index, local rows, weight): all of them when there are no more, else each segment's
    share, drawn with a fixed seed (a query's `gap` does not move between two searches of one
    snapshot). The weight is the rows each sampled row stands for."""
    allowed = []
    for i, e in enumerate(segments.entries):
        mask = segments.allowed(i, None if masks is None else masks[i])
        rows = np.arange(e.segment.n_rows, dtype=np.int64) if mask is None else np.flatnonzero(mask)
        if len(rows):
            allowed.append((i, rows))
    total = sum(len(r) for _, r in allowed)
    out = []
    for i, rows in allowed:
        if total <= k:
            out.append((i, rows, 1.0))
            continue
        take = max(1, round(k * len(rows) / total))
        pick = np.sort(np.random.default_rng(0).choice(len(rows), take, replace=False))
        out.append((i, rows[pick], len(rows) / take))
    return out


@dataclass(frozen=True, eq=False)
class DenseSample:
    """The vectors of a fixed sample of rows (`sample_rows`), copied once into contiguous
    float32 matrices: the median dense score every search compares its hits with (`gap`) then
    costs two small matrix-vector products, not a gather and a float16 conversion per query."""

    chunk: np.ndarray  # float32 (s, dim): the sampled rows' chunk vectors
    sent: np.ndarray  # float32 (m, dim): their sentences' vectors
    sent_ptr: np.ndarray  # int64 (s + 1,): sentences of sampled row j are [ptr[j], ptr[j + 1])
    weights: np.ndarray  # float64 (s,): rows of the collection each sampled row stands for

    @classmethod
    def of(cls, segments: SegmentSet, masks: Sequence[np.ndarray] | None = None) -> DenseSample:
        """The sample of `segments`' searchable rows (under `masks`, a filtered search's)."""
        dim = segments.entries[0].segment.dim if segments.entries else 0
        chunks, sents, counts, weights = [], [], [], []
        for i, rows, weight in sample_rows(segments, masks):
            seg = segments.entries[i].segment
            lo, hi = seg.sent_ptr[rows], seg.sent_ptr[rows + 1]
            chunks.append(np.asarray(seg.vectors[rows], dtype=np.float32))
            sents.append(seg.sent_vectors[concat_ranges(lo, hi)].astype(np.float32))
            counts.append(hi - lo)
            weights.append(np.full(len(rows), weight))
        if not chunks:
            empty = np.zeros((0, dim), np.float32)
            return cls(empty, empty, np.zeros(1, np.int64), np.zeros(0))
        return cls(
            chunk=np.ascontiguousarray(np.concatenate(chunks)),
            sent=np.ascontiguousarray(np.concatenate(sents)),
            sent_ptr=csr_pointer(np.concatenate(counts)),
            weights=np.concatenate(weights),
        )

    def __len__(self) -> int:
        """Sampled rows."""
        return len(self.chunk)

    def blended(self, query: np.ndarray, blend: float) -> np.ndarray:
        """Each sampled row's dense score: `blend` × its best sentence cosine + (1 − `blend`) ×
        its chunk cosine (a row without sentences: its chunk cosine)."""
        q = np.asarray(query, dtype=np.float32)
        own = self.chunk @ q
        best = own.copy()
        has = self.sent_ptr[1:] > self.sent_ptr[:-1]
        if has.any():
            cos = self.sent @ q
            best[has] = np.maximum.reduceat(cos, self.sent_ptr[:-1][has])
        return (blend * best + (1.0 - blend) * own).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything a search needs, consistent with SQLite generation `generation`; made by `of`,
    which computes the row offsets and the dense sample once (nothing is filled in later)."""

    generation: int
    segments: SegmentSet
    sources: Mapping[str, tuple[str, str]]  # doc_id -> (source, title)
    metadata: Mapping[str, dict[str, Any]]  # without "pages"
    pages: Mapping[str, tuple[PageSpan, ...]]  # paged docs only
    rebuilt: tuple[str, ...]  # which derived files had to be rebuilt on load
    offsets: np.ndarray  # int64 (entries + 1,): global row of each entry's first row, the total
    sample: DenseSample  # the rows whose median dense score `gap` is measured against
    # `offsets` as Python ints, derived at construction: the per-row accessors below run ~150
    # times a search, and `bisect` on a tuple costs a fraction of `np.searchsorted` on a scalar.
    _firsts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Derive the Python copy of `offsets` the per-row lookups bisect."""
        object.__setattr__(self, "_firsts", tuple(int(x) for x in self.offsets))

    @classmethod
    def of(
        cls,
        generation: int,
        segments: SegmentSet,
        sources: Mapping[str, tuple[str, str]],
        metadata: Mapping[str, dict[str, Any]] | None = None,
        pages: Mapping[str, tuple[PageSpan, ...]] | None = None,
        rebuilt: tuple[str, ...] = (),
    ) -> Snapshot:
        """A snapshot of `segments` and the documents' info."""
        sizes = [e.segment.n_rows for e in segments.entries]
        return cls(
            generation=generation,
            segments=segments,
            sources=sources,
            metadata=metadata or {},
            pages=pages or {},
            rebuilt=rebuilt,
            offsets=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
            sample=DenseSample.of(segments),
        )

    def __len__(self) -> int:
        """Number of live chunks."""
        return len(self.segments)

    @property
    def stats(self) -> TermStats:
        """Collection-wide BM25 statistics over the live rows."""
        return self.segments.stats

    def locate(self, row: int) -> tuple[Segment, int]:
        """The segment and local row of global `row`."""
        row = int(row)
        i = bisect.bisect_right(self._firsts, row) - 1
        return self.segments.entries[i].segment, row - self._firsts[i]

    def global_rows(self, segments: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Global rows of (entry index, local row) pairs."""
        return self.offsets[np.asarray(segments, dtype=np.int64)] + np.asarray(rows, np.int64)

    def split_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(entry index, local row) of global rows."""
        rows = np.asarray(rows, dtype=np.int64)
        segs = np.searchsorted(self.offsets, rows, side="right").astype(np.int64) - 1
        return segs, rows - self.offsets[segs]

    def text(self, row: int) -> str:
        """The chunk's text."""
        seg, r = self.locate(row)
        return seg.text(r)

    def doc_id(self, row: int) -> str:
        """The chunk's document id."""
        seg, r = self.locate(row)
        return seg.doc_id(r)

    def start(self, row: int) -> int:
        """The chunk's start offset in its document's text."""
        seg, r = self.locate(row)
        return int(seg.starts[r])

    def end(self, row: int) -> int:
        """The chunk's end offset in its document's text."""
        seg, r = self.locate(row)
        return int(seg.ends[r])

    def ord(self, row: int) -> int:
        """The chunk's position in its document."""
        seg, r = self.locate(row)
        return int(seg.ords[r])

    def key(self, row: int) -> int:
        """The chunk's SQLite id (names one chunk forever)."""
        seg, r = self.locate(row)
        return int(seg.chunk_ids[r])

    def chunk_id(self, row: int) -> str:
        """`doc_id:ord` of a row."""
        return f"{self.doc_id(row)}:{self.ord(row)}"

    def folded(self, row: int) -> str:
        """The chunk text folded to simplified, lower case (matching only; never shown),
        computed for the rows a search touches (`folded_text` keeps recent ones)."""
        return folded_text(self.text(row))

    def sentences(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Document start and end offsets of the chunk's sentences."""
        seg, r = self.locate(row)
        lo, hi = int(seg.sent_ptr[r]), int(seg.sent_ptr[r + 1])
        return seg.sent_starts[lo:hi], seg.sent_ends[lo:hi]

    def texts_with(self, term: str, limit: int) -> list[str]:
        """The texts of up to `limit` live chunks whose BM25 tokens include `term`, in entry
        order (what the collection says of a name: `rag.answer.gazetteer`)."""
        out: list[str] = []
        for e in self.segments.entries:
            rows = e.segment.postings.rows_of(term)
            if e.live is not None:
                rows = rows[e.live[rows]]
            out += e.segment.texts(rows[: limit - len(out)])
            if len(out) >= limit:
                break
        return out

    def rows_for(self, doc_ids: Sequence[str]) -> list[np.ndarray]:
        """Per entry, the boolean mask of the rows of any of `doc_ids` (a filtered search's)."""
        return [e.segment.rows_of_docs(doc_ids) for e in self.segments.entries]

    def live_rows(self) -> Iterator[int]:
        """Global rows of every live chunk, in entry order (benchmarks, tests)."""
        for i, e in enumerate(self.segments.entries):
            local = np.arange(e.segment.n_rows) if e.live is None else np.flatnonzero(e.live)
            yield from (self.offsets[i] + local).tolist()


@lru_cache(maxsize=FOLDED_CACHE_ROWS)
def folded_text(text: str) -> str:
    """`fold_long(text)`, remembered for the most recently folded texts (the rows searches keep
    touching), process-wide: a pure function's memo, shared by every snapshot."""
    return fold_long(text)


# --- building -------------------------------------------------------------------------------


def segment_of(rows: StoredRows, dim: int, filled: list[tuple[int, list[str]]]) -> Segment:
    """A segment of stored rows; chunks stored without tokens are tokenised now, and their
    tokens appended to `filled` (to be written back)."""
    tokens: list[list[str]] = []
    for cid, text, stored in zip(rows.chunk_ids.tolist(), rows.texts, rows.tokens, strict=True):
        if stored is None:
            stored = tokenize(text)
            filled.append((cid, stored))
        tokens.append(stored)
    return Segment.build(
        SegmentRows(
            chunk_ids=rows.chunk_ids,
            doc_ids=rows.doc_ids,
            ords=rows.ords,
            starts=rows.starts,
            ends=rows.ends,
            texts=rows.texts,
            tokens=tokens,
            vectors=rows.vectors,
            sent_vectors=rows.sent_vectors,
            sent_owner=rows.sent_owner,
            sent_starts=rows.sent_starts,
            sent_ends=rows.sent_ends,
        ),
        dim,
        hnsw_min_rows=HNSW_MIN_ROWS,
    )


def _doc_maps(
    rows: Mapping[str, DocRow],
) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, Any]], dict[str, tuple[PageSpan, ...]]]:
    """Sources, metadata (a PDF's page spans apart: long, not for display) and page spans."""
    sources = {d: (r.source, r.title) for d, r in rows.items()}
    metadata = {d: {k: v for k, v in r.metadata.items() if k != "pages"} for d, r in rows.items()}
    pages = {d: spans for d, r in rows.items() if (spans := page_spans(r.metadata))}
    return sources, metadata, pages


def tokens_trusted(view: ReadView) -> bool:
    """Whether the tokens stored in the view were made by this tokenizer."""
    stored = view.meta("tokenizer_version")
    return stored is None or stored == str(TOKENIZER_VERSION)


def build_snapshot(
    view: ReadView, dim: int, filled: list[tuple[int, list[str]]], spill: Path | None = None
) -> Snapshot:
    """A snapshot of everything in `view`, segments of at most `SEGMENT_BATCH_ROWS` rows built
    from stored tokens and vectors (nothing re-tokenised but chunks stored without tokens, or
    all of them when the tokenizer changed).

    With `spill`, each segment is saved there as soon as it is built and mapped back, so a
    rebuild holds one batch in memory at a time, not the whole collection (a million chunks
    would not fit); a segment that cannot be saved stays in memory.
    """
    trusted = tokens_trusted(view)
    segs = SegmentSet()
    for rows in view.row_batches(dim):
        if not trusted:
            rows = _without_tokens(rows)
        segment = segment_of(rows, dim, filled)
        del rows  # the batch's Python rows are the bulk of a rebuild's memory
        seg_id = new_segment_id()
        if spill is not None:
            segment = _spilled(segment, spill, seg_id, dim)
        segs = segs.with_added(segment, seg_id)
    sources, metadata, pages = _doc_maps(view.doc_rows())
    return Snapshot.of(view.generation, segs, sources, metadata, pages)


def _spilled(segment: Segment, directory: Path, seg_id: str, dim: int) -> Segment:
    """`segment` saved under `seg_id` and loaded back memory-mapped; itself if it cannot be
    (the files are a cache: the manifest save later says whether the disk took them)."""
    try:
        segment.save(directory, seg_id)
        return Segment.load(directory, seg_id, dim=dim)
    except (OSError, StaleOrCorrupt) as exc:
        log.warning("could not save segment %s while rebuilding: %s", seg_id, exc)
        return segment


def _without_tokens(rows: StoredRows) -> StoredRows:
    """The rows with their stored tokens dropped (made by another tokenizer version)."""
    import dataclasses

    return dataclasses.replace(rows, tokens=[None] * len(rows))


def apply_changes(
    snap: Snapshot,
    view: ReadView,
    dim: int,
    filled: list[tuple[int, list[str]]],
    saved: SegmentSet | None = None,
) -> Snapshot | None:
    """`snap` brought to the view's generation by the change log: tombstones for the chunks
    deleted since, one new segment for the chunks added, document info re-read for the documents
    touched. None when the log does not cover `snap.generation` (the caller rebuilds).

    `saved`: the segments another process saved for the view's generation (the writer, when
    this process is one of several server workers); taken instead of building them again."""
    changes = view.changes_since(snap.generation)
    if changes is None or not tokens_trusted(view):
        return None
    if saved is not None and changes.generation == view.generation:
        segs = saved
    else:
        segs = snap.segments.with_deleted(changes.deleted)
        if changes.added:
            for rows in view.row_batches(dim, changes.added):
                if len(rows):
                    segs = segs.with_added(segment_of(rows, dim, filled))
    touched = view.doc_rows(changes.docs)
    sources, metadata, pages = dict(snap.sources), dict(snap.metadata), dict(snap.pages)
    for d in changes.docs:
        sources.pop(d, None)
        metadata.pop(d, None)
        pages.pop(d, None)
    new_sources, new_metadata, new_pages = _doc_maps(touched)
    sources.update(new_sources)
    metadata.update(new_metadata)
    pages.update(new_pages)
    return Snapshot.of(changes.generation, segs, sources, metadata, pages)


def load_snapshot(store: TokenSink, view: ReadView, index_dir: Path, dim: int) -> Snapshot:
    """The snapshot of `view`'s generation: the saved segments when their manifest is current
    and intact, else rebuilt from SQLite (and saved). Tokens made for chunks stored without
    them are written back to `store` when it is writable."""
    filled: list[tuple[int, list[str]]] = []
    remove_old_files(index_dir)
    try:
        if not tokens_trusted(view):
            raise StaleOrCorrupt("the stored tokens were made by another tokenizer")
        segs = SegmentSet.load(index_dir, view.generation, dim=dim)
        sources, metadata, pages = _doc_maps(view.doc_rows())
        snap = Snapshot.of(view.generation, segs, sources, metadata, pages)
    except StaleOrCorrupt as exc:
        log.info("rebuilding the index segments from SQLite: %s", exc)
        snap = build_snapshot(view, dim, filled, spill=index_dir)
        snap = Snapshot.of(
            snap.generation, snap.segments, snap.sources, snap.metadata, snap.pages, DERIVED
        )
        save_segments(snap.segments, index_dir, snap.generation)
    write_back(store, filled)
    remove_orphans(index_dir, min_age=ORPHAN_AGE_SECONDS)
    return snap


def write_back(store: TokenSink, filled: list[tuple[int, list[str]]]) -> None:
    """Store tokens made for chunks stored without them, if the store can be written (else
    they are made again by a later rebuild)."""
    if not filled or not store.writable:
        return
    try:
        store.set_tokens(filled, TOKENIZER_VERSION)
    except (RagError, OSError) as exc:
        log.warning("could not store the tokens of %d chunks: %s", len(filled), exc)


# --- files -----------------------------------------------------------------------------------


def save_segments(segs: SegmentSet, index_dir: Path, generation: int) -> bool:
    """Write the segments not on disk yet and the manifest stamped with `generation`.

    They are a cache: when they cannot be written (`OSError`: a full or read-only disk, no
    permission) the snapshot is served from memory and the files are rebuilt by a later load;
    the failure is logged, never raised. With no room, segment files no manifest lists are
    removed first and the write tried once more. Returns whether the manifest was saved.
    """
    try:
        segs.save(index_dir, generation)
        return True
    except OSError as exc:
        error = exc
    if faults.is_no_room(error):
        keep = set(segs.seg_ids)
        for path in index_dir.glob("seg-*.seg"):
            if path.name[4:-4] not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):  # a stale manifest is useless to this generation
            (index_dir / MANIFEST_FILE).unlink()
        try:
            segs.save(index_dir, generation)
            return True
        except OSError as exc:
            error = exc
    log.warning(
        "could not save the index segments (%s): serving them from memory; they are rebuilt "
        "on a later load",
        error.strerror or error,
    )
    return False


def remove_old_files(index_dir: Path) -> None:
    """Remove the whole-collection index files of earlier versions (never read now)."""
    for name in OLD_FILES:
        with contextlib.suppress(OSError):
            (index_dir / name).unlink()


def remove_orphans(index_dir: Path, *, min_age: float = 0.0, only: Iterable[str] = ()) -> None:
    """Delete segment files the saved manifest does not list: those of `only` (segment ids this
    process dropped), or every one older than `min_age` seconds. Unlinking a file another
    process has mapped is safe: its mapping stays valid until it lets go."""
    wanted = set(only)
    now = time.time()
    for path in SegmentSet.unreferenced_files(index_dir):
        seg_id = path.name[4:-4]
        try:
            old = now - os.stat(path).st_mtime >= min_age
        except OSError:
            continue
        if seg_id in wanted or (not wanted and old):
            with contextlib.suppress(OSError):
                path.unlink()


def derived_status(index_dir: Path, view: ReadView, dim: int) -> dict[str, str]:
    """`file → "current" | "stale" | "missing" | "damaged"` for the segment manifest, as seen
    from the store state `view`: current when it is stamped with the view's generation and every
    segment it lists is there with its checksum. Headers only are read; nothing is written."""
    path = index_dir / MANIFEST_FILE
    try:
        head = read_header(path)
    except StaleOrCorrupt:
        return {MANIFEST_FILE: "damaged" if path.exists() else "missing"}
    try:
        for item in head.get("segments", []):
            seg = read_header(segment_path(index_dir, str(item["id"])))
            if seg.get("sha256") != item.get("sha256") or seg.get("dim") != dim:
                return {MANIFEST_FILE: "damaged"}
    except (StaleOrCorrupt, KeyError, ValueError):
        return {MANIFEST_FILE: "damaged"}
    current = head.get("generation") == view.generation and tokens_trusted(view)
    return {MANIFEST_FILE: "current" if current else "stale"}
