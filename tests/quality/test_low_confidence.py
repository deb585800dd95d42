"""Graded answers (issue 13): an answer given below the answerability model's `confident_floor`
carries a machine-readable `low_confidence` caveat, its quotes still cited; and the constraint
signals the model reads (`rag.answer.constraints.unstated`). No index, no embedder."""

from __future__ import annotations

import pytest

from rag.answer.abstain import (
    LOW_CONFIDENCE,
    AbstainModel,
    Logistic,
    caveat,
    features,
    load_model,
)
from rag.answer.constraints import unstated
from rag.answer.select import Scored, Sentence
from rag.retrieve.hybrid import Hit
from rag.types import Answer, Citation, Passage

PASSAGE = Passage("d.txt:0", "d", "d.txt", "碳谷", "碳谷2023年税收43.58亿元。", 1.0, 0, 16)
CITE = Citation(1, "d.txt:0", "d.txt", 0, 16, "碳谷2023年税收43.58亿元。")
MODEL = AbstainModel(Logistic(0.0, {}), llm_floor=0.4, confident_floor=0.7)


def _answer(confidence: float, answerable: bool = True, question: str = "碳谷的税收？") -> Answer:
    return Answer(
        question=question,
        answer="碳谷2023年税收43.58亿元。[1]" if answerable else "文档中没有找到这个问题的答案。",
        answerable=answerable,
        mode="extractive",
        citations=(CITE,) if answerable else (),
        passages=(PASSAGE,),
        confidence=confidence,
    )


def test_an_answer_below_the_confident_floor_is_caveated() -> None:
    a = caveat(_answer(0.6), MODEL)
    assert [w.code for w in a.warnings] == [LOW_CONFIDENCE]
    assert "文档可能没有直接回答" in a.warnings[0].message  # Chinese for a Chinese question
    assert a.answer == _answer(0.6).answer and a.citations == (CITE,)  # nothing uncited added
    en = caveat(_answer(0.6, question="What was the Carbon Valley's tax?"), MODEL)
    assert en.warnings[0].message.startswith("The documents may not answer this directly")
    assert caveat(a, MODEL) == a  # once


def test_confident_answers_and_refusals_are_not_caveated() -> None:
    assert caveat(_answer(0.7), MODEL).warnings == ()
    assert caveat(_answer(0.2, answerable=False), MODEL).warnings == ()


def test_the_shipped_model_has_a_caveat_band() -> None:
    model = load_model()
    # the band an LLM decides is not empty: some refusals still reach it
    assert model.llm_floor < 0.5 <= model.confident_floor < 1.0


@pytest.mark.parametrize(
    ("question", "context", "sentence", "expected"),
    [
        ("碳谷2023年的税收是多少？", "碳谷\n2023年税收43.58亿元。", "2023年税收43.58亿元。", {}),
        (
            "碳谷2010年的税收是多少？",
            "碳谷\n2023年税收43.58亿元。",
            "2023年税收43.58亿元。",
            {"year_unstated": 1.0},
        ),
        (
            "碳谷2010年的税收是多少？",
            "碳谷\n今年税收43.58亿元。",
            "今年税收43.58亿元。",
            {"year_unstated": 0.5},
        ),
        (
            "苏州的园区税收是多少？",
            "上海的园区\n税收43.58亿元。",
            "税收43.58亿元。",
            {"name_unstated": 1.0},
        ),
        (
            "超过100亿元的企业有几家？",
            "产值超过50亿元的企业有8家。",
            "产值超过50亿元的企业有8家。",
            {"quantity_unstated": 1.0},
        ),
        (
            "2021年的营业收入是多少？",
            "从2019年到2023年，营业收入从846亿元增长至1629亿元。",
            "从2019年到2023年，营业收入从846亿元增长至1629亿元。",
            {"year_unstated": 0.5},
        ),
        (
            "五十多个园区每平方公里产出多少？",
            "上海55个特色产业园区每平方公里土地产出近110亿元。",
            "上海55个特色产业园区每平方公里土地产出近110亿元。",
            {},
        ),
        (
            "七十多个园区每平方公里产出多少？",
            "上海55个特色产业园区每平方公里土地产出近110亿元。",
            "上海55个特色产业园区每平方公里土地产出近110亿元。",
            {"quantity_unstated": 1.0},
        ),
        (
            "通关时间能缩短多少小时？",
            "每箱成本降低200元。",
            "每箱成本降低200元。",
            {"unit_unmatched": 1.0},
        ),
        (
            "面积有多少平方公里？",
            "每箱成本降低200元。",
            "每箱成本降低200元。",
            {"unit_unmatched": 1.0},
        ),
    ],
)
def test_unstated(question: str, context: str, sentence: str, expected: dict[str, float]) -> None:
    got = unstated(question, context, sentence)
    assert {k: v for k, v in got.items() if v} == expected


def test_a_rank_asked_is_typed_by_a_stated_rank() -> None:
    # 排到第几 is answered by 世界第三, which holds no digit nor counted number: the picked
    # sentence does not lack the answer's type
    hits = [Hit(0, 1.0, 0.5, 0.1, 1.0, 0.3, sentences=((0, 20, 0.5),))]

    def missing(question: str, sentence: str) -> float:
        picked = [Scored(Sentence(0, 0, len(sentence), sentence, 0.5), 0.9)]
        return features(question, hits, picked)["type_missing"]

    assert missing("上海机场的旅客吞吐量在全球排到第几？", "旅客吞吐量排名世界第三。") == 0.0
    assert missing("上海机场的旅客吞吐量在全球排到第几？", "上海机场加快建设。") == 1.0
    assert missing("上海机场有多少条跑道？", "上海机场有5条跑道。") == 0.0
