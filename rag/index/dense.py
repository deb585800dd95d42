"""Dense retrieval: a FAISS inner-product index over L2-normalised vectors (cosine).

The file is the raw float32 matrix (a flat index is nothing else), written straight from FAISS's
own storage and read straight into it: saving or loading never holds a third copy of the vectors
(serialising the index would), which matters at half a million sentence vectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

from rag.index.persist import StaleOrCorrupt, read_header, read_stamped, write_stamped

_FORMAT = {"kind": "dense", "format": "f32"}  # in every file's header


class DenseIndex:
    """Exact inner-product search (`IndexFlatIP`); row `i` is the i-th chunk in store order."""

    def __init__(self, index: faiss.IndexFlat) -> None:
        """Wrap a built flat FAISS index."""
        self.index = index
        # A zero-copy view of the stored vectors: scoring every row is one matrix-vector product.
        n, d = int(index.ntotal), int(index.d)
        ptr = index.get_xb() if n else None
        self._matrix = (
            np.asarray(faiss.rev_swig_ptr(ptr, n * d)).reshape(n, d)
            if n
            else np.zeros((0, d), np.float32)
        )

    @classmethod
    def build(cls, vectors: np.ndarray) -> DenseIndex:
        """Index `vectors` (n, dim), assumed L2-normalised."""
        return cls.build_batches([vectors], vectors.shape[1])

    @classmethod
    def build_batches(cls, batches: Iterable[np.ndarray], dim: int) -> DenseIndex:
        """Index the rows of `batches` in order (each `(rows, dim)`), one batch in memory at a time."""
        index = faiss.IndexFlatIP(dim)
        for batch in batches:
            if len(batch):
                index.add(np.ascontiguousarray(batch, dtype=np.float32))
        return cls(index)

    def save(self, path: Path, stamp: dict[str, object]) -> None:
        """Write atomically with the given stamp (generation, embedder)."""
        payload = self._matrix.data.cast("B") if len(self) else memoryview(b"")
        write_stamped(path, payload, dict(stamp, **_FORMAT, dim=int(self.index.d)))

    @staticmethod
    def is_current(path: Path, stamp: dict[str, object]) -> bool:
        """Whether the file at `path` carries `stamp` (its header only is read; `StaleOrCorrupt`
        when it is missing or damaged)."""
        head = read_header(path)
        return all(head.get(k) == v for k, v in dict(stamp, **_FORMAT).items())

    @classmethod
    def load(cls, path: Path, stamp: dict[str, object]) -> DenseIndex:
        """Load if the file matches `stamp` and is intact; else `StaleOrCorrupt`."""
        dim = stamp.get("dim")
        payload = read_stamped(path, dict(stamp, **_FORMAT))
        if not isinstance(dim, int) or len(payload) % (4 * dim):
            raise StaleOrCorrupt(f"{path.name}: not a matrix of {dim}-dimensional vectors")
        return cls.build(np.frombuffer(payload, dtype=np.float32).reshape(-1, dim))

    def __len__(self) -> int:
        """Number of vectors."""
        return int(self.index.ntotal)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of one query against every row (cheap for flat indexes; used for fusion)."""
        return self._matrix @ query.astype(np.float32)

    def scores_of(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine (float32) of one query against the given rows only: the sentences of a search's
        candidate chunks, never the whole matrix."""
        return self._matrix[rows].astype(np.float32, copy=False) @ query.astype(np.float32)
