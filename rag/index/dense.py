"""Dense retrieval: a FAISS inner-product index over L2-normalised vectors (cosine)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from rag.index.persist import StaleOrCorrupt, read_stamped, write_stamped


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
        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    def save(self, path: Path, stamp: dict[str, object]) -> None:
        """Write atomically with the given stamp (generation, embedder)."""
        payload = faiss.serialize_index(self.index).tobytes()
        write_stamped(path, payload, dict(stamp, kind="dense"))

    @classmethod
    def load(cls, path: Path, stamp: dict[str, object]) -> DenseIndex:
        """Load if the file matches `stamp` and is intact; else `StaleOrCorrupt`."""
        payload = read_stamped(path, dict(stamp, kind="dense"))
        index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        if not isinstance(index, faiss.IndexFlat):
            raise StaleOrCorrupt(f"{path.name}: not a flat index")
        return cls(index)

    def __len__(self) -> int:
        """Number of vectors."""
        return int(self.index.ntotal)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of one query against every row (cheap for flat indexes; used for fusion)."""
        return self._matrix @ query.astype(np.float32)
