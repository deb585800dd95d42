"""The held-out set of issue 13 (`benchmarks/data/answers_dev.jsonl`) stays well-formed.

Every answer is verbatim in its document, paraphrases avoid the answer sentence's terms, every
near-topic question asks for something the corpus does not hold, and each kind has its minimum
count (see `benchmarks/check_answers_dev.py`). No model: plain text checks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rag.eval import load_questions

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "check_answers_dev.py"
_spec = importlib.util.spec_from_file_location("check_answers_dev", _SCRIPT)
assert _spec is not None and _spec.loader is not None
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)  # benchmarks/ is scripts, not an installed package
DEFAULT, check, load = checker.DEFAULT, checker.check, checker.load


def test_answers_dev_is_sound() -> None:
    rows, corpus = load()
    assert check(rows, corpus) == []


def test_answers_fresh_is_sound() -> None:
    rows, corpus = load(checker.FRESH)
    assert check(rows, corpus, checker.FRESH_MINIMUM) == []


def test_answers_blind_is_sound() -> None:
    rows, corpus = load(checker.BLIND)
    assert check(rows, corpus, checker.BLIND_MINIMUM) == []


def test_answers_blind2_is_sound() -> None:
    rows, corpus = load(checker.BLIND2)
    assert check(rows, corpus, checker.BLIND2_MINIMUM) == []


def test_answers_blind3_is_sound() -> None:
    rows, corpus = load(checker.BLIND3)
    assert check(rows, corpus, checker.BLIND3_MINIMUM) == []


def test_answers_blind4_is_sound() -> None:
    rows, corpus = load(checker.BLIND4)
    assert check(rows, corpus, checker.BLIND4_MINIMUM) == []


def test_answers_dev_loads_for_the_evaluator() -> None:
    questions = load_questions(DEFAULT)
    kinds = {q.kind for q in questions}
    assert kinds == {"english", "paraphrase", "near_topic", "non_question"}
    assert all(q.answerable == (q.kind in ("english", "paraphrase")) for q in questions)


def test_check_catches_a_present_constraint() -> None:
    corpus = {"d.txt": "2023年碳谷产值300亿元。"}
    rows = [
        {
            "id": "x",
            "kind": "near_topic",
            "doc": "d.txt",
            "answers": [],
            "answerable": False,
            "constraint": "year",
            "topic": "产值",
            "absent": "2023",
        }
    ]
    assert any("occurs with" in p for p in check(rows, corpus))
