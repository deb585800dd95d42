"""BM25 over stored token ids, scored with collection-wide statistics.

Each segment keeps its own postings (term → rows with term frequencies, CSR), the length of each
row and each row's distinct terms (the forward CSR). A search scores a segment's postings with
`CollectionStats` — N, average length and document frequencies over the *live* rows of all
segments — so scores over several segments are exactly the scores over one segment holding the
same live rows. A tombstoned row's contribution to document frequency is subtracted through its
forward terms, without re-tokenising anything.

The formula is bm25s's default (method "lucene", k1=1.5, b=0.75), which the whole-collection
index used before segments (tests/index/test_bm25.py checks equality with bm25s):

    idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
    score(d, q) = Σ_{t ∈ q} idf(t) · tf / (tf + k1 · (1 − b + b · |d| / avgdl))

summed over the query's tokens with repetition (a repeated query token counts again, as in
bm25s). Arithmetic is float64 and the result float32; per-row contributions are elementwise and
added term by term in query order, so two code paths (top-n over postings, scores of given rows)
give bit-identical scores for a row.
"""

from __future__ import annotations

import array
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from rag.index.arrays import concat_ranges, csr_pointer, decode_strings, encode_strings, top_n

K1 = 1.5
B = 0.75
_PAIR_BLOCK = 1 << 23  # tokens turned into (row, term) pairs at a time when building
# A query term in more than 1/PRUNE_HEAVY_SHARE of a segment's rows is "heavy": `Postings.top`
# first tries to answer without reading its postings in full (see `_top_pruned`).
PRUNE_HEAVY_SHARE = 16


@dataclass(frozen=True, eq=False)
class EncodedTokens:
    """Token lists as ids: row `i`'s tokens are `terms[ids[ptr[i]:ptr[i + 1]]]`, in order."""

    terms: Sequence[str]
    ids: np.ndarray  # int32, all rows' token ids concatenated
    ptr: np.ndarray  # int64, (rows + 1,)

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.ptr) - 1


def encode_tokens(token_lists: Iterable[Sequence[str]]) -> EncodedTokens:
    """Number the distinct tokens of `token_lists` (first occurrence first) and encode each list."""
    vocab: dict[str, int] = {}
    ids = array.array("i")
    lens = array.array("q")
    for tokens in token_lists:
        ids.extend([vocab.setdefault(t, len(vocab)) for t in tokens])
        lens.append(len(tokens))
    return EncodedTokens(
        terms=list(vocab),
        ids=np.frombuffer(ids, dtype=np.int32).copy() if len(ids) else np.zeros(0, np.int32),
        ptr=csr_pointer(
            np.frombuffer(lens, dtype=np.int64) if len(lens) else np.zeros(0, np.int64)
        ),
    )


