"""Quality regression guard: the seed dev set on the bundled corpus must stay at its targets.

Real embedder, real indexes, the shipped corpus; fails when a change lowers retrieval or answer
quality below what the foundation issue asks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import Engine
from rag.eval import load_questions, run_eval

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "benchmarks" / "data" / "seed_dev_qa.jsonl"


@pytest.fixture(scope="module")
def report(corpus_engine: Engine) -> dict[str, dict]:
    rep, _ = run_eval(corpus_engine, load_questions(DEV))
    return {"overall": rep["overall"], **rep["by_kind"]}


def test_retrieval_targets(report: dict[str, dict]) -> None:
    assert report["overall"]["hit@5"] >= 0.90
    assert report["overall"]["hit@1"] >= 0.75
    assert report["crosslingual"]["hit@5"] >= 0.70
    assert report["crossscript"]["hit@5"] == 1.0


def test_answer_targets(report: dict[str, dict]) -> None:
    assert report["overall"]["answer_contains"] >= 0.70
    # at least 2 of the 3 unanswerable questions refused, at most 5% of answerable ones
    assert report["unanswerable"]["abstention"] >= 2 / 3
    assert report["overall"]["false_abstention"] <= 0.05
