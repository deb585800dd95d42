"""A stand-in embedder for write-path tests: character bigrams hashed into a small vector space.

Deterministic, fast and model-free, yet texts sharing words get close vectors, so searches rank
meaningfully. Importable by subprocesses (crash tests) as `tests.write.hashing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from rag.embed.base import Embedder, Kind, normalize

DIM = 64


class HashingEmbedder(Embedder):
    """Bag of hashed character bigrams, L2-normalised."""

    name = "test-hashing-64"
    dim = DIM

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """One vector per text."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for a, b in zip(t, t[1:], strict=False):
                h = hashlib.blake2b((a + b).encode(), digest_size=4).digest()
                out[i, int.from_bytes(h, "little") % DIM] += 1.0
            out[i, 0] += 0.01  # never the zero vector
        return normalize(out)
