"""Light question analysis: what kind of answer a question wants, and its language."""

from __future__ import annotations

import re

from rag.index.tokenize import fold

_NUMBER_Q = re.compile(
    r"多少|(?<!哪)几[个项家年月天位种大条次%％]?|多大|多高|多长|多远|百分之|比例|how (many|much|large|big|long|far)|what (percentage|share|number)",
    re.I,
)
_TIME_Q = re.compile(
    r"什么时候|何时|哪一?年|哪一?天|几月|哪个月|哪几个月|几点|时间范围|哪几年"
    r"|when\b|what (?:year|time|date|month)|which (?:year|month|day)",
    re.I,
)
_WHO_Q = re.compile(
    r"谁|哪位|哪些(单位|部门|机构|企业|人)|由哪|who\b|which (organi[sz]ations?|companies|agencies)",
    re.I,
)
_PLACE_Q = re.compile(r"哪里|哪儿|何处|从哪|where\b", re.I)
_HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万亿两]+[个项家年月日天位种大条次%％倍]")
# a share stated in words: 近半数, 过半, 三分之一 (a figure no digit writes)
_SHARE = re.compile(r"[一二三四五六七八九十]分之[一二三四五六七八九十]|半数|一半|过半|大半|近半")
_HAS_TIME = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月|[一二三四五六七八九十]+月|今年|去年|明年|\d{4}[-/]\d{1,2}"
)
_CJK = re.compile(r"[\u3400-\u9fff]")


def answer_type(question: str) -> str:
    """`number`, `time`, `who`, `place` or `other`. A `几` after `哪` asks which ones, not how
    many (哪几个城市: names; 哪几个月: a time). Read folded: 什麼時候 asks a time as 什么时候
    does."""
    question = fold(question)
    if _TIME_Q.search(question):
        return "time"
    if _NUMBER_Q.search(question):
        return "number"
    if _WHO_Q.search(question):
        return "who"
    if _PLACE_Q.search(question):
        return "place"
    return "other"


def type_match(kind: str, sentence: str) -> float:
    """1.0 when `sentence` holds the kind of thing the question asks for, else 0."""
    if kind == "number":
        return 1.0 if _HAS_NUMBER.search(sentence) or states_share(sentence) else 0.0
    if kind == "time":
        return 1.0 if _HAS_TIME.search(sentence) else 0.0
    return 0.0


def states_share(text: str) -> bool:
    """`text` states a share in words (近半数, 过半, 三分之一): a figure without a digit."""
    return _SHARE.search(text) is not None


def is_chinese(text: str) -> bool:
    """True when the text is mostly Chinese (decides the language of fixed replies)."""
    return len(_CJK.findall(text)) >= max(1, len(text.strip()) // 5)
