"""Non-questions (`rag.answer.nonquestion`): greetings, lone characters, punctuation, emoji."""

from __future__ import annotations

import pytest

from rag.answer.nonquestion import (
    CODE,
    REPLY_EN,
    REPLY_ZH,
    is_non_question,
    non_question_answer,
)


@pytest.mark.parametrize(
    "text",
    [
        "你好",
        "您好！",
        "大家好啊",
        "谢谢",
        "好的，谢谢您",
        "hello",
        "Hi there!",
        "thanks",
        "Thank you very much!",
        "a",
        "Z",
        "的",
        "5",
        "？？？",
        "...",
        "😀",
        "👍🏽",
        "  \t 。",
    ],
)
def test_non_questions(text: str) -> None:
    assert is_non_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "你好，请问张江发布了多少项标准？",
        "谢谢！碳谷2023年的税收是多少？",
        "hi, how large is Zhangjiang?",
        "长三角",
        "张江有多大",
        "AI",
        "G60",
        "税收？",
    ],
)
def test_questions_and_topics_are_kept(text: str) -> None:
    assert not is_non_question(text)


def test_the_reply_is_in_the_input_language_and_marked() -> None:
    zh = non_question_answer("你好")
    assert zh.answer == REPLY_ZH and not zh.answerable
    assert zh.citations == () and zh.passages == ()
    assert [w.code for w in zh.warnings] == [CODE]
    assert non_question_answer("hello").answer == REPLY_EN
    assert non_question_answer("😀").answer == REPLY_EN
    assert non_question_answer("？？").answer == REPLY_ZH  # full-width punctuation is Chinese
