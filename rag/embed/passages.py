"""Chunk and sentence vectors for chunk texts, each text embedded once.

A chunk is stored with its own vector and one per answer-sized sentence (`sentence_spans`).
With the default embedder (`UseEmbedder`, which can compose) a chunk is cut into its *parts*,
the sentences and the text between them, and each distinct part goes through the model's token
layers once (neighbouring chunks share a sentence, copies of an article share all): a
sentence's vector is its part's, exactly as if embedded alone, and the chunk's vector is the
model's head over its parts' pooled token features summed, which is its own text's embedding but
for the n-gram windows that would cross a part boundary (cosine 0.990 on average with the
chunk text embedded, on CMRC 2018's chunks; a mean of the sentence vectors gets 0.838). About
half the characters of embedding the chunk text and the sentences separately, which is what any
other embedder still does (`LEGACY`).

`vector_recipe` names the recipe; the store records it with the embedder, and refuses to mix
vectors of two recipes in one index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rag.embed.base import Embedder
from rag.embed.use import Pooled, UseEmbedder
from rag.ingest.split import sentence_spans
from rag.store.sqlite import LEGACY_RECIPE, ChunkVectors

#: Chunk text and each of its sentences embedded separately (any other embedder; indexes made
#: before the recipe was recorded).
LEGACY = LEGACY_RECIPE
#: Parts pooled once, the chunk vector composed from its parts' pooled features (`UseEmbedder`).
COMPOSED = "composed-parts-v1"


def vector_recipe(embedder: Embedder) -> str:
    """The recipe `chunk_vectors` follows with this embedder."""
    return COMPOSED if isinstance(embedder, UseEmbedder) else LEGACY


def parts(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    """`(sentence spans, parts)` of a chunk: the parts are its sentences and the non-blank
    stretches between them (whitespace trimmed), in order; a chunk without a sentence is one
    part."""
    spans = sentence_spans(text)
    out: list[str] = []
    pos = 0
    for a, b in [*spans, (len(text), len(text))]:
        gap = text[pos:a].strip()
        if gap:
            out.append(gap)
        if a < b:
            out.append(text[a:b])
        pos = b
    return spans, out or [text]


def chunk_vectors(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int = 64,
    step: int | None = None,
    between: Callable[[], None] | None = None,
    recipe: str | None = None,
) -> list[ChunkVectors]:
    """The vectors of each chunk text and of its sentences, per `recipe` (an index's own, so
    that it never mixes two; by default `vector_recipe(embedder)`).

    The texts to embed are taken `step` at a time (all at once without it), and `between()` is
    called before each slice (it may raise to cancel).
    """
    recipe = recipe or vector_recipe(embedder)
    if recipe == COMPOSED and isinstance(embedder, UseEmbedder):
        return _composed(embedder, texts, batch_size, step, between)
    return _legacy(embedder, texts, batch_size, step, between)


def _slices(n: int, step: int | None, between: Callable[[], None] | None) -> Iterator[slice]:
    """`step` rows at a time, `between()` called before each (lazily: as each is taken)."""
    step = step or max(n, 1)
    for i in range(0, n, step):
        if between is not None:
            between()
        yield slice(i, i + step)


def _composed(
    embedder: UseEmbedder,
    texts: Sequence[str],
    batch_size: int,
    step: int | None,
    between: Callable[[], None] | None,
) -> list[ChunkVectors]:
    cut = [parts(t) for t in texts]
    rows: dict[str, int] = {}  # each distinct part → its row
    for _, ps in cut:
        for p in ps:
            rows.setdefault(p, len(rows))
    unique = list(rows)
    pooled_parts: list[Pooled] = []
    for s in _slices(len(unique), step, between):
        todo = unique[s]
        pooled_parts += [
            embedder.pool(todo[i : i + batch_size]) for i in range(0, len(todo), batch_size)
        ]
    if not pooled_parts:
        return []
    pooled = Pooled.concat(pooled_parts)
    alone = embedder.finish(pooled.sums, pooled.lens)  # each part embedded on its own
    joined = [pooled.joined([rows[p] for p in ps]) for _, ps in cut]
    whole = embedder.finish(
        np.stack([s for s, _ in joined]), np.array([n for _, n in joined], dtype=np.int64)
    )
    out = []
    for j, (t, (spans, _)) in enumerate(zip(texts, cut, strict=True)):
        sentences = alone[[rows[t[a:b]] for a, b in spans]] if spans else alone[:0]
        out.append(ChunkVectors(whole[j], spans, sentences))
    return out


def _legacy(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int,
    step: int | None,
    between: Callable[[], None] | None,
) -> list[ChunkVectors]:
    spans = [sentence_spans(t) for t in texts]
    # Chunks and sentences together: batches stay full.
    todo = list(texts) + [t[a:b] for t, ss in zip(texts, spans, strict=True) for a, b in ss]
    found = [
        embedder.embed(todo[s], "passage", batch_size) for s in _slices(len(todo), step, between)
    ]
    vectors = np.vstack(found) if found else embedder.embed([], "passage", batch_size)
    out = []
    k = len(texts)
    for j, ss in enumerate(spans):
        out.append(ChunkVectors(vectors[j], ss, vectors[k : k + len(ss)]))
        k += len(ss)
    return out
