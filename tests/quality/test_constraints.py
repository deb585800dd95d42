"""Constraint extraction and comparison (`rag.answer.constraints`), without an index."""

from __future__ import annotations

import pytest

from rag.answer.constraints import (
    CODE,
    OPEN_END,
    Evidence,
    asked_unit,
    check_answer,
    extract,
    extract_quantities,
    extract_years,
    mismatches,
)
from rag.types import Answer, Citation, Passage


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("2023年的税收", [(2023, 2023)]),
        ("2025 年一季度", [(2025, 2025)]),  # PDF letter spacing
        ("二〇二三年", [(2023, 2023)]),
        ("in 2023, the park", [(2023, 2023)]),
        ("from '23 on", [(2023, 2023)]),
        ("2024-05-01发布", [(2024, 2024)]),
        ("2021—2023年", [(2021, 2023)]),
        ("2018年以来", [(2018, OPEN_END)]),
        ("2023.5亿元", []),  # a quantity, not a year
        ("2023项标准", []),
        ("1500家企业", []),
        ("80年代", []),
    ],
)
def test_years(text: str, years: list[tuple[int, int]]) -> None:
    assert list(extract_years(text)[0]) == years


def test_relative_years_are_noted() -> None:
    assert extract_years("今年以来，九城市")[1] is True
    assert extract_years("this year the city")[1] is True
    assert extract_years("2023年")[1] is False


def test_quantities() -> None:
    found = {
        (q.text, q.dimension, q.value)
        for q in extract_quantities(
            "产值300亿元、税收43.58亿元，企业1500家，占比28.3%，面积2.4平方公里，超百亿元，1.29万亿元"
        )
    }
    assert ("300亿元", "money", 3e10) in found
    assert ("1500家", "count:家", 1500.0) in found
    assert ("28.3%", "percent", 28.3) in found
    assert ("2.4平方公里", "area", 2.4e6) in found
    assert ("百亿元", "money", 1e10) in found
    assert ("1.29万亿元", "money", 1.29e12) in found
    assert extract_quantities("这是一个重要项目") == ()  # 一个 is an article
    assert [q.dimension for q in extract_quantities("1.5 billion yuan")] == ["money"]


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("张江发布了多少项标准？", "count:项"),
        ("营收突破了多少亿元？", "money"),
        ("金山园有多少平方公里？", "area"),
        ("How many square kilometres is the park?", "area"),
        ("碳谷的税收是多少？", None),
    ],
)
def test_asked_unit(question: str, unit: str | None) -> None:
    assert asked_unit(question) == unit


def test_places_and_superlatives() -> None:
    c = extract("上海市人民政府和浙江省合作建设长三角最大的港口")
    assert "上海" in "".join(c.places) and "浙江" in c.places
    assert c.superlatives == {"max"}
    assert extract("第二大港口").later_rank


def ev(quote: str, before: str = "", title: str = "") -> Evidence:
    return Evidence(quote, before + quote, title, before)


def kinds(question: str, *evidence: Evidence) -> list[str]:
    return [m.kind for m in mismatches(question, list(evidence))]


def test_year_mismatch_and_match() -> None:
    quote = "碳谷一路增长到2023年的产值300亿元、税收43.58亿元。"
    assert kinds("碳谷2024年的税收是多少？", ev(quote)) == ["year"]
    assert kinds("碳谷2023年的税收是多少？", ev(quote)) == []
    assert kinds("How much tax did the park collect in 2024?", ev(quote)) == ["year"]
    assert kinds("碳谷的税收是多少？", ev(quote)) == []  # no year asked


def test_a_year_stated_before_the_quote_governs_it() -> None:
    # the quote states no year; the heading does
    assert kinds("2024年税收是多少？", ev("税收43.58亿元。", before="2023年经营情况\n")) == ["year"]
    assert kinds("2023年税收是多少？", ev("税收43.58亿元。", before="2023年经营情况\n")) == []
    # the nearest earlier statement wins over an older one
    before = "2022年园区更名。2023年经营情况如下。"
    assert kinds("2022年税收是多少？", ev("税收43.58亿元。", before=before)) == ["year"]
    # a relative year makes the quote neutral: its year depends on the document's date
    assert kinds("2024年税收是多少？", ev("今年以来税收43.58亿元。", before="2023年")) == []
    # nothing anywhere: nothing to contradict
    assert kinds("2024年税收是多少？", ev("税收43.58亿元。")) == []


