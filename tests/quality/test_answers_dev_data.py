"""The held-out sets of issue 13 (`benchmarks/data/answers_*.jsonl`) stay well-formed.

Every answer is verbatim in its document, paraphrases avoid the answer sentence's terms, every
near-topic question asks for something the corpus does not hold, and each kind has its minimum
count (see `benchmarks/check_answers_dev.py`). No model: plain text checks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("name", sorted(checker.HELD_OUT))
def test_the_sets_written_blind_are_sound(name: str) -> None:
    rows, corpus = load(DEFAULT.with_name(name))
    assert check(rows, corpus, checker.HELD_OUT[name]) == []


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
