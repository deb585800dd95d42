"""Quality regression guard: the seed dev set on the bundled corpus must stay at its targets.

Real embedder, real indexes, the shipped corpus; fails when a change lowers retrieval or answer
quality below the targets of the quality issue (#5). The dev set is never used for fitting: the
reranker, the sentence selector and the abstention model are fitted on CMRC 2018.
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
    assert report["overall"]["hit@5"] >= 0.97
    assert report["overall"]["hit@1"] >= 0.90
    assert report["crosslingual"]["hit@5"] >= 0.90  # the English questions
    assert report["crossscript"]["hit@5"] == 1.0


def test_answer_targets(report: dict[str, dict]) -> None:
    assert report["overall"]["answer_contains"] >= 0.85
    # every unanswerable question refused, at most 5% of the answerable ones
    assert report["unanswerable"]["abstention"] == 1.0
    assert report["overall"]["false_abstention"] <= 0.05
