"""The embedder contract: one abstract batch method, shared batching and normalisation on the base."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors; cosine similarity is then inner product."""

    #: The name recorded in the index manifest; an index refuses an embedder of another name.
    name: str = ""
    #: Vector dimension.
    dim: int = 0

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed one batch of texts (`kind` lets asymmetric models add query/passage prefixes)."""

    def embed(
        self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 64
    ) -> np.ndarray:
        """Embed any number of texts in batches; returns an (n, dim) L2-normalised float32 array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self.embed_batch(texts[i : i + batch_size], kind), dtype=np.float32)
            for i in range(0, len(texts), batch_size)
        ]
        return normalize(np.vstack(parts))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a (dim,) vector."""
        return self.embed([text], kind="query")[0]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