@dataclass(frozen=True, eq=False)
class Postings:
    """The lexical part of one segment: vocabulary, postings and forward terms, all arrays."""

    terms_blob: np.ndarray  # uint8: the terms' UTF-8, concatenated
    terms_off: np.ndarray  # int64 (V + 1,): byte range of each local term id in terms_blob
    post_ptr: np.ndarray  # int64 (V + 1,): postings of term t are [post_ptr[t], post_ptr[t + 1])
    post_rows: np.ndarray  # int32 (nnz,): local rows, ascending within a term
    post_tf: np.ndarray  # uint16 (int32 if some tf > 65535): term frequency of each posting
    fwd_ptr: np.ndarray  # int64 (n + 1,): distinct terms of row r are [fwd_ptr[r], fwd_ptr[r + 1])
    fwd_terms: np.ndarray  # int32 (nnz,): local term ids, ascending within a row
    doc_len: np.ndarray  # int32 (n,): number of tokens of each row
    term_max_tf: np.ndarray  # int32 (V,): largest tf in each term's postings  } bound a term's
    term_min_len: np.ndarray  # int32 (V,): shortest row in its postings        } contribution
    # Derived once, when the postings are made (built, merged or mapped from a file), so that a
    # search never fills anything in: the vocabulary and its lookup table, each term's document
    # frequency (dead rows included: tombstones live elsewhere), tokens over all rows.
    terms: list[str] = field(init=False)
    vocab: dict[str, int] = field(init=False)
    term_df: np.ndarray = field(init=False)
    total_len: int = field(init=False)

    ARRAYS: ClassVar[tuple[str, ...]] = (
        "terms_blob",
        "terms_off",
        "post_ptr",
        "post_rows",
        "post_tf",
        "fwd_ptr",
        "fwd_terms",
        "doc_len",
        "term_max_tf",
        "term_min_len",
    )

    @classmethod
    def build(cls, tokens: EncodedTokens) -> Postings:
        """Index encoded token lists (row `i` of the result is `tokens` row `i`)."""
        n, n_terms = len(tokens), len(tokens.terms)
        lens = np.diff(tokens.ptr)
        rows, tids, tfs = [], [], []
        # (row, term) pairs with their counts, row-major; in blocks of rows so the int64
        # temporaries stay bounded at a million rows
        bounds = np.unique(
            np.concatenate(
                [np.searchsorted(tokens.ptr, np.arange(0, tokens.ptr[-1], _PAIR_BLOCK)), [n]]
            )
        )
        for r0, r1 in itertools.pairwise(bounds.tolist()):
            ids = np.asarray(tokens.ids[tokens.ptr[r0] : tokens.ptr[r1]], dtype=np.int64)
            row_of = np.repeat(np.arange(r0, r1, dtype=np.int64), lens[r0:r1])
            keys, counts = np.unique(row_of * n_terms + ids, return_counts=True)
            rows.append(keys // n_terms)
            tids.append(keys % n_terms)
            tfs.append(counts)
        return cls.from_pairs(
            tokens.terms,
            n,
            _concat(rows, np.int64),
            _concat(tids, np.int64),
            _concat(tfs, np.int64),
            lens,
        )

    @classmethod
    def from_pairs(
        cls,
        terms: Sequence[str],
        n_rows: int,
        rows: np.ndarray,
        tids: np.ndarray,
        tf: np.ndarray,
        doc_len: np.ndarray,
    ) -> Postings:
        """Postings from (row, term id, tf) triples sorted by row, then term id; terms without
        any posting are dropped from the vocabulary (their ids renumbered in order)."""
        df = np.bincount(tids, minlength=len(terms))
        if len(df) and not df.all():
            used = df > 0
            tids = (np.cumsum(used) - 1)[tids]
            df = df[used]
            terms = [terms[i] for i in np.flatnonzero(used).tolist()]
        blob, off = encode_strings(terms)
        order = np.argsort(tids, kind="stable")  # rows stay ascending within each term
        tf_dtype = np.uint16 if tf.size == 0 or int(tf.max()) <= 0xFFFF else np.int32
        post_ptr = csr_pointer(df)
        post_rows = rows[order].astype(np.int32)
        post_tf = tf[order].astype(tf_dtype)
        doc_len = np.asarray(doc_len, dtype=np.int32)
        starts = post_ptr[:-1]  # every term has a posting: reduceat sees no empty range
        return cls(
            terms_blob=blob,
            terms_off=off,
            post_ptr=post_ptr,
            post_rows=post_rows,
            post_tf=post_tf,
            fwd_ptr=csr_pointer(np.bincount(rows, minlength=n_rows)),
            fwd_terms=tids.astype(np.int32),
            doc_len=doc_len,
            term_max_tf=np.maximum.reduceat(post_tf, starts).astype(np.int32)
            if len(post_tf)
            else np.zeros(0, np.int32),
            term_min_len=np.minimum.reduceat(doc_len[post_rows], starts).astype(np.int32)
            if len(post_tf)
            else np.zeros(0, np.int32),
        )

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.doc_len)

    @property
    def n_terms(self) -> int:
        """Number of distinct terms."""
        return len(self.terms_off) - 1

    def __post_init__(self) -> None:
        """Derive the vocabulary, its lookup table, document frequencies and total length."""
        terms = decode_strings(self.terms_blob, self.terms_off)
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "vocab", {t: i for i, t in enumerate(terms)})
        object.__setattr__(self, "term_df", np.diff(self.post_ptr))
        object.__setattr__(self, "total_len", int(self.doc_len.sum(dtype=np.int64)))

    def term_ids(self, terms: Sequence[str]) -> np.ndarray:
        """Local ids of `terms` (int64), −1 for a term this segment lacks."""
        vocab = self.vocab
        return np.array([vocab.get(t, -1) for t in terms], dtype=np.int64)

    def rows_of(self, term: str) -> np.ndarray:
        """Local rows holding `term` (int32, ascending; empty when this segment lacks it)."""
        t = self.vocab.get(term)
        if t is None:
            return self.post_rows[:0]
        return self.post_rows[self.post_ptr[t] : self.post_ptr[t + 1]]

    def dead_df(self, rows: np.ndarray) -> np.ndarray:
        """How much the given rows add to each term's document frequency (int32, per local term):
        what tombstoning them subtracts."""
        rows = np.asarray(rows, dtype=np.int64)
        terms = self.fwd_terms[concat_ranges(self.fwd_ptr[rows], self.fwd_ptr[rows + 1])]
        return np.bincount(terms, minlength=self.n_terms).astype(np.int32)

    def row_terms(self, row: int) -> dict[str, int]:
        """Term → frequency in one row (read back from the postings; for checks and display)."""
        out: dict[str, int] = {}
        terms = self.terms
        for t in self.fwd_terms[self.fwd_ptr[row] : self.fwd_ptr[row + 1]]:
            lo, hi = int(self.post_ptr[t]), int(self.post_ptr[t + 1])
            pos = lo + int(np.searchsorted(self.post_rows[lo:hi], row))
            out[terms[t]] = int(self.post_tf[pos])
        return out

    def top(
        self,
        query: Sequence[str] | BM25Query,
        n: int,
        stats: TermStats,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `n` best rows (int64) with positive score, and their scores (float32), best first,
        ties by row; only rows where `allowed` (bool, per row) is true, if given.

        `query` is the query's tokens, or `stats.query(tokens)` computed once for all segments.
        Exact; a query mixing rare and very common terms is answered without reading the common
        terms' postings in full when their bounded contribution cannot reach the top `n`.
        """
        q = stats.query(query) if not isinstance(query, BM25Query) else query
        ids = self.term_ids(q.terms)
        known = ids >= 0
        if q.avgdl == 0 or not known.any():  # avgdl 0: no live token, no live row can match
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        df = np.where(known, self.post_ptr[ids + 1] - self.post_ptr[ids], 0)
        heavy = df * PRUNE_HEAVY_SHARE > self.n_rows
        light = known & ~heavy
        if heavy.any() and light.any() and df[light].sum() * 4 < df[heavy].sum():
            pruned = self._top_pruned(q, ids, heavy, light, n, allowed)
            if pruned is not None:
                return pruned
        return self._top_full(q, ids, known, n, allowed)

    def _top_full(
        self, q: BM25Query, ids: np.ndarray, known: np.ndarray, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n by accumulating every query term's postings."""
        lo, hi = self.post_ptr[ids[known]], self.post_ptr[ids[known] + 1]
        idx = concat_ranges(lo, hi)  # all query terms' postings, term after term
        rows = self.post_rows[idx]
        contrib = _term_scores(
            np.repeat(q.weights[known], hi - lo), self.post_tf[idx], self.doc_len[rows], q.avgdl
        )
        # bincount adds in input order, i.e. term after term from 0.0 — the same sums `scores`
        # makes, so both give the same bits for a row
        acc = np.bincount(rows, weights=contrib, minlength=self.n_rows)
        # the rows any term hit (every contribution is > 0): a scan of the accumulator when the
        # postings cover much of the segment, else a sort of the postings read
        cand = np.flatnonzero(acc) if 4 * len(rows) > self.n_rows else np.unique(rows)
        if allowed is not None:
            cand = cand[allowed[cand]]
        scores = acc[cand].astype(np.float32)
        pick = top_n(scores, cand, n)
        return cand[pick].astype(np.int64), scores[pick]

    def _top_pruned(
        self,
        q: BM25Query,
        ids: np.ndarray,
        heavy: np.ndarray,
        light: np.ndarray,
        n: int,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-n from the rows the light (rarer) terms hit, if provably exact; else None.

        Those rows are scored in full (heavy terms looked up by binary search). A row no light
        term hits scores at most the sum of the heavy terms' upper bounds (largest tf, shortest
        row of each term's postings); when that sum is below the n-th best candidate, no such row
        can enter the top n (nor tie with it), and the heavy postings need not be read.
        """
        lo, hi = self.post_ptr[ids[light]], self.post_ptr[ids[light] + 1]
        cand = np.unique(self.post_rows[concat_ranges(lo, hi)]).astype(np.int64)
        if allowed is not None:
            cand = cand[allowed[cand]]
        if len(cand) < n:
            return None
        tids = ids[heavy]
        max_tf = self.term_max_tf[tids].astype(np.float64)
        norm = K1 * (1.0 - B + B * self.term_min_len[tids] / q.avgdl)
        bound = float((q.weights[heavy] * max_tf / (max_tf + norm)).sum())
        scores = self._scores(q, cand)
        pick = top_n(scores, cand, n)
        # a margin for rounding: the bound is computed in another order than the scores
        if not np.float32(bound * (1 + 1e-6) + 1e-12) < scores[pick[-1]]:
            return None
        return cand[pick], scores[pick]

    def scores(
        self, query: Sequence[str] | BM25Query, rows: np.ndarray, stats: TermStats
    ) -> np.ndarray:
        """BM25 scores (float32) of the given rows; cost grows with `len(rows)`, not the segment."""
        q = stats.query(query) if not isinstance(query, BM25Query) else query
        return self._scores(q, np.asarray(rows, dtype=np.int64))

    def _scores(self, q: BM25Query, rows: np.ndarray) -> np.ndarray:
        """Scores of given rows: each term's postings searched for them, term after term."""
        out = np.zeros(len(rows), dtype=np.float64)
        if q.avgdl == 0 or not len(rows):
            return out.astype(np.float32)
        for t, w in zip(self.term_ids(q.terms).tolist(), q.weights.tolist(), strict=True):
            if t < 0:
                continue
            lo, hi = int(self.post_ptr[t]), int(self.post_ptr[t + 1])
            posting = self.post_rows[lo:hi]
            pos = np.minimum(np.searchsorted(posting, rows), len(posting) - 1)
            hit = posting[pos] == rows
            out[hit] += _term_scores(
                np.full(int(hit.sum()), w),
                self.post_tf[lo + pos[hit]],
                self.doc_len[rows[hit]],
                q.avgdl,
            )
        return out.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to persist, by name."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Postings:
        """Rebuild from `arrays()` (views: nothing is copied)."""
        return cls(**{name: arrays[name] for name in cls.ARRAYS})


@dataclass(frozen=True, eq=False)
class BM25Query:
    """A query's distinct terms (first occurrence first) with their weights — idf under one
    `TermStats` times repetitions — and that collection's average row length."""

    terms: list[str]
    weights: np.ndarray  # float64
    avgdl: float


@dataclass(frozen=True, eq=False)
class TermStats(ABC):
    """What BM25 reads of a collection: its live rows, their tokens, and each term's document
    frequency. Segments (`CollectionStats`) and a database (`LookupStats`) keep these apart and
    share IDF, query weighting and scoring, so a row scores the same through either."""

    n_docs: int  # live rows
    total_len: int  # tokens over the live rows

    @abstractmethod
    def doc_freq(self, terms: Sequence[str]) -> np.ndarray:
        """Live rows containing each of `terms` (int64)."""

    @property
    def avgdl(self) -> float:
        """Mean tokens per live row (0 when there are none)."""
        return self.total_len / self.n_docs if self.n_docs else 0.0

    def query(self, terms: Sequence[str]) -> BM25Query:
        """Weigh a query's tokens once (a search over many segments shares the result)."""
        counts: dict[str, int] = {}
        for t in terms:
            counts[t] = counts.get(t, 0) + 1
        uniq = list(counts)
        weights = self.idf(uniq) * np.array([counts[t] for t in uniq], dtype=np.float64)
        return BM25Query(uniq, weights, self.avgdl)

    def idf(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 (lucene) IDF of each of `terms` (float64); a term no live row has gets the maximum."""
        df = self.doc_freq(terms).astype(np.float64)
        return np.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))


@dataclass(frozen=True, eq=False)
class CollectionStats(TermStats):
    """BM25 statistics over the live rows of a set of segments.

    `parts` pairs each segment's postings with the document frequencies its tombstoned rows
    contribute (None: no tombstones); a term's df is the sum over segments of postings df minus
    tombstoned df — a dictionary lookup and two array reads per segment and query term.
    """

    parts: tuple[tuple[Postings, np.ndarray | None], ...] = ()

    @classmethod
    def of(cls, parts: Sequence[tuple[Postings, np.ndarray | None]]) -> CollectionStats:
        """Statistics of segments given as (postings, bool mask of tombstoned rows or None)."""
        n_docs, total, out = 0, 0, []
        for postings, dead in parts:
            n_docs += postings.n_rows
            total += postings.total_len
            dead_df = None
            if dead is not None and dead.any():
                rows = np.flatnonzero(dead)
                n_docs -= len(rows)
                total -= int(postings.doc_len[rows].sum(dtype=np.int64))
                dead_df = postings.dead_df(rows)
            out.append((postings, dead_df))
        return cls(n_docs, total, tuple(out))

    def doc_freq(self, terms: Sequence[str]) -> np.ndarray:
        """Live rows containing each of `terms` (int64)."""
        out = np.zeros(len(terms), dtype=np.int64)
        for postings, dead_df in self.parts:
            ids = postings.term_ids(terms)
            known = ids >= 0
            if known.any():
                local = ids[known]
                df = postings.term_df[local]
                out[known] += df if dead_df is None else df - dead_df[local]
        return out

    def doc_freq_table(self) -> dict[str, int]:
        """Live document frequency of every term in the collection (df > 0 only): the whole
        vocabulary at once, made on each call (searches look terms up one by one instead)."""
        table: dict[str, int] = {}
        for postings, dead_df in self.parts:
            df = postings.term_df if dead_df is None else postings.term_df - dead_df
            for t, c in zip(postings.terms, df.tolist(), strict=True):
                if c:
                    table[t] = table.get(t, 0) + c
        return table


class TermLookup:
    """Document frequencies asked of a function (terms → df of those some row holds) once per
    term and remembered: what one search reads of statistics kept elsewhere. Mutable on purpose
    and short-lived — one per search, over one consistent state of the database."""

    def __init__(self, lookup: Callable[[Sequence[str]], Mapping[str, int]]) -> None:
        """`lookup` is asked only for terms not asked before."""
        self._lookup = lookup
        self._memo: dict[str, int] = {}

    def __call__(self, terms: Sequence[str]) -> np.ndarray:
        """Live rows containing each of `terms` (int64)."""
        missing = [t for t in dict.fromkeys(terms) if t not in self._memo]
        if missing:
            found = self._lookup(missing)
            self._memo.update({t: int(found.get(t, 0)) for t in missing})
        return np.array([self._memo.get(t, 0) for t in terms], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class LookupStats(TermStats):
    """Collection statistics kept elsewhere — a database's tables, updated with every write:
    `n_docs` and `total_len` given, document frequencies asked of `lookup`. IDF and scores are
    then computed by the same code as over segments, so they are equal."""

    lookup: TermLookup | None = None

    def doc_freq(self, terms: Sequence[str]) -> np.ndarray:
        """Live rows containing each of `terms` (int64)."""
        if self.lookup is None:
            return np.zeros(len(terms), dtype=np.int64)
        return self.lookup(terms)


def merge_postings(parts: Sequence[tuple[Postings, np.ndarray]], n_rows: int) -> Postings:
    """Fold segments' postings into one, without re-tokenising.

    Each part is (postings, new row of each old row, −1 where the row is dropped). Terms left
    with no live posting disappear from the merged vocabulary.
    """
    vocab: dict[str, int] = {}
    rows, tids, tfs = [], [], []
    doc_len = np.zeros(n_rows, dtype=np.int32)
    for postings, new_of in parts:
        live = new_of >= 0
        doc_len[new_of[live]] = postings.doc_len[live]
        term_of = np.repeat(np.arange(postings.n_terms, dtype=np.int64), postings.term_df)
        new_rows = new_of[postings.post_rows]
        keep = new_rows >= 0
        used = np.unique(term_of[keep])
        terms = postings.terms
        merged_id = np.full(postings.n_terms, -1, dtype=np.int64)
        merged_id[used] = [vocab.setdefault(terms[t], len(vocab)) for t in used.tolist()]
        rows.append(new_rows[keep])
        tids.append(merged_id[term_of[keep]])
        tfs.append(postings.post_tf[keep].astype(np.int64))
    all_rows, all_tids = _concat(rows, np.int64), _concat(tids, np.int64)
    order = np.argsort(all_rows * max(len(vocab), 1) + all_tids)  # row-major, as from_pairs wants
    return Postings.from_pairs(
        list(vocab),
        n_rows,
        all_rows[order],
        all_tids[order],
        _concat(tfs, np.int64)[order],
        doc_len,
    )


def _term_scores(
    weight: np.ndarray, tf: np.ndarray, doc_len: np.ndarray, avgdl: float
) -> np.ndarray:
    """Contributions of postings (term weight, tf, row length each) to their rows' scores:
    elementwise float64, the one formula both code paths use."""
    tf64 = tf.astype(np.float64)
    return weight * tf64 / (tf64 + K1 * (1.0 - B + B * doc_len / avgdl))


def _concat(parts: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    """`np.concatenate` that also accepts no parts."""
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
