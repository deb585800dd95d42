"""A `StoreView` is one consistent state of the store, whatever is written meanwhile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.index.dense import DenseIndex
from rag.index.persist import StaleOrCorrupt


def test_a_view_keeps_its_state_while_another_write_commits(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    engine.ingest_bytes("a.txt", "长三角一体化示范区今年新开工项目四十个。".encode())
    with engine.store.read_view() as view:
        before = view.generation
        engine.ingest_bytes("b.txt", "上海港开通两条绿色航运走廊，连接洛杉矶和长滩。".encode())
        rows = view.chunk_rows()
        vectors = np.vstack(list(view.vector_batches("vector", use_embedder.dim)))
        assert view.generation == before and set(view.doc_metadata()) == set(rows.doc_ids)
        assert len(rows.texts) == len(vectors) == 1  # b.txt is not in this view
    assert engine.store.generation() > before
    with engine.store.read_view() as view:
        assert len(view.chunk_rows().texts) == 2
    engine.close()


def test_dense_files_round_trip_and_refuse_another_dimension(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    index = DenseIndex.build_batches([vectors[:20], vectors[20:]], 8)
    stamp: dict[str, object] = {"generation": 3, "rows": 50, "dim": 8}
    index.save(tmp_path / "d.bin", stamp)
    loaded = DenseIndex.load(tmp_path / "d.bin", stamp)
    query = vectors[7]
    assert np.allclose(loaded.scores(query), vectors @ query)
    with pytest.raises(StaleOrCorrupt):
        DenseIndex.load(tmp_path / "d.bin", dict(stamp, dim=16))
