"""Near-duplicate documents: a MinHash signature of the folded text, and an index of stored ones.

The same article saved twice rarely matches byte for byte: a reprint has another header line, the
PDF and the HTML versions break lines and space punctuation differently, one copy has full-width
digits. So the text is *folded* first (NFKC: full-width → half-width; lower case; every character
that is not a letter or digit dropped, whitespace and punctuation with it), cut into overlapping
character 5-grams (shingles), and summarised by a MinHash signature of `NUM_PERM` values: the
share of equal values between two signatures estimates the Jaccard similarity of their shingle
sets (standard error ≈ √(J(1-J)/128), 0.027 at J = 0.9). Two documents whose estimate reaches
`THRESHOLD` are near-duplicates.

Why 5-grams of characters: Chinese has no spaces to make words of, and 5 characters are long
enough that two different articles on one topic share few of them (their Jaccard stays far below
0.5) while a changed header line or a reflowed paragraph changes only the few shingles around it.

The permutation parameters are fixed (seeded): signatures are stored in the index and must stay
comparable across runs and processes; changing `NUM_PERM`, `SHINGLE` or the seed makes stored
signatures unreadable (`from_bytes` returns None and they are recomputed from the stored text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NUM_PERM = 128
SHINGLE = 5
THRESHOLD = 0.9  # estimated Jaccard at or above which two documents are near-duplicates

_rng = np.random.default_rng(0x5EED_D0C5)
# Permutation k maps a 32-bit shingle hash x to the high 32 bits of (a_k·x + b_k) mod 2^64, with
# a_k odd (multiply-shift hashing). Measured on random and on consecutive integer sets: the
# estimate's error has the binomial spread √(J(1-J)/NUM_PERM). (a·x + b) mod p with small a and
# b, the textbook form without 128-bit products, is not: it wraps too rarely to scramble the order
# (error spread 0.22 instead of 0.044 at J = 0.5).
_A = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)
_SHIFT = np.uint64(32)
_BLOCK = 8192  # shingles per step: bounds the (NUM_PERM × block) temporary to 8 MiB
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
_NON_WORD = re.compile(r"[\W_]+")


def fold_text(text: str) -> str:
    """The text as the comparison sees it: NFKC, lower case, letters and digits only."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def shingle_hashes(folded: str) -> np.ndarray:
    """Distinct 32-bit hashes of the character `SHINGLE`-grams of a folded text (uint64 array).

    A text shorter than one shingle is one shingle; an empty text has none.
    """
    if not folded:
        return np.zeros(0, dtype=np.uint64)
    cps = np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = max(1, len(cps) - SHINGLE + 1)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(min(SHINGLE, len(cps))):  # polynomial hash of each window; wraps mod 2^64
        h = h * np.uint64(0x100000001B3) + cps[j : j + n]
    return np.unique(_mix(h) >> np.uint64(32))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hash over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signature(text: str) -> np.ndarray:
    """The MinHash signature (`NUM_PERM` uint32 values) of a text's folded shingles."""
    hashes = shingle_hashes(fold_text(text))
    if not len(hashes):
        return _EMPTY.copy()
    sig = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint64)
    for i in range(0, len(hashes), _BLOCK):
        block = hashes[i : i + _BLOCK]
        values = (_A[:, None] * block[None, :] + _B[:, None]) >> _SHIFT  # wraps mod 2^64
        np.minimum(sig, values.min(axis=1), out=sig)
    return sig.astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.mean(a == b))


def to_bytes(sig: np.ndarray) -> bytes:
    """A signature as stored (little-endian uint32s)."""
    return np.ascontiguousarray(sig, dtype="<u4").tobytes()


def from_bytes(blob: bytes | None) -> np.ndarray | None:
    """A stored signature, or None when absent or of another layout (to be recomputed)."""
    if not blob or len(blob) != 4 * NUM_PERM:
        return None
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True)
class Match:
    """The stored document a new one nearly duplicates."""

    doc_id: str
    source: str
    similarity: float


class Fingerprints:
    """The signatures of stored documents, searched by brute force (one vectorised comparison).

    `original` marks documents that are not themselves duplicates: a third copy is reported as a
    duplicate of the first one, not of the second.
    """

    def __init__(self, entries: Iterable[tuple[str, str, np.ndarray, bool]] = ()) -> None:
        """Start with `(doc_id, source, signature, original)` entries."""
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._original: list[bool] = []
        self._pos: dict[str, int] = {}
        self._rows = np.zeros((64, NUM_PERM), dtype=np.uint32)
        for doc_id, source, sig, original in entries:
            self.add(doc_id, source, sig, original=original)

    def __len__(self) -> int:
        """Number of documents held."""
        return len(self._ids)

    def add(self, doc_id: str, source: str, sig: np.ndarray, *, original: bool = True) -> None:
        """Hold `sig` for `doc_id` (replacing what it held for it)."""
        self.discard(doc_id)
        n = len(self._ids)
        if n == len(self._rows):  # amortised growth: ingesting N documents costs O(N) copies
            self._rows = np.vstack([self._rows, np.zeros_like(self._rows)])
        self._rows[n] = sig
        self._ids.append(doc_id)
        self._sources.append(source)
        self._original.append(original)
        self._pos[doc_id] = n

    def discard(self, doc_id: str) -> None:
        """Forget `doc_id` if held."""
        i = self._pos.pop(doc_id, None)
        if i is None:
            return
        last = len(self._ids) - 1
        if i != last:  # move the last entry into the hole
            self._rows[i] = self._rows[last]
            self._ids[i], self._sources[i] = self._ids[last], self._sources[last]
            self._original[i] = self._original[last]
            self._pos[self._ids[i]] = i
        self._ids.pop()
        self._sources.pop()
        self._original.pop()

    def find(
        self, sig: np.ndarray, *, exclude: str = "", threshold: float = THRESHOLD
    ) -> Match | None:
        """The stored document `sig` nearly duplicates, if any (not `exclude`, e.g. its own old
        version): the most similar original, else the most similar duplicate."""
        n = len(self._ids)
        if n == 0 or np.array_equal(sig, _EMPTY):
            return None
        sims = (self._rows[:n] == sig[None, :]).mean(axis=1)
        candidates = [i for i in np.flatnonzero(sims >= threshold) if self._ids[i] != exclude]
        if not candidates:
            return None
        best = max(candidates, key=lambda i: (self._original[i], sims[i]))
        return Match(self._ids[best], self._sources[best], round(float(sims[best]), 4))
