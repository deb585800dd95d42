"""Small vectorised array helpers shared by the segment indexes (top-n, CSR gathers)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def top_n(scores: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` best entries by score (descending), ties broken by `keys` (ascending).

    A fixed tie-break is what makes a search over several segments return exactly what a search
    over one segment holding the same rows returns (BM25 ties are common: equal tf and length).
    Linear in `len(scores)` plus a sort of the entries tied with or above the n-th score.
    """
    m = len(scores)
    if n <= 0 or m == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(m)
    if m > n:
        kth = np.partition(scores, m - n)[m - n]  # the n-th largest score
        idx = np.flatnonzero(scores >= kth)
    order = np.lexsort((keys[idx], -scores[idx]))[:n]
    return idx[order].astype(np.int64)


def concat_ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The indices `lo[0]..hi[0]-1, lo[1]..hi[1]-1, …` as one int64 array, without a Python loop
    (a CSR row gather: the postings of some terms, the sentences of some chunks)."""
    lo = np.asarray(lo, dtype=np.int64)
    lens = np.asarray(hi, dtype=np.int64) - lo
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_start = np.cumsum(lens) - lens
    return np.repeat(lo - out_start, lens) + np.arange(total, dtype=np.int64)


def csr_pointer(counts: np.ndarray) -> np.ndarray:
    """`[0, c0, c0+c1, …]`: the int64 CSR pointer of per-row counts."""
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def encode_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 of `strings` concatenated (uint8) and the byte offsets (int64, len + 1)."""
    encoded = [s.encode() for s in strings]
    off = csr_pointer(np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded)))
    # read-only view of the joined bytes (no second copy: texts run to hundreds of MB)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), off


def decode_strings(blob: np.ndarray, off: np.ndarray) -> list[str]:
    """Inverse of `encode_strings`: the strings, decoded."""
    raw = blob.tobytes()
    bounds = off.tolist()
    return [raw[a:b].decode() for a, b in itertools.pairwise(bounds)]
