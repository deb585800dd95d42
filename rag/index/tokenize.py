"""Lexical tokens for BM25: traditional folded to simplified (OpenCC), jieba search mode.

Both the index and the query side go through `tokenize`, so a simplified question matches a
traditional passage and vice versa. Punctuation, whitespace and function words are dropped;
Latin words are lower-cased.

`fold` (the matching form of any text: tokens, term coverage, bigrams) also undoes two kinds of
extraction noise without changing the text's length, so offsets into a folded text stay offsets
into the stored one: full-width digits and letters become ASCII (`１２` → `12`), and stray spaces
in a number next to Chinese (`12 项`, `1 2 项`, `3 . 5 亿元`, from letter-spaced PDF glyphs) move
in front of it (`  12项`, `   12项`, `    3.5亿元`), so `12项` and `3.5亿元` match as written.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

import jieba
import opencc

from rag.ingest.normalize import FULLWIDTH_ALNUM

jieba.setLogLevel(logging.WARNING)
_JIEBA_LOCK = threading.Lock()
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)

# Function words and question words: they carry no topic, and question words never occur in
# the answering passage. Kept small on purpose: BM25's IDF handles the rest.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "也",
        "都",
        "就",
        "而",
        "或",
        "等",
        "对",
        "把",
        "被",
        "让",
        "从",
        "于",
        "以",
        "之",
        "其",
        "这",
        "那",
        "个",
        "着",
        "过",
        "吗",
        "呢",
        "吧",
        "啊",
        "什么",
        "多少",
        "哪些",
        "哪个",
        "哪里",
        "哪儿",
        "哪",
        "谁",
        "几",
        "怎么",
        "怎样",
        "如何",
        "为什么",
        "是否",
        "有没有",
        "是不是",
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "by",
        "with",
        "as",
        "from",
        "that",
        "this",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "has",
        "have",
        "had",
        "it",
        "its",
    ]
)

# Bumped whenever `tokenize` changes what it yields: BM25 files stamped with another version are
# rebuilt on load rather than matched against queries tokenised differently.
TOKENIZER_VERSION = 2

_t2s = opencc.OpenCC("t2s")
_HAN = "\u3400-\u9fff\uf900-\ufaff"
_HAN_CHAR = re.compile(f"[{_HAN}]")
# A number with stray spaces: single digits one space apart (letter-spaced glyphs: `1 2`), or
# spaces around a decimal point (`3 . 5`); with the spaces parting it from Chinese on either side.
_SPACED_NUMBER = re.compile(
    rf"(?:(?<=[{_HAN}]) +)?(?<![0-9])"
    r"(?:[0-9](?: [0-9](?![0-9]))+|[0-9]+(?: ?\. ?[0-9]+)?)"
    rf"(?: +(?=[{_HAN}]))?"
)


def _squeeze(m: re.Match[str]) -> str:
    """A spaced number beside Chinese with its spaces moved in front; any other run as it is."""
    run, (start, end), text = m.group(), m.span(), m.string
    beside_han = (
        run[0] == " "  # the pattern took spaces only where Chinese is on their other side
        or run[-1] == " "
        or (start > 0 and _HAN_CHAR.match(text[start - 1]) is not None)
        or (end < len(text) and _HAN_CHAR.match(text[end]) is not None)
    )
    if " " not in run or not beside_han:  # English or a list of numbers: spaces there are meant
        return run
    digits = run.replace(" ", "")
    return " " * (len(run) - len(digits)) + digits


def _fold(text: str) -> str:
    folded = str(_t2s.convert(text.translate(FULLWIDTH_ALNUM))).lower()
    return _SPACED_NUMBER.sub(_squeeze, folded) if " " in folded else folded


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """The matching form of a text (never shown): traditional → simplified, lower case, ASCII
    digits and letters, numbers' stray spaces moved out of the way. Same length as `text`
    whenever OpenCC keeps it (it almost always does)."""
    return _fold(text)


def fold_long(text: str) -> str:
    """`fold` without the cache, for chunk-sized texts."""
    return _fold(text)


_CONTENT = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]")
# Question words and particles as a pattern (longest first): never in an answering sentence.
_QUESTION_WORDS = re.compile(
    "|".join(sorted((w for w in STOPWORDS if _CONTENT.search(w)), key=len, reverse=True))
)


def content_chars(folded: str) -> list[str]:
    """The letters, digits and CJK characters of a folded text, in order."""
    return _CONTENT.findall(folded)


def strip_question_words(folded: str) -> str:
    """A folded question with its question words and particles blanked out."""
    return _QUESTION_WORDS.sub(" ", folded)


def bigrams(folded: str) -> set[str]:
    """Character bigrams of a folded text's content characters (segmentation-free matching)."""
    chars = "".join(_CONTENT.findall(folded))
    return {chars[i : i + 2] for i in range(len(chars) - 1)}


def bigram_share(wanted: set[str], folded: str) -> float:
    """Share of the `wanted` bigrams (a question's) that occur in a folded text."""
    return sum(b in folded for b in wanted) / len(wanted) if wanted else 0.0


def tokenize(text: str) -> list[str]:
    """The BM25 tokens of `text`."""
    folded = fold(text) if len(text) < 512 else fold_long(text)
    with _JIEBA_LOCK:  # jieba's lazy initialisation is not thread-safe
        words = list(jieba.cut_for_search(folded))
    return [w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in STOPWORDS]


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first query."""
    tokenize("预热")
