"""Collapse near-identical passages of a ranking into the best-ranked one.

Two copies of one article (a reprint, the PDF and the HTML version) are both indexed, so a
ranking often holds the same text twice under two sources. Shown twice it crowds out other
passages and an answer would cite it twice. Passages are compared on their folded text (the
comparison `rag.ingest.dedup` makes between documents: NFKC, lower case, letters and digits only),
by the share of the lower-ranked passage's character 5-grams that the better-ranked one holds: a
passage that adds almost nothing to a better one (`OVERLAP` or more of it is there already) is
dropped, and the better one records where else its text was found.

Why that share and not the Jaccard: merged passages of the two copies can span different numbers
of chunks (one copy's hits merged three chunks, the other's two); the shorter one then says
nothing new although the Jaccard of the two is only ~0.6. The other way round — a lower-ranked
passage that holds a better one *and* much more — it is kept: it brings text of its own (and the
answer composer quotes a sentence the two share only once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.ingest.dedup import fold_text, shingle_hashes

OVERLAP = 0.8


@dataclass(frozen=True)
class Group:
    """A kept passage (index into the ranking) and the lower-ranked ones folded into it."""

    kept: int
    absorbed: tuple[int, ...] = ()


def shingles(text: str) -> np.ndarray:
    """The hashed character `SHINGLE`-grams of the folded text, sorted and distinct (the whole
    folded text is one shingle if shorter): `rag.ingest.dedup.shingle_hashes`."""
    return shingle_hashes(fold_text(text))


def repeats(better: np.ndarray, worse: np.ndarray, overlap: float = OVERLAP) -> bool:
    """Whether `overlap` or more of `worse`'s shingles are in `better` (it adds almost nothing)."""
    if not worse.size:
        return True  # no letters or digits at all: nothing of its own to show
    shared = np.intersect1d(better, worse, assume_unique=True).size
    return bool(shared >= overlap * worse.size)


def collapse(texts: Sequence[str], limit: int) -> list[Group]:
    """Groups of a ranking (best first), at most `limit` of them: each text joins the first
    better-ranked kept text it `repeats`, else starts a group. Texts after the `limit`-th
    group are still folded into the kept ones but start none."""
    groups: list[Group] = []
    kept: list[np.ndarray] = []
    for i, text in enumerate(texts):
        sh = shingles(text)
        for g, ksh in enumerate(kept):
            if repeats(ksh, sh):
                groups[g] = Group(groups[g].kept, (*groups[g].absorbed, i))
                break
        else:
            if len(groups) < limit:
                groups.append(Group(i))
                kept.append(sh)
    return groups
