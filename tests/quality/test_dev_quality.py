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
    # every unanswerable question refused or answered with a machine-readable caveat (issue 13:
    # graded answers), at least two of the three refused; at most 5% of the answerable ones
    # refused. Measured: 2/3 refused (北京到广州的高铁票价 is caveated: the corpus names both
    # cities in a sentence on rents), 3/3 refused or caveated, no false refusal.
    assert report["unanswerable"]["refused_or_caveated"] == 1.0
    assert report["unanswerable"]["abstention"] >= 0.66
    assert report["overall"]["false_abstention"] <= 0.05
