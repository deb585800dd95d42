"""QueryBatcher: concurrent callers get exactly their own vectors, batched; failures reach callers."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from rag.embed.base import Embedder, Kind
from rag.embed.batcher import QueryBatcher


class Recording(Embedder):
    """The real embedder, recording the batch sizes it is asked for."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.batches: list[int] = []

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        self.batches.append(len(texts))
        return self.inner.embed_batch(texts, kind)


def test_concurrent_queries_are_batched_and_exact(use_embedder: Embedder) -> None:
    rec = Recording(use_embedder)
    batcher = QueryBatcher(rec, max_batch=64)
    questions = [f"长三角第{i}个问题是什么？" for i in range(48)]
    expected = {q: use_embedder.embed_query(q) for q in questions}
    got: dict[str, np.ndarray] = {}
    barrier = threading.Barrier(len(questions))

    def ask(q: str) -> None:
        barrier.wait()
        got[q] = batcher.embed_query(q)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    batcher.close()
    assert set(got) == set(questions)
    for q in questions:
        assert np.allclose(got[q], expected[q], atol=1e-5)
    assert sum(rec.batches) == len(questions)
    assert max(rec.batches) > 1, "concurrent queries were never encoded together"


def test_a_lone_query_is_encoded_at_once(use_embedder: Embedder) -> None:
    rec = Recording(use_embedder)
    batcher = QueryBatcher(rec)
    v = batcher.embed_query("G60科创走廊")
    batcher.close()
    assert rec.batches == [1] and np.allclose(v, use_embedder.embed_query("G60科创走廊"), atol=1e-5)


class Failing(Embedder):
    name, dim = "failing", 4

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        raise RuntimeError("model crashed")


def test_failures_reach_the_caller_and_the_worker_survives() -> None:
    batcher = QueryBatcher(Failing())
    for _ in range(2):
        with pytest.raises(RuntimeError, match="model crashed"):
            batcher.embed_query("x")
    batcher.close()
