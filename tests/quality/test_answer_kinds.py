"""The generated question kinds the answerability model is fitted on (`benchmarks/answer_kinds.py`):
described paraphrases, attribute swaps and added years. Plain checks, no model or index."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # answer_kinds imports its sibling check_answers_dev
_spec = importlib.util.spec_from_file_location(
    "answer_kinds", ROOT / "benchmarks" / "answer_kinds.py"
)
assert _spec is not None and _spec.loader is not None
kinds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kinds)

PARAGRAPH = "北京大学创办于1898年，初名京师大学堂。北京大学的校长蔡元培提出兼容并包的办学方针。"


def test_descriptions() -> None:
    assert kinds.description("北京大学", "nt") == "那所大学"
    assert kinds.description("长江", "ns") == "那条江"
    assert kinds.description("蔡元培", "nr") == "那位人物"
    assert kinds.description("京师", "ns") == "那个地方"
    assert kinds.description("大果西番莲", "nz") is None  # says nothing of what it is


def test_described_paraphrase_names_nothing_the_answer_sentence_says() -> None:
    q = "北京大学的校长蔡元培提出了什么办学方针？"
    synonyms = {"校长": ["掌门人"], "提出": ["倡导"], "办学": ["治校"]}
    text = kinds.describe(q, PARAGRAPH, "北京大学", ["兼容并包"], synonyms, random.Random(0))
    assert text is not None and "北京大学" not in text and "那所大学" in text
    assert kinds.is_paraphrase(text, PARAGRAPH, ["兼容并包"])
    assert not kinds.is_paraphrase(q, PARAGRAPH, ["兼容并包"])  # 校长蔡元培提出 is shared
    no_swap = kinds.describe(q, PARAGRAPH, "北京大学", ["兼容并包"], {}, random.Random(0))
    assert no_swap is None  # naming the rest as the paragraph does is no paraphrase


def test_attribute_swap_asks_what_the_paragraph_does_not_state() -> None:
    pool = {"other": ["校训", "吉祥物"], "number": ["学生人数"]}
    got = kinds.swap_attribute(
        "北京大学的办学方针是什么？", PARAGRAPH, "北京大学", pool, random.Random(0)
    )
    assert got is not None
    question, old, new = got
    assert old == "方针" and new in ("校训", "吉祥物") and new not in PARAGRAPH
    assert question == f"北京大学的办学{new}是什么？"


def test_added_year_is_one_the_paragraph_never_states() -> None:
    got = kinds.add_year("北京大学的校长是谁？", PARAGRAPH, random.Random(0))
    assert got is not None
    question, year = got
    assert question == year + "北京大学的校长是谁？" and year[:-1] not in PARAGRAPH
    assert not 1896 <= int(year[:-1]) <= 1900  # not within two years of one it states
    assert (
        kinds.add_year("北京大学哪一年创办？", PARAGRAPH, random.Random(0)) is None
    )  # asks a time
    assert kinds.add_year("1898年北京大学的校长是谁？", PARAGRAPH, random.Random(0)) is None
