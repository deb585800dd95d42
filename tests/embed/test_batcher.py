"""QueryBatcher: concurrent callers get exactly their own vectors, batched; failures reach callers."""

from __future__ import annotations

import threading
import time
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


class Gated(Recording):
    """The real embedder, recording batches; the text GATE holds its batch until `open` is set, so
    that the queries sent meanwhile queue up and are encoded together as the next batch."""

    GATE = "闸门"

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.open = threading.Event()
        self.entered = threading.Event()
        self.texts: list[list[str]] = []

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        self.texts.append(list(texts))
        if self.GATE in texts:
            self.entered.set()
            assert self.open.wait(timeout=30)
        return super().embed_batch(texts, kind)


def test_a_bad_text_fails_only_its_own_query_not_its_batch(use_embedder: Embedder) -> None:
    """A lone surrogate makes the real tokenizer raise; the queries that shared its batch still
    get their own vectors."""
    gated = Gated(use_embedder)
    batcher = QueryBatcher(gated, max_batch=64)
    good = ["长三角一体化示范区在哪里？", "G60科创走廊包括哪些城市？"]
    bad = "\ud800 x"
    results: dict[str, np.ndarray | BaseException] = {}

    def ask(q: str) -> None:
        try:
            results[q] = batcher.embed_query(q)
        except Exception as exc:
            results[q] = exc

    first = threading.Thread(target=ask, args=(Gated.GATE,))
    first.start()
    assert gated.entered.wait(timeout=30)  # the worker is busy with the gate's batch
    threads = [threading.Thread(target=ask, args=(q,)) for q in (good[0], bad, good[1])]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while batcher._queue.qsize() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    gated.open.set()
    for t in [first, *threads]:
        t.join(timeout=30)
    batcher.close()

    batch = sorted([good[0], bad, good[1]])
    assert any(sorted(t) == batch for t in gated.texts), "the three queries were not one batch"
    assert isinstance(results[bad], UnicodeEncodeError)
    for q in good:
        v = results[q]
        assert isinstance(v, np.ndarray), f"{q!r} failed with its batch: {v!r}"
        assert np.allclose(v, use_embedder.embed_query(q), atol=1e-5)
