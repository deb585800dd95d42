"""Merge retrieved chunks that overlap or touch in their document into one contiguous passage.

Neighbouring chunks share a sentence (`chunk_overlap`), so a ranking often holds two chunks that
are one stretch of one document: shown apart they repeat text, and an answer that crosses the
chunk boundary lies in neither. A later hit that overlaps or touches an earlier, better one joins
it (up to `MAX_CHUNKS` chunks); the merged passage takes the better hit's place in the ranking, its
text is the exact document text over the union of the spans, and its signals are the best of its
parts. Chunks of one document that are apart stay separate passages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from rag.index.snapshot import Snapshot
from rag.retrieve.hybrid import Hit

MAX_CHUNKS = 3  # a merged passage spans at most this many chunks


@dataclass(frozen=True)
class Merged:
    """One passage of the ranking: its best hit (signals combined) and its document span."""

    hit: Hit
    rows: tuple[int, ...]
    start: int
    end: int
    text: str


def merge_hits(snap: Snapshot, hits: Sequence[Hit], k: int) -> list[Merged]:
    """The first `k` passages of `hits` (best first) with touching chunks of a document merged.

    A hit touching a passage that is already `MAX_CHUNKS` long is dropped (its text is mostly
    shown already); one that bridges two passages joins them. Passages of one document never
    overlap or touch.
    """
    out: list[Merged] = []
    for h in hits:
        new = Merged(h, (h.row,), snap.start(h.row), snap.end(h.row), snap.text(h.row))
        touching = [i for i, m in enumerate(out) if _touch(snap, m, new)]
        if not touching:
            if len(out) < k:
                out.append(new)
            continue
        first = touching[0]
        if len(touching) == 1 and len(out[first].rows) >= MAX_CHUNKS:
            continue
        joined = _join(out[first], new)
        for i in touching[1:]:  # `new` bridged them: now they all touch `joined`
            joined = _join(joined, out[i])
        out[first] = joined
        out = [m for i, m in enumerate(out) if i == first or i not in touching]
    return out


def _touch(snap: Snapshot, a: Merged, b: Merged) -> bool:
    """Same document, and the spans overlap or meet."""
    return (
        b.start <= a.end and a.start <= b.end and snap.doc_id(a.hit.row) == snap.doc_id(b.hit.row)
    )


def _join(m: Merged, n: Merged) -> Merged:
    """One passage over both spans; `m` ranks above `n`, so its hit leads."""
    start, end = min(m.start, n.start), max(m.end, n.end)
    # Both are exact slices of one document text, so their union is too.
    text = (n.text[: m.start - n.start] if n.start < m.start else "") + m.text
    if n.end > m.end:
        text += n.text[len(n.text) - (n.end - m.end) :]
    seen = {s[0] for s in m.hit.sentences}
    sentences = tuple(
        sorted(m.hit.sentences + tuple(s for s in n.hit.sentences if s[0] not in seen))
    )
    coverage = max((c for c in (m.hit.coverage, n.hit.coverage) if c is not None), default=None)
    hit = dataclasses.replace(
        m.hit,
        dense=max(m.hit.dense, n.hit.dense),
        gap=max(m.hit.gap, n.hit.gap),
        lexical=max(m.hit.lexical, n.hit.lexical),
        coverage=coverage,
        sentences=sentences,
    )
    assert len(text) == end - start, "chunk offsets disagree with their texts"
    return Merged(hit, m.rows + n.rows, start, end, text)
