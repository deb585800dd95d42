"""What kind of answer a question wants (`rag.answer.qtype`): the selector and the answerability
model read it, the constraint check too."""

from __future__ import annotations

import pytest

from rag.answer.qtype import answer_type, type_match


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("张江机器人谷集聚了多少家企业？", "number"),
        ("协议是什么时候签署的？", "time"),
        ("方案是哪个月发布的？", "time"),
        ("At what time did the first freight train depart?", "time"),
        ("What date was the plan issued?", "time"),
        ("When did the corridor open?", "time"),
        ("Who wrote the proposal?", "who"),
        ("园区在哪里？", "place"),
        ("这种模式叫什么？", "other"),
        ("有几个城市入选？", "number"),
        ("哪几个城市入选？", "other"),  # which ones: names, not a number
        ("毕业生集中在一年中的哪几个月？", "time"),
        # traditional script asks as simplified does
        ("長三角區域合作辦公室是什麼時候組建的？", "time"),
        ("這份建議是誰提出的？", "who"),
        ("有幾個城市參加了聯盟？", "number"),
        ("總部設在哪裡？", "place"),
    ],
)
def test_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_type_match_reads_times_and_numbers() -> None:
    assert type_match("time", "11月8日下午3时25分，班列首发。") == 1.0
    assert type_match("time", "班列首发意味着新阶段。") == 0.0
    assert type_match("number", "集聚了90余家企业。") == 1.0
    # a share in words is a figure: 近半数, 三分之一
    assert type_match("number", "上海拥有全国近半数人形机器人整机企业。") == 1.0
    assert type_match("number", "三分之一的产量在上海。") == 1.0
    assert type_match("number", "整机企业集聚在上海。") == 0.0
