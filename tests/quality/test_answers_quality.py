"""Quality guard for issue 13: the held-out answers sets (answers_dev, answers_fresh, the eleven
blind sets) and the own held-out set on the bundled corpus must not fall below the figures last measured (each test's
comment) for the graded answers (confident, caveated, refused).

Real embedder, the shipped corpus. The thresholds sit a little below the measured figures (see
docs/quality.md): they guard against regressions and were not fitted to; nothing is fitted on
these sets (the answerability model is fitted on `benchmarks/data/answer_fit.jsonl`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.engine import Engine
from rag.eval import load_questions, run_eval

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def _report(engine: Engine, name: str) -> dict[str, dict]:
    rep, _ = run_eval(engine, load_questions(DATA / name))
    return {"overall": rep["overall"], **rep["by_kind"]}


@pytest.fixture(scope="module")
def report(corpus_engine: Engine) -> Callable[[str], dict[str, dict]]:
    """The evaluation of a set of benchmarks/data by file name, run once per module."""
    return functools.cache(lambda name: _report(corpus_engine, name))


@pytest.fixture(scope="module")
def answers(report: Callable[[str], dict[str, dict]]) -> dict[str, dict]:
    return report("answers_dev.jsonl")


def test_english_questions_are_answered(answers: dict[str, dict]) -> None:
    # measured: hit@5 0.953, answer-contains 0.814, false abstention 0.000, caveated 0.302
    assert answers["english"]["hit@5"] >= 0.93
    assert answers["english"]["answer_contains"] >= 0.77
    assert answers["english"]["false_abstention"] <= 0.05
    assert answers["english"]["caveated"] <= 0.37


def test_paraphrases_are_answered(answers: dict[str, dict]) -> None:
    # measured: hit@5 0.906, answer-contains 0.719, false abstention 0.031 (0.688, 0.062 before
    # the selector's `stated` feature; 0.719, 0.031 before its unit feature)
    # (before the graded answers: 0.188 and 0.812; before the constraint signals were corrected,
    # 九个城市 held by 九城市, 东西 no place: 0.562 and 0.219)
    assert answers["paraphrase"]["hit@5"] >= 0.87
    assert answers["paraphrase"]["answer_contains"] >= 0.65
    assert answers["paraphrase"]["false_abstention"] <= 0.10


def test_near_topic_questions_are_refused_or_caveated(answers: dict[str, dict]) -> None:
    # measured: refused 0.469, refused or caveated 1.000 (before the graded answers: 0.031,
    # 0.531; before the constraint check read places near the quote, durations, absent figures
    # and asked attributes: 0.469, 0.625; before the selector's unit feature: 0.531, 0.938;
    # before persons counted implied a head count: 0.469, 0.969)
    assert answers["near_topic"]["abstention"] >= 0.40
    assert answers["near_topic"]["refused_or_caveated"] >= 0.85
    assert answers["non_question"]["refused_unquoted"] == 1.0


def test_own_held_out_set_does_not_regress(report: Callable[[str], dict[str, dict]]) -> None:
    own = report("own_dev_qa.jsonl")
    # measured: hit@5 1.000, answer-contains 0.960, false abstention 0.000 (0.920 and 0.020
    # before the selector's `stated` feature, "value" implying money and TEU as a unit);
    # unanswerable: refused 2/10, refused or caveated 8/10 (7/10 before a person asked had to be
    # named)
    assert own["overall"]["hit@5"] >= 0.97
    assert own["overall"]["answer_contains"] >= 0.92
    assert own["overall"]["false_abstention"] <= 0.02
    assert own["overall"]["caveated"] <= 0.14
    assert own["unanswerable"]["abstention"] >= 0.2
    assert own["unanswerable"]["refused_or_caveated"] >= 0.7


def test_fresh_set_written_blind(report: Callable[[str], dict[str, dict]]) -> None:
    fresh = report("answers_fresh.jsonl")
    # answers_fresh.jsonl was written after the answer code, by someone who had not read it (and
    # has since been read to find what fails); measured: English answer-contains 0.867 (0.800
    # before bylines were quoted),
    # paraphrase 0.900 with 0.100 refused, near-topic refused or caveated 0.792 (before implied
    # units, CC-CEDICT containment and the selector's unit feature: 0.750, 0.200, 0.720)
    assert fresh["english"]["answer_contains"] >= 0.80
    assert fresh["paraphrase"]["answer_contains"] >= 0.80
    assert fresh["paraphrase"]["false_abstention"] <= 0.15
    assert fresh["near_topic"]["refused_or_caveated"] >= 0.70


def test_blind_set(report: Callable[[str], dict[str, dict]]) -> None:
    blind = report("answers_blind.jsonl")
    # answers_blind.jsonl, written blind after the fresh set was read; its odd-numbered questions
    # were read once to find what fails, the even ones never. Measured: English hit@5 1.000,
    # answer-contains 0.867 (0.833 before "standard containers" was read as TEU); paraphrase 0.750 with 0.050 refused; near-topic refused or caveated
    # 0.846 (0.808 before a person asked had to be named and 最快 was read as a superlative;
    # at the commit before this round: 0.833; 0.650, 0.050; 0.769)
    assert blind["english"]["hit@5"] >= 0.93
    assert blind["english"]["answer_contains"] >= 0.80
    assert blind["paraphrase"]["answer_contains"] >= 0.65
    assert blind["overall"]["false_abstention"] <= 0.06
    assert blind["near_topic"]["refused_or_caveated"] >= 0.77


def test_second_blind_set(report: Callable[[str], dict[str, dict]]) -> None:
    blind2 = report("answers_blind2.jsonl")
    # answers_blind2.jsonl, written blind when a round of changes was done and measured once
    # after them: English hit@5 0.950, answer-contains 0.850; paraphrase hit@5 0.800,
    # answer-contains 0.400, refused 0.333; near-topic refused or caveated 0.600. Then read to
    # find what fails (so no longer blind): after loose quantities, the closed-period year rule,
    # the selector's `stated` feature, named companies, persons counted and named, bylines,
    # paraphrase 0.733 with 0.200 refused, near-topic 0.900.
    # Below issue 13's targets: this guards the figures, it does not claim them.
    assert blind2["english"]["hit@5"] >= 0.90
    assert blind2["english"]["answer_contains"] >= 0.80
    assert blind2["paraphrase"]["answer_contains"] >= 0.66
    assert blind2["paraphrase"]["false_abstention"] <= 0.27
    assert blind2["near_topic"]["refused_or_caveated"] >= 0.80


# The sets measured once unseen, each at the end of a round of work, then read: floors a little
# below today's figures for English hit@5 and answer-contains, all answerable answer-contains, a
# ceiling on false refusals, and a floor on near-topic refused or caveated. Below issue 13's
# targets: they guard the figures, they do not claim them.
UNSEEN = [
    # blind3, written blind while the second round was done: unseen English hit@5 0.950,
    # answer-contains 0.800, all answerable 0.825 with 0.050 refused, near-topic 0.500; after
    # persons asked had to be named, 最快 read as a superlative, "value" as money and the place of
    # a quote's speaker, near-topic 0.750 (the answerable figures unchanged)
    pytest.param("answers_blind3.jsonl", (0.90, 0.75, 0.78, 0.08, 0.70), id="blind3"),
    # blind4, unseen on 7a8cefc: 1.000, 0.700, 0.675 with 0.050 refused, 0.700; after bylines,
    # TEU and ranks English 0.800, all answerable 0.750, and 0.775 once 第几位 asked a rank
    pytest.param("answers_blind4.jsonl", (0.93, 0.75, 0.70, 0.08, 0.65), id="blind4"),
    # blind5, unseen on 2354dd2 and again after this round's first changes (the same): 0.950,
    # 0.750, 0.775 with 0.025 refused, 0.650; with 次 a classifier, near-topic 0.700
    pytest.param("answers_blind5.jsonl", (0.90, 0.70, 0.72, 0.08, 0.65), id="blind5"),
    # blind6, unseen on 0fa94a8: 0.800, 0.650, 0.600 with 0.125 refused (paraphrases 0.550,
    # 0.250), 0.800; with containment read from the collection and English counts, 0.700 and
    # all answerable 0.675 with 0.075 refused
    pytest.param("answers_blind6.jsonl", (0.75, 0.65, 0.62, 0.10, 0.75), id="blind6"),
    # blind7, unseen on f3133d8: 0.950, 0.800, 0.700 with 0.075 refused, 0.700; with names the
    # dictionary points at (腾讯, 上汽集团), nautical miles and rates read whole, near-topic 0.900;
    # once the selector read passages by score, not rank: 0.675 with 0.125 refused (two more
    # paraphrases refused here, six fewer refusals over all the sets)
    pytest.param("answers_blind7.jsonl", (0.90, 0.75, 0.65, 0.15, 0.85), id="blind7"),
    # blind8, unseen on d249cbf (scored script-insensitively: six of its gold answers are
    # simplified, their document traditional): 0.900, 0.800, 0.625 with 0.100 refused
    # (paraphrases hit@5 0.700, answer-contains 0.450), 0.850; with regions of a province (苏南),
    # time frames (头三个月), quoted numbers (“1851”) and English counts: 0.850, 0.700 with 0.075
    # refused, 0.900
    pytest.param("answers_blind8.jsonl", (0.85, 0.80, 0.65, 0.10, 0.85), id="blind8"),
    # blind9, unseen on ef3ccd3: 0.950, 0.800, 0.650 with 0.150 refused (paraphrases 0.500,
    # 0.300 refused), 0.850; with 哪几 read as which, islands and organisations' abbreviations,
    # 0.675 with 0.125 refused, 0.900
    pytest.param("answers_blind9.jsonl", (0.90, 0.75, 0.62, 0.15, 0.85), id="blind9"),
    # blind10, unseen on 284e273: 1.000, 0.700, 0.650 with no refusal, 0.750; with 'which came
    # first' checked, near-topic 0.800
    pytest.param("answers_blind10.jsonl", (0.95, 0.65, 0.60, 0.05, 0.75), id="blind10"),
    # blind11, unseen on 412191e, the last measure: 0.900, 0.750, 0.575 with 0.225 refused
    # (paraphrases 0.400, 8 of 20 refused), 0.850; with ranks typed by a stated rank, ordinals
    # and 中国公司 read, 0.650 with 0.150 refused
    pytest.param("answers_blind11.jsonl", (0.85, 0.70, 0.60, 0.20, 0.80), id="blind11"),
    # blind12, unseen on 6ee1248: 0.900, 0.800, 0.825 with 0.025 refused, near-topic 15/20
    pytest.param("answers_blind12.jsonl", (0.85, 0.75, 0.75, 0.10, 0.70), id="blind12"),
    # blind13, unseen on 784ee9d: 0.900, 0.700, 0.650 with 0.025 refused, near-topic 15/20 (the
    # code this round started from, 0ff5c2c: 0.900, 0.600, 0.550 with 0.050 refused, 16/20);
    # with Chinese synonyms, all answerable 0.675
    pytest.param("answers_blind13.jsonl", (0.85, 0.65, 0.60, 0.08, 0.70), id="blind13"),
    # blind14, unseen on b8cd158 (a refitted reranker, then reverted: the same figures without it),
    # the last measure: 0.900, 0.750, 0.700 with 0.050 refused,
    # near-topic 15/20 (0ff5c2c: 0.900, 0.650, 0.650 with 0.050 refused, 15/20)
    pytest.param("answers_blind14.jsonl", (0.85, 0.70, 0.65, 0.08, 0.70), id="blind14"),
    # blind15, unseen on ad49208: 0.950, 0.750, 0.650 with 0.075 refused, near-topic 12/20 (the
    # code this round started from, 555fdbe: 0.950, 0.750, 0.625 with 0.075 refused, 12/20); with
    # photo and essay credits, floors (层) and 三位一体: 0.850, 0.700, 14/20
    pytest.param("answers_blind15.jsonl", (0.90, 0.80, 0.65, 0.10, 0.65), id="blind15"),
    # blind16, unseen on 1b25a59: 0.950, 0.600, 0.650 with 0.100 refused, near-topic 8/20
    # (555fdbe: the same answers, 9/20); with the counted thing kept in the subject, ages,
    # financing rounds and relative places, 0.725 with 0.025 refused, 11/20
    pytest.param("answers_blind16.jsonl", (0.90, 0.55, 0.60, 0.15, 0.40), id="blind16"),
    # blind17, unseen on 17b1f45, the last measure: 0.850, 0.700, 0.525 with 0.025 refused,
    # near-topic 12/20 (555fdbe: the same figures)
    pytest.param("answers_blind17.jsonl", (0.80, 0.65, 0.50, 0.05, 0.55), id="blind17"),
]


@pytest.mark.parametrize(("name", "floors"), UNSEEN)
def test_sets_first_measured_unseen(
    report: Callable[[str], dict[str, dict]],
    name: str,
    floors: tuple[float, float, float, float, float],
) -> None:
    hit5, english, answerable, refused, near_topic = floors
    got = report(name)
    assert got["english"]["hit@5"] >= hit5
    assert got["english"]["answer_contains"] >= english
    assert got["overall"]["answer_contains"] >= answerable
    assert got["overall"]["false_abstention"] <= refused
    assert got["near_topic"]["refused_or_caveated"] >= near_topic