def test_ranges_and_open_ranges_cover_the_asked_year() -> None:
    assert kinds("2022年增幅是多少？", ev("2021—2023年年均增长9%。")) == []
    assert kinds("2024年增幅是多少？", ev("2018年以来年均增幅9.26%。")) == []
    assert kinds("2017年增幅是多少？", ev("2018年以来年均增幅9.26%。")) == ["year"]


def test_one_supporting_quote_is_enough() -> None:
    assert kinds("2024年的税收？", ev("2023年税收43亿元。"), ev("2024年税收50亿元。")) == []


def test_place_mismatch_only_when_absent_from_the_passage() -> None:
    quote = "杭州的人形机器人企业有200家。"
    assert kinds("南京的人形机器人企业有多少家？", ev(quote)) == ["place"]
    assert kinds("南京的人形机器人企业有多少家？", ev(quote, before="南京、杭州两地。")) == []
    assert kinds("杭州市的人形机器人企业有多少家？", ev(quote)) == []  # 市 ignored
    # an English question cannot name a Chinese place: places are not compared
    assert kinds("How many robot companies does Nanjing have?", ev(quote)) == []


def test_unit_mismatch() -> None:
    assert kinds("相关企业有多少家？", ev("相关企业数量占全国的28.3%。")) == ["unit"]
    assert kinds("相关企业有多少家？", ev("相关企业超过200家，占全国28.3%。")) == []
    assert kinds("相关企业有多少个？", ev("相关企业超过200家。")) == []  # 个 counts anything
    assert kinds("园区有多少平方公里？", ev("园区占地3000亩。")) == []  # both areas
    assert kinds("相关企业有多少家？", ev("相关企业正在集聚。")) == []  # no quantity at all


def test_stated_quantity_mismatch() -> None:
    q = "营收超过100亿元的企业有多少家？"
    assert kinds(q, ev("营收超过50亿元的企业有35家。")) == ["quantity"]
    assert kinds(q, ev("营收超百亿元的企业有35家。")) == []  # 百亿 is 100亿


def test_superlative_mismatch() -> None:
    assert kinds("长三角最大的港口是哪个？", ev("宁波舟山港是长三角第二大港口。")) == [
        "superlative"
    ]
    assert kinds("长三角最大的港口是哪个？", ev("上海港是长三角最大的港口。")) == []
    assert kinds("吞吐量最低的是哪个港口？", ev("上海港吞吐量最高。")) == ["superlative"]


def _answer(question: str, quote: str) -> Answer:
    p = Passage("d:0", "d", "a.txt", "", quote, 1.0, 10, 10 + len(quote))
    c = Citation(1, "d:0", "a.txt", 10, 10 + len(quote), quote)
    return Answer(question, f"{quote}[1]", True, "extractive", (c,), (p,))


def test_check_answer_adds_one_warning_in_the_question_language() -> None:
    a = check_answer(_answer("碳谷2024年的税收是多少？", "2023年税收43.58亿元。"))
    assert [w.code for w in a.warnings] == [CODE]
    assert a.warnings[0].message == "问题问的是2024年，文档只给出2023年的数据。"
    assert a.answer == "2023年税收43.58亿元。[1]"  # the cited answer itself is unchanged
    en = check_answer(_answer("What was the tax in 2024?", "2023年税收43.58亿元。"))
    assert "asks about 2024" in en.warnings[0].message and "2023" in en.warnings[0].message
    assert check_answer(en) == en  # never warned twice
    fine = _answer("碳谷2023年的税收是多少？", "2023年税收43.58亿元。")
    assert check_answer(fine) == fine


def test_decades_centuries_and_periods() -> None:
    assert extract_years("the 1960s")[0] == ((1960, 1969),)
    assert extract_years("19世纪")[0] == ((1800, 1899),)
    assert extract_years("1987年以后")[0] == ((1987, OPEN_END),)
    # several asked years are one period: a year within it is no mismatch
    assert kinds("2019年和2023年相比增长了多少？", ev("2021年增长9%。")) == []


def test_a_later_rank_counts_only_against_the_same_ranked_thing() -> None:
    assert kinds("第一届比赛在哪里举行？", ev("第三场半决赛在新加坡举行。")) == []
    assert kinds("第一届比赛在哪里举行？", ev("第二届比赛在新加坡举行。")) == ["superlative"]
    # an English question does not say what it ranks
    assert kinds("Where was the first season held?", ev("第三场半决赛在新加坡举行。")) == []
