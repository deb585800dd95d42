"""Quality guard for issue 13: the held-out answers set and the own held-out set on the bundled
corpus must not fall below the figures measured when the answerability model was refitted for
graded answers (confident, `low_confidence` caveat, refused).

Real embedder, the shipped corpus. The thresholds sit a little below the measured figures (see
docs/quality.md): they guard against regressions and were not fitted to; nothing is fitted on
these sets (the answerability model is fitted on `benchmarks/data/answer_fit.jsonl`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import Engine
from rag.eval import load_questions, run_eval

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def _report(engine: Engine, name: str) -> dict[str, dict]:
    rep, _ = run_eval(engine, load_questions(DATA / name))
    return {"overall": rep["overall"], **rep["by_kind"]}


@pytest.fixture(scope="module")
def answers(corpus_engine: Engine) -> dict[str, dict]:
    return _report(corpus_engine, "answers_dev.jsonl")


@pytest.fixture(scope="module")
def own(corpus_engine: Engine) -> dict[str, dict]:
    return _report(corpus_engine, "own_dev_qa.jsonl")


def test_english_questions_are_answered(answers: dict[str, dict]) -> None:
    # measured: hit@5 0.953, answer-contains 0.767, false abstention 0.023, caveated 0.302
    assert answers["english"]["hit@5"] >= 0.93
    assert answers["english"]["answer_contains"] >= 0.75
    assert answers["english"]["false_abstention"] <= 0.05
    assert answers["english"]["caveated"] <= 0.37


def test_paraphrases_are_answered(answers: dict[str, dict]) -> None:
    # measured: hit@5 0.906, answer-contains 0.562, false abstention 0.219, caveated 0.750
    # (before the graded answers: 0.188 and 0.812)
    assert answers["paraphrase"]["hit@5"] >= 0.87
    assert answers["paraphrase"]["answer_contains"] >= 0.50
    assert answers["paraphrase"]["false_abstention"] <= 0.28


def test_near_topic_questions_are_refused_or_caveated(answers: dict[str, dict]) -> None:
    # measured: refused 0.500, refused or caveated 0.656 (before the graded answers: 0.031,
    # 0.531; before the selector was fitted to convergence: 0.469, 0.625)
    assert answers["near_topic"]["abstention"] >= 0.40
    assert answers["near_topic"]["refused_or_caveated"] >= 0.56
    assert answers["non_question"]["refused_unquoted"] == 1.0


def test_own_held_out_set_does_not_regress(own: dict[str, dict]) -> None:
    # measured: hit@5 1.000, answer-contains 0.920, false abstention 0.020, caveated 0.060
    # (before the selector was fitted to convergence: 0.000, 0.080);
    # unanswerable: refused 2/10, refused or caveated 5/10
    assert own["overall"]["hit@5"] >= 0.97
    assert own["overall"]["answer_contains"] >= 0.88
    assert own["overall"]["false_abstention"] <= 0.04
    assert own["overall"]["caveated"] <= 0.14
    assert own["unanswerable"]["abstention"] >= 0.2
    assert own["unanswerable"]["refused_or_caveated"] >= 0.4
