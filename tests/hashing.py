"""A stand-in embedder for write-path tests: character bigrams hashed into a small vector space.

Deterministic, fast and model-free, yet texts sharing words get close vectors, so searches rank
meaningfully. Importable by subprocesses (crash tests) as `hashing`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.embed.base import Embedder, Kind, normalize
from rag.index.persist import StaleOrCorrupt
from rag.index.segment import Segment, SegmentRows
from rag.index.segments import MANIFEST_FILE, SegmentSet
from rag.index.tokenize import tokenize

if TYPE_CHECKING:
    from rag.engine import Engine

DIM = 64


class HashingEmbedder(Embedder):
    """Bag of hashed character bigrams, L2-normalised."""

    name = "test-hashing-64"
    dim = DIM

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """One vector per text."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for a, b in itertools.pairwise(t):
                h = hashlib.blake2b((a + b).encode(), digest_size=4).digest()
                out[i, int.from_bytes(h, "little") % DIM] += 1.0
            out[i, 0] += 0.01  # never the zero vector
        return normalize(out)


def segment_set(texts: Sequence[str], *, per_segment: int | None = None) -> SegmentSet:
    """A segment set over `texts` (one document each, tokenised as ingest does, hashed
    vectors, one sentence per chunk), `per_segment` texts to a segment (all in one if None)."""
    emb = HashingEmbedder()
    step = per_segment or max(1, len(texts))
    segs = SegmentSet()
    for lo in range(0, len(texts), step):
        part = list(texts[lo : lo + step])
        n = len(part)
        vectors = emb.embed(part, "passage")
        segs = segs.with_added(
            Segment.build(
                SegmentRows(
                    chunk_ids=np.arange(lo + 1, lo + n + 1, dtype=np.int64),
                    doc_ids=[f"d{lo + i}" for i in range(n)],
                    ords=np.zeros(n, dtype=np.int64),
                    starts=np.zeros(n, dtype=np.int64),
                    ends=np.array([len(t) for t in part], dtype=np.int64),
                    texts=part,
                    tokens=[tokenize(t) for t in part],
                    vectors=vectors,
                    sent_vectors=vectors,
                    sent_owner=np.arange(n, dtype=np.int64),
                    sent_starts=np.zeros(n, dtype=np.int64),
                    sent_ends=np.array([len(t) for t in part], dtype=np.int64),
                ),
                DIM,
            )
        )
    return segs


def saved_current(engine: Engine) -> bool:
    """Whether the segment files on disk are the engine's current state: a manifest stamped with
    the store's generation that loads (every segment it lists there, intact) and lists the
    engine's segments (read while no merge can swap them)."""
    index_dir = engine.settings.index_dir
    # under the write lock: a background merge swaps segments and saves the manifest under it
    with engine.indexer._write_lock:
        generation = engine.store.generation()
        try:
            saved = SegmentSet.load(index_dir, generation, dim=engine.embedder.dim)
        except StaleOrCorrupt:
            return False
        return saved.seg_ids == engine.snapshot.segments.seg_ids


def derived_files(index_dir: Path) -> list[str]:
    """The derived files in `index_dir`: the manifest and segment files."""
    return sorted(
        p.name for p in index_dir.iterdir() if p.name == MANIFEST_FILE or p.suffix == ".seg"
    )


def random_segment(rng: np.random.Generator, n: int, dim: int) -> Segment:
    """A segment of `n` random unit vectors (one sentence each), no meaningful text."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return Segment.build(
        SegmentRows(
            chunk_ids=np.arange(1, n + 1, dtype=np.int64),
            doc_ids=["d"] * n,
            ords=np.arange(n, dtype=np.int64),
            starts=np.zeros(n, dtype=np.int64),
            ends=np.ones(n, dtype=np.int64),
            texts=["x"] * n,
            tokens=[["x"]] * n,
            vectors=v,
            sent_vectors=v,
            sent_owner=np.arange(n, dtype=np.int64),
            sent_starts=np.zeros(n, dtype=np.int64),
            sent_ends=np.ones(n, dtype=np.int64),
        ),
        dim,
    )
