"""Synthetic chunks for the segment tests: token lists, unit vectors, sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.index.segment import SegmentRows

VOCAB = [f"w{i}" for i in range(12)] + ["数据", "模型", "ai"]


@dataclass(frozen=True)
class Chunk:
    chunk_id: int
    doc_id: str
    ord: int
    text: str
    tokens: tuple[str, ...]
    vector: np.ndarray  # (dim,) float32, unit
    sent_vectors: np.ndarray  # (k, dim) float32, unit
    sent_spans: tuple[tuple[int, int], ...]


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def make_chunk(rng: np.random.Generator, chunk_id: int, doc_id: str, ord_: int, dim: int) -> Chunk:
    # Zipf-like draws from a small vocabulary: many shared terms, repeated terms, ties, and
    # some empty rows (length 0 must count in avgdl)
    weights = 1.0 / np.arange(1, len(VOCAB) + 1)
    n_tok = int(rng.integers(0, 10))
    tokens = tuple(rng.choice(VOCAB, size=n_tok, p=weights / weights.sum()).tolist())
    n_sent = int(rng.integers(0, 4))
    spans = tuple((10 * ord_ + 3 * j, 10 * ord_ + 3 * j + 2) for j in range(n_sent))
    return Chunk(
        chunk_id=chunk_id,
        doc_id=doc_id,
        ord=ord_,
        text=f"{doc_id}·{ord_}·" + " ".join(tokens),
        tokens=tokens,
        vector=unit(rng, 1, dim)[0],
        sent_vectors=unit(rng, n_sent, dim),
        sent_spans=spans,
    )


def rows_of(chunks: Sequence[Chunk], dim: int) -> SegmentRows:
    """Columns of `chunks` (sorted by chunk id here)."""
    chunks = sorted(chunks, key=lambda c: c.chunk_id)
    owner = [i for i, c in enumerate(chunks) for _ in c.sent_spans]
    spans = [s for c in chunks for s in c.sent_spans]
    sent = [c.sent_vectors for c in chunks if len(c.sent_vectors)]
    return SegmentRows(
        chunk_ids=np.array([c.chunk_id for c in chunks], dtype=np.int64),
        doc_ids=[c.doc_id for c in chunks],
        ords=np.array([c.ord for c in chunks], dtype=np.int64),
        starts=np.array([10 * c.ord for c in chunks], dtype=np.int64),
        ends=np.array([10 * c.ord + 9 for c in chunks], dtype=np.int64),
        texts=[c.text for c in chunks],
        tokens=[list(c.tokens) for c in chunks],
        vectors=np.stack([c.vector for c in chunks]) if chunks else np.zeros((0, dim), np.float32),
        sent_vectors=np.concatenate(sent) if sent else np.zeros((0, dim), np.float32),
        sent_owner=np.array(owner, dtype=np.int64),
        sent_starts=np.array([a for a, _ in spans], dtype=np.int64),
        sent_ends=np.array([b for _, b in spans], dtype=np.int64),
    )


def clustered(
    rng: np.random.Generator, n: int, dim: int, clusters: int, spread: float
) -> np.ndarray:
    """Unit vectors around `clusters` gaussian centres (noise `spread` per coordinate, centres
    of unit variance per coordinate)."""
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)]
    x += spread * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x
