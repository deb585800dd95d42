"""Dense retrieval: a FAISS inner-product index over L2-normalised vectors (cosine)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from rag.index.persist import read_stamped, write_stamped


class DenseIndex:
    """Exact inner-product search (`IndexFlatIP`); row `i` is the i-th chunk in store order."""

    def __init__(self, index: faiss.Index) -> None:
        """Wrap a built FAISS index."""
        self.index = index

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
        return cls(faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8)))

    def __len__(self) -> int:
        """Number of vectors."""
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` `(scores, rows)` per query; `rows` restricts the search to those rows."""
        k = max(1, min(k, len(self)))
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if rows is None:
            return self.index.search(q, k)  # type: ignore[no-any-return]
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows.astype(np.int64)))
        return self.index.search(q, min(k, len(rows)) or 1, params=params)  # type: ignore[no-any-return]

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of one query against every row (cheap for flat indexes; used for fusion)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.float32)
        flat = faiss.rev_swig_ptr(self.index.get_xb(), len(self) * self.index.d)
        return np.asarray(flat).reshape(len(self), self.index.d) @ query.astype(np.float32)
