"""The evaluator's refusal metrics (issue 13), computed over small fake Answers: no model needed.

`refused_or_caveated` counts an unanswerable question as handled when the answer was refused or
carried a `constraint_mismatch` warning; `refused_unquoted` only when it was refused without a
citation (what a greeting or a lone "?" must get); `caveated` is the share of answerable
questions answered with that warning.
"""

from __future__ import annotations

import pytest

from rag.eval import EvalQuestion, report, run_eval, summarize
from rag.types import Answer, Citation, Passage, Warning_

PASSAGE = Passage("d.txt:0", "d", "d.txt", "", "上海港2024年吞吐量5000万标箱。", 1.0, 0, 20)
CITE = Citation(1, "d.txt:0", "d.txt", 0, 20, "上海港2024年吞吐量5000万标箱。")
CAVEAT = Warning_("constraint_mismatch", "the documents give 2024, not 2025")
OTHER = Warning_("llm_failed", "fell back to extractive")


def _answer(answerable: bool, quoted: bool, *warnings: Warning_) -> Answer:
    return Answer(
        question="q",
        answer="上海港2024年吞吐量5000万标箱。[1]" if answerable else "未找到",
        answerable=answerable,
        mode="extractive",
        citations=(CITE,) if quoted else (),
        passages=(PASSAGE,),
        warnings=warnings,
    )


class Canned:
    """An Answerer that returns a fixed Answer per question text."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        return self.answers[question]


def _q(text: str, kind: str, answerable: bool) -> EvalQuestion:
    answers = ("5000万标箱",) if answerable else ()
    return EvalQuestion(text, text, answers, "d.txt", answerable, kind)


def test_refused_or_caveated_and_unquoted() -> None:
    engine = Canned(
        {
            "refused": _answer(False, False),
            "caveated": _answer(True, True, CAVEAT),
            "answered": _answer(True, True),
            "other-warning": _answer(True, True, OTHER),
            "hello": _answer(True, True),  # a greeting that got "answered"
            "?": _answer(False, False),
            "hi": _answer(False, True),  # refused, but quoting a passage all the same
            "caveated-hi": _answer(True, True, CAVEAT),
        }
    )
    questions = [
        _q("refused", "near_topic", False),
        _q("caveated", "near_topic", False),
        _q("answered", "near_topic", False),
        _q("other-warning", "near_topic", False),
        _q("hello", "non_question", False),
        _q("?", "non_question", False),
        _q("hi", "non_question", False),
        _q("caveated-hi", "non_question", False),
    ]
    rep, rows = run_eval(engine, questions)
    near, nonq = rep["by_kind"]["near_topic"], rep["by_kind"]["non_question"]
    assert near["abstention"] == pytest.approx(1 / 4)
    assert near["refused_or_caveated"] == pytest.approx(2 / 4)  # another warning is no caveat
    assert nonq["abstention"] == pytest.approx(2 / 4)
    assert nonq["refused_unquoted"] == pytest.approx(1 / 4)  # only "?": refused, no citation
    assert nonq["refused_or_caveated"] == pytest.approx(3 / 4)
    assert rep["overall"]["refused_or_caveated"] == pytest.approx(5 / 8)
    assert [r.caveated for r in rows] == [False, True, False, False, False, False, False, True]
    assert [r.quoted for r in rows] == [False, True, True, True, True, False, True, True]


def test_caveat_on_answerable_questions() -> None:
    engine = Canned(
        {
            "a": _answer(True, True, CAVEAT),
            "b": _answer(True, True),
            "c": _answer(False, False, CAVEAT),  # refused: not counted as a caveated answer
            "d": _answer(True, True, OTHER),
        }
    )
    rep, _ = run_eval(engine, [_q(t, "english", True) for t in "abcd"])
    m = rep["by_kind"]["english"]
    assert m["caveated"] == pytest.approx(1 / 4)
    assert m["answer_contains"] == pytest.approx(3 / 4)  # a caveated answer still answers
    assert m["false_abstention"] == pytest.approx(1 / 4)
    assert "refused_or_caveated" not in m  # only reported over unanswerable questions


def test_summaries_without_unanswerable_or_answerable() -> None:
    assert "refused_unquoted" not in summarize([])
    rep = report([])
    assert rep["overall"]["n"] == 0 and rep["by_kind"] == {}


def test_low_confidence_is_a_caveat() -> None:
    low = Warning_("low_confidence", "the documents may not answer this directly")
    engine = Canned(
        {
            "near": _answer(True, True, low),
            "para": _answer(True, True, low),
            "plain": _answer(True, True),
        }
    )
    questions = [
        _q("near", "near_topic", False),
        _q("para", "paraphrase", True),
        _q("plain", "paraphrase", True),
    ]
    rep, rows = run_eval(engine, questions)
    assert rep["by_kind"]["near_topic"]["refused_or_caveated"] == 1.0
    para = rep["by_kind"]["paraphrase"]
    assert para["caveated"] == pytest.approx(1 / 2) and para["low_confidence"] == pytest.approx(
        1 / 2
    )
    assert para["answer_contains"] == 1.0 and para["false_abstention"] == 0.0
    assert [r.low_confidence for r in rows] == [True, True, False]


def test_a_simplified_gold_answer_matches_a_traditional_passage() -> None:
    # a helper writes gold answers in simplified characters; a traditional document's passage
    # and the answer quoting it hold them in traditional ones: the same answer
    text = "三年行動計劃要補齊材料、裝備、工藝等基礎短板。"
    passage = Passage("t.txt:0", "t", "t.txt", "", text, 1.0, 0, len(text))
    cite = Citation(1, "t.txt:0", "t.txt", 0, len(text), text)
    answer = Answer("q", text + "[1]", True, "extractive", (cite,), (passage,))
    q = EvalQuestion("q", "q", ("材料、装备、工艺",), "t.txt", True, "paraphrase")
    rows = run_eval(Canned({"q": answer}), [q])[1]
    assert (rows[0].rank, rows[0].contains) == (1, True)
