"""Small engines over a few documents written in the test, for the answer-layer tests that need
the whole pipeline (retrieval, abstention, selection, constraint checks) on known text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine

#: An unrelated document: with a single document the abstention model has no contrast.
RAIL = (
    "沪苏湖高铁全长约164公里，设计时速350公里，于2024年12月26日开通运营。"
    "线路自上海虹桥站引出，经江苏苏州，终至浙江湖州，沿途设七座车站。\n"
)


def engine_over(
    index_dir: Path,
    embedder: Embedder,
    docs: Mapping[str, str],
    relevance_floor: float | None = None,
) -> Engine:
    """An engine (no LLM) over `docs` (source name → text), ingested in order; `relevance_floor`
    overrides the answerability model's refusal floor."""
    settings = (
        Settings(index_dir=index_dir, llm_base_url=None)
        if relevance_floor is None
        else Settings(index_dir=index_dir, llm_base_url=None, relevance_floor=relevance_floor)
    )
    engine = Engine(settings, embedder=embedder)
    for name, text in docs.items():
        engine.ingest_bytes(name, text.encode())
    return engine
