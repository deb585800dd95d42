"""Non-questions: a greeting, a thank-you, a lone character, punctuation or emoji only.

Such input asks nothing of the documents, so it gets a short fixed reply asking for a question
(in Chinese when the input is Chinese) and no search at all: no passages, no quote, no citation,
`answerable: false` and a `not_a_question` warning, so a client can tell it from a refusal.

The test is general, not a list of inputs: take away whitespace, punctuation and symbols (emoji
are symbols), then every greeting, thanks and politeness phrase of a small lexicon in both
languages, then the particles and pronouns that only pad them (啊, 吗, you, there…). What is left
is the question's content; fewer than `MIN_CONTENT` letters, digits or CJK characters is no
question. A real question that opens with a greeting (你好，请问张江发布了多少项标准？) keeps its
content and is answered as usual.
"""

from __future__ import annotations

import re
import unicodedata

from rag.types import Answer, Warning_

CODE = "not_a_question"
REPLY_ZH = "请就文档内容提一个问题。"
REPLY_EN = "Please ask a question about the documents."
MIN_CONTENT = 2  # letters, digits or CJK characters a question needs, once greetings are gone

# Greetings, thanks, farewells and politeness, longest first so 你们好 goes before 你好.
_PHRASES_ZH = (
    "大家好",
    "你们好",
    "您们好",
    "早上好",
    "上午好",
    "中午好",
    "下午好",
    "晚上好",
    "早安",
    "午安",
    "晚安",
    "你好",
    "您好",
    "哈喽",
    "哈啰",
    "嗨",
    "喂",
    "在吗",
    "在不在",
    "谢谢",
    "多谢",
    "感谢",
    "谢啦",
    "谢了",
    "辛苦了",
    "再见",
    "拜拜",
    "好的",
    "收到",
    "没问题",
    "请问",
    "麻烦",
    "打扰",
    "不好意思",
)
_PHRASES_EN = (
    "good morning",
    "good afternoon",
    "good evening",
    "good night",
    "thank you",
    "thanks",
    "thx",
    "ty",
    "cheers",
    "hello",
    "hallo",
    "hiya",
    "hi",
    "hey",
    "howdy",
    "greetings",
    "bye",
    "goodbye",
    "please",
    "ok",
    "okay",
    "sorry",
    "excuse me",
)
# Words that only pad a greeting (你好啊, thank you very much, hi there); never content alone.
_PADDING_ZH = "你们|您们|我们|大家|各位|老师|朋友|[啊呀吗呢吧哈嘿哦噢嗯呵啦你您我]"
_PADDING_EN = (
    "you",
    "there",
    "all",
    "everyone",
    "everybody",
    "guys",
    "very",
    "much",
    "so",
    "a",
    "lot",
    "again",
    "bot",
    "friend",
    "sir",
    "madam",
)

_EN_WORDS = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(p).replace(r"\ ", r"\s+")
        for p in sorted((*_PHRASES_EN, *_PADDING_EN), key=len, reverse=True)
    )
    + r")\b",
    re.IGNORECASE,
)
_ZH_PHRASES = re.compile("|".join(sorted(_PHRASES_ZH, key=len, reverse=True)))
_ZH_PADDING = re.compile(_PADDING_ZH)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_PUNCT = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]")


def _without_marks(text: str) -> str:
    """`text` with punctuation, symbols (emoji included), marks and controls turned to spaces."""
    return "".join(" " if unicodedata.category(c)[0] in "PSZCM" else c for c in text)


def content_left(text: str) -> str:
    """What is left of `text` once marks, greetings, politeness and padding are taken away."""
    rest = _without_marks(unicodedata.normalize("NFKC", text))
    rest = _EN_WORDS.sub(" ", rest)
    rest = _ZH_PHRASES.sub(" ", rest)
    # Padding is dropped everywhere, not only beside a greeting: this is a length test, and a
    # real question has far more content than a stray 你 or 吗 (a lone 你 asks nothing either).
    rest = _ZH_PADDING.sub(" ", rest)
    return "".join(rest.split())


def is_non_question(text: str) -> bool:
    """True when `text` asks nothing: fewer than `MIN_CONTENT` content characters are left."""
    return len(content_left(text)) < MIN_CONTENT


def reply_language_is_chinese(text: str) -> bool:
    """Chinese when the input holds a CJK character or full-width (CJK) punctuation."""
    return bool(_CJK.search(text) or _CJK_PUNCT.search(text))


def non_question_answer(question: str) -> Answer:
    """The fixed reply to a non-question: no passages, no citations, not answerable, warned."""
    zh = reply_language_is_chinese(question)
    return Answer(
        question=question,
        answer=REPLY_ZH if zh else REPLY_EN,
        answerable=False,
        mode="extractive",
        citations=(),
        passages=(),
        confidence=0.0,
        warnings=(
            Warning_(
                CODE,
                "这不是一个关于文档的问题，没有检索文档。"
                if zh
                else "the input is not a question about the documents; nothing was searched",
            ),
        ),
    )
