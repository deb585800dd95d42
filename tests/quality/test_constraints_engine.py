"""Through the engine, over a tiny real index: constraint mismatches and non-questions."""

from __future__ import annotations

import pytest
from small_engines import RAIL, engine_over

from rag.answer.constraints import CODE as MISMATCH
from rag.answer.nonquestion import CODE as NOT_A_QUESTION
from rag.answer.nonquestion import REPLY_EN, REPLY_ZH
from rag.answer.stream import FinalEvent
from rag.embed.base import Embedder
from rag.engine import Engine

PARK = (
    "碳谷绿湾产业园\n"
    "作为上海市南北转型的主阵地之一，金山第二工业区更名为碳谷绿湾产业园。"
    "数据显示，碳谷绿湾产业园2023年实现产值300亿元，税收43.58亿元。"
    "园区已集聚新材料企业120家。\n"
)
ROBOTS = (
    "人形机器人标准\n"
    "张江已陆续发布12项人形机器人团体标准，涵盖整机、核心零部件和测试方法。"
    "浦东新区对通过标准测试的首台套产品最高给予30%补贴。\n"
)
DOCS = {"park.txt": PARK, "robots.txt": ROBOTS, "rail.txt": RAIL}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    return engine_over(tmp_path_factory.mktemp("constraints"), use_embedder, DOCS)


@pytest.fixture(scope="module")
def answering(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    """The same documents with a refusal floor of 0: what the answerability model would refuse
    (a year the documents never state) is answered, so its constraint check shows."""
    return engine_over(
        tmp_path_factory.mktemp("constraints_answering"), use_embedder, DOCS, relevance_floor=0.0
    )


def codes(engine: Engine, question: str) -> list[str]:
    return [w.code for w in engine.ask(question).warnings]


def test_a_year_the_documents_do_not_give_is_refused_or_caveated(engine: Engine) -> None:
    # the answerability model reads the year the passage never states (issue 13)
    answer = engine.ask("碳谷绿湾产业园2024年的税收是多少？")
    warned = {w.code for w in answer.warnings} & {MISMATCH, "low_confidence"}
    assert not answer.answerable or warned


def test_a_year_the_documents_do_not_give_is_flagged(answering: Engine) -> None:
    answer = answering.ask("碳谷绿湾产业园2024年的税收是多少？")
    assert answer.answerable and "43.58亿元" in answer.answer
    warning = next(w for w in answer.warnings if w.code == MISMATCH)
    assert "2024" in warning.message and "2023" in warning.message
    # every sentence of the answer is still a cited quote: the caveat is in the warning only
    assert all(c.quote in answer.answer for c in answer.citations)


def test_the_year_the_documents_give_is_not_flagged(engine: Engine) -> None:
    answer = engine.ask("碳谷绿湾产业园2023年的税收是多少？")
    assert answer.answerable and "43.58亿元" in answer.answer
    assert MISMATCH not in [w.code for w in answer.warnings]


def test_an_english_question_is_checked_by_year(answering: Engine) -> None:
    assert MISMATCH in codes(answering, "How much tax did the Carbon Valley park collect in 2024?")
    assert MISMATCH not in codes(
        answering, "How much tax did the Carbon Valley park collect in 2023?"
    )


@pytest.mark.parametrize(
    ("greeting", "reply"), [("你好", REPLY_ZH), ("hello", REPLY_EN), ("？", REPLY_ZH)]
)
def test_a_greeting_gets_the_non_question_reply(engine: Engine, greeting: str, reply: str) -> None:
    answer = engine.ask(greeting)
    assert answer.answer == reply and not answer.answerable
    assert answer.citations == () and answer.passages == ()
    assert [w.code for w in answer.warnings] == [NOT_A_QUESTION]


def test_a_question_that_opens_with_a_greeting_is_answered(engine: Engine) -> None:
    answer = engine.ask("你好，请问张江发布了多少项人形机器人团体标准？")
    assert answer.answerable and "12项" in answer.answer and answer.citations
    assert answer.warnings == ()


def test_streamed_answers_carry_the_same_warnings(answering: Engine) -> None:
    final = list(answering.ask_stream("碳谷绿湾产业园2024年的税收是多少？"))[-1]
    assert isinstance(final, FinalEvent)
    assert MISMATCH in [w.code for w in final.answer.warnings]
