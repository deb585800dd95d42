"""A `StoreView` is one consistent state of the store, whatever is written meanwhile.

(Segment files round-trip and refuse another dimension: tests/index/test_segment*.py.)
"""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine


def test_a_view_keeps_its_state_while_another_write_commits(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    engine.ingest_bytes("a.txt", "长三角一体化示范区今年新开工项目四十个。".encode())
    with engine.store.read_view() as view:
        before = view.generation
        engine.ingest_bytes("b.txt", "上海港开通两条绿色航运走廊，连接洛杉矶和长滩。".encode())
        (rows,) = list(view.row_batches(use_embedder.dim))
        assert view.generation == before and set(view.doc_rows()) == set(rows.doc_ids)
        assert len(rows.texts) == len(rows.vectors) == 1  # b.txt is not in this view
        assert rows.tokens[0]  # stored with the chunk at ingest
        assert view.changes_since(before) is not None
        assert view.changes_since(before).added == []  # type: ignore[union-attr]
    assert engine.store.generation() > before
    with engine.store.read_view() as view:
        assert sum(len(b) for b in view.row_batches(use_embedder.dim)) == 2
        changes = view.changes_since(before)
        assert changes is not None and len(changes.added) == 1 and changes.deleted == []
    engine.close()
