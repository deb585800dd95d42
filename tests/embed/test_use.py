"""The default embedder under concurrency: queries embedded while an upload's texts are (the
server's case) get the vectors they get alone, and do not wait for the upload's lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rag.embed.base import Embedder
from rag.embed.use import UseEmbedder

QUERIES = [f"长三角第{i}号物流方案由哪些省市联合印发？" for i in range(6)] + [
    "How much tax did the Carbon Valley collect in 2023?",
    "张江科学城有哪些产业？",
]
UPLOAD = [
    f"第{i}条：上海、江苏、浙江和安徽四地联合印发了物流降本增效方案，全长{i}公里。"
    for i in range(400)
]


def test_queries_during_an_upload_are_exact(use_embedder: Embedder) -> None:
    assert isinstance(use_embedder, UseEmbedder)
    alone = [use_embedder.embed_query(q) for q in QUERIES]
    upload_alone = use_embedder.embed(UPLOAD, batch_size=64)
    with ThreadPoolExecutor(3) as pool:
        upload = pool.submit(use_embedder.embed, UPLOAD, "passage", 64)
        pooled = pool.submit(use_embedder.pool, UPLOAD[:200])
        together = [pool.submit(use_embedder.embed_query, q) for q in QUERIES * 5]
        got = [f.result() for f in together]
        np.testing.assert_allclose(upload.result(), upload_alone, atol=1e-5)
        assert len(pooled.result().lens) == 200
    for i, vec in enumerate(got):
        np.testing.assert_allclose(vec, alone[i % len(QUERIES)], atol=1e-5)


def test_a_query_does_not_wait_for_the_embedding_lock(use_embedder: Embedder) -> None:
    assert isinstance(use_embedder, UseEmbedder)
    use_embedder.embed_query("预热")
    # what an upload's large batch holds for as long as it embeds
    with use_embedder._lock:
        done = threading.Event()
        worker = threading.Thread(target=lambda: (use_embedder.embed_query("物流"), done.set()))
        worker.start()
        # a query never takes the lock, so it finishes while the lock is held
        assert done.wait(timeout=10), "the query waited for the upload's lock"
    worker.join()
